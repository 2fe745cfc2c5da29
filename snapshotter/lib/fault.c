#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
ov_fault (const char *name)
{
  const char *f = getenv ("OVSNAP_FAULT");
  if (f && strcmp (f, name) == 0)
    kill (getpid (), SIGKILL);
  const char *st = getenv ("OVSNAP_STOP");
  if (st && strcmp (st, name) == 0)
    kill (getpid (), SIGSTOP);
}

void
ov_pause (const char *name)
{
  const char *f = getenv ("OVSNAP_PAUSE");
  if (f == NULL || strcmp (f, name) != 0)
    return;
  const char *ms = getenv ("OVSNAP_PAUSE_MS");
  long n = ms ? atol (ms) : 2000;
  struct timespec ts = { n / 1000, (n % 1000) * 1000000 };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

bool
ov_fail (const char *name)
{
  const char *f = getenv ("OVSNAP_FAIL");
  return f && strcmp (f, name) == 0;
}

int
ov_fail_err (const char *name, ov_error_t *err)
{
  if (!ov_fail (name))
    return 0;
  return ov_error_set (err, OV_EGENERIC, EIO, "injected fault at %s", name);
}
