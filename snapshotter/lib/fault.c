#include "fault.h"

#include <errno.h>
#include <fcntl.h>
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

static void
sleep_ms (long n)
{
  struct timespec ts = { n / 1000, (n % 1000) * 1000000 };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* The handshake: the file says "here"; its removal says "go on". A test
 * then acts (stops a server, say) at exactly this step, not after a
 * guessed delay. Bounded, so a test that forgets it hangs nothing. */
static void
pause_for_file (const char *path, long max_ms)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  close (fd);
  for (long waited = 0; waited < max_ms && access (path, F_OK) == 0; waited += 20)
    sleep_ms (20);
}

void
ov_pause (const char *name)
{
  static _Atomic bool held; /* once per process (and its forks): a test acts once */
  const char *f = getenv ("OVSNAP_PAUSE");
  if (f == NULL || strcmp (f, name) != 0 || held)
    return;
  held = true;
  const char *ms = getenv ("OVSNAP_PAUSE_MS");
  const char *file = getenv ("OVSNAP_PAUSE_FILE");
  if (file && *file)
    {
      pause_for_file (file, ms ? atol (ms) : 60000);
      return;
    }
  sleep_ms (ms ? atol (ms) : 2000);
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
