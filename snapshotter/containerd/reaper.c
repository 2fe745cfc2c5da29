#include "reaper.h"
#include "dir.h"
#include "util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

struct ov_reaper
{
  int rootfd;
  const char *root;
  pthread_t th;
  bool started;
  pthread_mutex_t mu; /* guards the fields below */
  pthread_cond_t cv;
  bool pending, stop;
  double quiet_from; /* mono_seconds after which the thread may delete */
  uint64_t seq;      /* names trash entries that would collide */
  /* held while deleting a trash entry, so the thread and Cleanup never
   * delete the same one at once */
  pthread_mutex_t deleting;
};

static void
set_quiet_from (struct ov_reaper *r)
{
  r->quiet_from = mono_seconds () + OV_REAPER_QUIET_MS / 1000.0;
}

void
ov_reaper_busy (struct ov_reaper *r)
{
  pthread_mutex_lock (&r->mu);
  set_quiet_from (r);
  pthread_mutex_unlock (&r->mu);
}

int
ov_reaper_trash (struct ov_reaper *r, const char *from, const char *trash_name, ov_error_t *err)
{
  char to[96];
  snprintf (to, sizeof to, "trash/%s", trash_name);
  int rr = renameat (r->rootfd, from, r->rootfd, to);
  if (rr < 0 && (errno == EEXIST || errno == ENOTEMPTY))
    {
      /* an older entry of that name is still there */
      pthread_mutex_lock (&r->mu);
      unsigned long long n = ++r->seq;
      pthread_mutex_unlock (&r->mu);
      snprintf (to, sizeof to, "trash/%s.%llu", trash_name, n);
      rr = renameat (r->rootfd, from, r->rootfd, to);
    }
  if (rr < 0 && errno != ENOENT)
    return ov_error (err, errno, "move %s/%s to the trash", r->root, from);
  pthread_mutex_lock (&r->mu);
  r->pending = true;
  set_quiet_from (r);
  pthread_cond_signal (&r->cv);
  pthread_mutex_unlock (&r->mu);
  return 0;
}

struct sweep
{
  struct ov_reaper *r;
  bool background; /* the thread: give way to operations and to stop */
  ov_error_t *err;
  int rc;
};

/* true if the thread must stop deleting now (and go back to waiting) */
static bool
give_way (struct ov_reaper *r)
{
  pthread_mutex_lock (&r->mu);
  bool yield = r->stop || mono_seconds () < r->quiet_from;
  if (yield)
    r->pending = true;
  pthread_mutex_unlock (&r->mu);
  return yield;
}

static int
delete_one (int dirfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct sweep *w = ctx;
  if (w->background && give_way (w->r))
    return 1;
  pthread_mutex_lock (&w->r->deleting);
  int rc = ov_remove_tree (dirfd, name);
  int e = errno;
  pthread_mutex_unlock (&w->r->deleting);
  if (rc < 0)
    {
      if (w->background)
        fprintf (stderr, "ovsnap-snapshotter: warning: remove %s/trash/%s: %s\n", w->r->root, name,
                 strerror (e));
      else
        w->rc = ov_error (w->err, e, "remove %s/trash/%s", w->r->root, name);
    }
  return 0;
}

int
ov_reaper_empty (struct ov_reaper *r, ov_error_t *err)
{
  struct sweep w = { r, false, err, 0 };
  if (ov_dir_each_at (r->rootfd, "trash", true, delete_one, &w) < 0)
    return ov_error (err, errno, "read %s/trash", r->root);
  return w.rc;
}

static void *
reaper_main (void *arg)
{
  struct ov_reaper *r = arg;
  pthread_mutex_lock (&r->mu);
  for (;;)
    {
      while (!r->stop && !r->pending)
        pthread_cond_wait (&r->cv, &r->mu);
      if (r->stop)
        break;
      double wait = r->quiet_from - mono_seconds ();
      if (wait > 0)
        {
          struct timespec ts;
          clock_gettime (CLOCK_MONOTONIC, &ts);
          int64_t ns = ts.tv_nsec + (int64_t) (wait * 1e9);
          ts.tv_sec += ns / 1000000000;
          ts.tv_nsec = ns % 1000000000;
          pthread_cond_timedwait (&r->cv, &r->mu, &ts);
          continue; /* stopped, kicked again, or quiet now: look again */
        }
      r->pending = false;
      pthread_mutex_unlock (&r->mu);
      struct sweep w = { r, true, NULL, 0 };
      if (ov_dir_each_at (r->rootfd, "trash", true, delete_one, &w) < 0)
        fprintf (stderr, "ovsnap-snapshotter: warning: read %s/trash: %s\n", r->root, strerror (errno));
      pthread_mutex_lock (&r->mu);
    }
  pthread_mutex_unlock (&r->mu);
  return NULL;
}

struct ov_reaper *
ov_reaper_start (int rootfd, const char *root)
{
  struct ov_reaper *r = xcalloc (1, sizeof *r);
  r->rootfd = rootfd;
  r->root = root;
  pthread_mutex_init (&r->mu, NULL);
  pthread_mutex_init (&r->deleting, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init (&ca);
  pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
  pthread_cond_init (&r->cv, &ca);
  pthread_condattr_destroy (&ca);
  /* without the thread, the trash waits for Cleanup or the next start */
  r->started = pthread_create (&r->th, NULL, reaper_main, r) == 0;
  return r;
}

void
ov_reaper_stop (struct ov_reaper *r)
{
  if (r == NULL)
    return;
  if (r->started)
    {
      pthread_mutex_lock (&r->mu);
      r->stop = true;
      pthread_cond_signal (&r->cv);
      pthread_mutex_unlock (&r->mu);
      pthread_join (r->th, NULL);
    }
  pthread_cond_destroy (&r->cv);
  pthread_mutex_destroy (&r->mu);
  pthread_mutex_destroy (&r->deleting);
  free (r);
}
