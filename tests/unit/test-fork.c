/* fork() while other threads work the store, as a daemon's commit does
 * when it starts its capture worker: 4 threads put and look up objects on
 * their own sessions (each taking the shared packs' lock thousands of
 * times a second) while the main thread forks 100 children that each
 * write and read back an object through the same store. Without the fork
 * guards (lib/proc.h) a child that inherited the lock held by a thread
 * that does not exist in it waits forever: here it is killed by its alarm
 * and counted. Prints TAP. Usage: test-fork SCRATCH-DIR */
#include "store.h"
#include "pack.h"
#include "tap.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#define THREADS 4
#define FORKS 100

static struct ov_store *base;
static volatile int stop;

static void *
hammer (void *arg)
{
  int i = (int) (intptr_t) arg;
  struct ov_store *s = ov_store_session (base);
  uint8_t b[256];
  long n = 0;
  while (!stop)
    {
      for (size_t k = 0; k < sizeof b; k++)
        b[k] = (uint8_t) (k + i * 31 + n);
      memcpy (b, &n, sizeof n);
      b[sizeof n] = (uint8_t) i;
      struct ov_oid id;
      ov_error_t err = NULL;
      struct ov_blob_loc loc;
      if (ov_store_put_blob_mem (s, b, sizeof b, &id, NULL, &err) < 0
          || (n % 64 == 0 && ov_store_sync (s, &err) < 0)
          || ov_store_blob_loc (s, &id, sizeof b, &loc, &err) < 0)
        {
          fprintf (stderr, "thread %d: %s\n", i, err->msg);
          ov_error_free (&err);
          break;
        }
      ov_blob_loc_release (&loc);
      n++;
    }
  ov_error_t err = NULL;
  if (ov_store_sync (s, &err) < 0)
    ov_error_free (&err);
  ov_store_close (s);
  return NULL;
}

/* In the child: one object written and read back through the store. */
static int
child_work (int k)
{
  alarm (5);
  struct ov_store *s = ov_store_session (base);
  char msg[64];
  int n = snprintf (msg, sizeof msg, "written by forked child %d", k);
  struct ov_oid id;
  struct ov_blob_loc loc;
  ov_error_t err = NULL;
  char back[64];
  int ok = ov_store_put_blob_mem (s, msg, n, &id, NULL, &err) == 0 && ov_store_sync (s, &err) == 0
           && ov_store_blob_loc (s, &id, n, &loc, &err) == 0
           && pread_all (loc.fd, back, n, loc.off) == n && memcmp (back, msg, n) == 0;
  return ok ? 0 : 1;
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      fprintf (stderr, "usage: test-fork SCRATCH-DIR\n");
      return 2;
    }
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s/fork-store", argv[1]);
  ov_error_t err = NULL;
  if (ov_store_open (&base, dir, OV_STORE_CREATE, &err) < 0)
    {
      fprintf (stderr, "%s\n", err->msg);
      return 1;
    }
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create (&th[i], NULL, hammer, (void *) (intptr_t) i);
  int hung = 0, failed = 0;
  for (int k = 0; k < FORKS; k++)
    {
      fflush (NULL);
      pid_t pid = fork ();
      if (pid == 0)
        _exit (child_work (k));
      int status = 0;
      while (pid > 0 && waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
      if (pid < 0 || (WIFSIGNALED (status) && WTERMSIG (status) == SIGALRM))
        {
          hung++;
          break; /* one is enough to tell */
        }
      else if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        failed++;
    }
  stop = 1;
  for (int i = 0; i < THREADS; i++)
    pthread_join (th[i], NULL);
  printf ("# %d children hung, %d failed\n", hung, failed);
  ok (hung == 0, "no forked child waits on a lock another thread held at the fork");
  ok (failed == 0, "every child writes an object and reads it back");
  struct ov_blob_loc loc;
  char msg[64];
  int n = snprintf (msg, sizeof msg, "written by forked child %d", 0);
  struct ov_oid id;
  ov_hash (msg, n, &id);
  bool seen = ov_store_blob_loc (base, &id, n, &loc, &err) == 0;
  ok (seen, "the parent sees what a child published");
  if (seen)
    ov_blob_loc_release (&loc);
  ov_error_free (&err);
  ov_store_close (base);
  printf ("1..%d\n", tests);
  return failures ? 1 : 0;
}
