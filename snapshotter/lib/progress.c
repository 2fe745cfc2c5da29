#include "progress.h"
#include "util.h"

#include <stdio.h>
#include <time.h>

static void
human (double v, char *out, size_t n)
{
  const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  int u = 0;
  while (v >= 1024 && u < 4)
    {
      v /= 1024;
      u++;
    }
  snprintf (out, n, "%.1f %s", v, units[u]);
}

static void
draw (struct ov_progress *p, bool final)
{
  double el = mono_seconds () - p->start;
  uint64_t f = atomic_load (&p->files), b = atomic_load (&p->bytes);
  char bs[32], rs[32];
  human (b, bs, sizeof bs);
  human (el > 0 ? b / el : 0, rs, sizeof rs);
  if (p->total_files)
    fprintf (stderr, "\r%s: %llu/%llu files, %s, %s/s   ", p->what, (unsigned long long) f,
             (unsigned long long) p->total_files, bs, rs);
  else
    fprintf (stderr, "\r%s: %llu files, %s, %s/s   ", p->what, (unsigned long long) f, bs, rs);
  if (final)
    fputc ('\n', stderr);
  fflush (stderr);
}

static void *
ticker (void *arg)
{
  struct ov_progress *p = arg;
  bool shown = false;
  while (!atomic_load (&p->stop))
    {
      struct timespec ts = { 0, 100 * 1000 * 1000 };
      nanosleep (&ts, NULL);
      double el = mono_seconds () - p->start;
      if (el < 1.0)
        continue;
      if (!shown || (int) (el * 10) % 3 == 0)
        draw (p, false);
      shown = true;
    }
  if (shown)
    draw (p, true);
  return NULL;
}

void
ov_progress_start (struct ov_progress *p, const char *what)
{
  p->what = what;
  p->start = mono_seconds ();
  atomic_store (&p->stop, false);
  p->active = isatty (STDERR_FILENO) && getenv ("OVSNAP_NO_PROGRESS") == NULL
              && pthread_create (&p->thread, NULL, ticker, p) == 0;
}

void
ov_progress_add (struct ov_progress *p, uint64_t files, uint64_t bytes)
{
  if (p == NULL)
    return;
  atomic_fetch_add (&p->files, files);
  atomic_fetch_add (&p->bytes, bytes);
}

void
ov_progress_end (struct ov_progress *p)
{
  if (!p->active)
    return;
  atomic_store (&p->stop, true);
  pthread_join (p->thread, NULL);
  p->active = false;
}
