/* Helpers declared in util.h. Allocation failure aborts: ovsnap cannot do
 * anything useful without memory, and a half-built record must never be
 * written. */
#include "util.h"

#include <pthread.h>

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static void *
oom (void)
{
  fputs ("ovsnap: out of memory\n", stderr);
  abort ();
}

void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  return p ? p : oom ();
}

void *
xcalloc (size_t n, size_t m)
{
  void *p = calloc (n ? n : 1, m ? m : 1);
  return p ? p : oom ();
}

void *
xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  return p ? p : oom ();
}

char *
xstrdup (const char *s)
{
  char *p = strdup (s);
  return p ? p : oom ();
}

char *
xstrndup (const char *s, size_t n)
{
  char *p = strndup (s, n);
  return p ? p : oom ();
}

char *
xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *p;
  va_start (ap, fmt);
  if (vasprintf (&p, fmt, ap) < 0)
    oom ();
  va_end (ap);
  return p;
}

void
buf_reserve (struct ov_buf *b, size_t extra)
{
  if (b->len + extra <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra)
    cap *= 2;
  b->data = xrealloc (b->data, cap);
  b->cap = cap;
}

void
buf_free (struct ov_buf *b)
{
  free (b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

const uint8_t ov_zeros[8];

ssize_t
read_all (int fd, void *buf, size_t n)
{
  size_t got = 0;
  while (got < n)
    {
      ssize_t r = read (fd, (char *) buf + got, n - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      if (r == 0)
        break;
      got += r;
    }
  return got;
}

ssize_t
pread_all (int fd, void *buf, size_t n, off_t off)
{
  size_t got = 0;
  while (got < n)
    {
      ssize_t r = pread (fd, (char *) buf + got, n - got, off + got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      if (r == 0)
        break;
      got += r;
    }
  return got;
}

/* off < 0: at the file position (pipes, stdout) */
static int
write_loop (int fd, const void *buf, size_t n, off_t off)
{
  for (size_t done = 0; done < n;)
    {
      const char *p = (const char *) buf + done;
      ssize_t r = off < 0 ? write (fd, p, n - done) : pwrite (fd, p, n - done, off + done);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      done += r;
    }
  return 0;
}

int
pwrite_all (int fd, const void *buf, size_t n, off_t off)
{
  return write_loop (fd, buf, n, off);
}

int
write_all (int fd, const void *buf, size_t n)
{
  return write_loop (fd, buf, n, -1);
}

int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double
mono_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int trace_on;
static double trace_start;
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;

static void
trace_init (void)
{
  trace_on = getenv ("OVSNAP_TRACE") != NULL;
  trace_start = mono_seconds ();
}

void
ov_trace (const char *step)
{
  pthread_once (&trace_once, trace_init);
  if (trace_on)
    fprintf (stderr, "ovsnap trace: %8.2f ms  %s (pid %d)\n", (mono_seconds () - trace_start) * 1e3, step,
             (int) getpid ());
}
