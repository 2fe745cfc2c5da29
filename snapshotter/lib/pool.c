#include "pool.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>

struct pool
{
  size_t njobs;
  int (*fn) (size_t job, void *ctx, ov_error_t *err);
  void *ctx;
  atomic_size_t next;
  atomic_int failed;
  pthread_mutex_t lock;
  ov_error_t err;
};

int
ov_pool_threads (void)
{
  const char *env = getenv ("OVSNAP_THREADS");
  if (env && atoi (env) > 0)
    return atoi (env) > 64 ? 64 : atoi (env);
  long n = sysconf (_SC_NPROCESSORS_ONLN);
  /* Per-file work waits on the kernel often enough that two threads per
   * core keep both cores busy. */
  n = n < 1 ? 1 : n * 2;
  return n > 16 ? 16 : n;
}

static void *
worker (void *arg)
{
  struct pool *p = arg;
  while (!atomic_load (&p->failed))
    {
      size_t job = atomic_fetch_add (&p->next, 1);
      if (job >= p->njobs)
        break;
      ov_error_t e = NULL;
      if (p->fn (job, p->ctx, &e) < 0)
        {
          pthread_mutex_lock (&p->lock);
          if (p->err == NULL)
            p->err = e;
          else
            ov_error_free (&e);
          pthread_mutex_unlock (&p->lock);
          atomic_store (&p->failed, 1);
        }
    }
  return NULL;
}

int
ov_pool_run (size_t njobs, int (*fn) (size_t job, void *ctx, ov_error_t *err), void *ctx,
             ov_error_t *err)
{
  struct pool p = { .njobs = njobs, .fn = fn, .ctx = ctx };
  pthread_mutex_init (&p.lock, NULL);
  int nt = ov_pool_threads ();
  if ((size_t) nt > njobs)
    nt = njobs;
  pthread_t th[64];
  int started = 0;
  for (int i = 1; i < nt; i++)
    if (pthread_create (&th[started], NULL, worker, &p) == 0)
      started++;
  worker (&p);
  for (int i = 0; i < started; i++)
    pthread_join (th[i], NULL);
  pthread_mutex_destroy (&p.lock);
  if (p.err)
    {
      if (*err == NULL)
        *err = p.err;
      else
        ov_error_free (&p.err);
      return -1;
    }
  return 0;
}
