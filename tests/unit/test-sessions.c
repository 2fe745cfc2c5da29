/* Many operations on one store handle at once, as a daemon runs them:
 * 16 threads, each with its own session, put a tree of their own into one
 * volume and read it back; one of them fails at its pack's publish (a full
 * disk, injected for its session only). Every other put must be complete
 * in the head, byte for byte, the failing one absent, and fsck clean:
 * before sessions, the failed flush dropped the other threads' pending
 * objects too, and their records named objects that were never stored.
 * usage: test-sessions SCRATCH_DIR */
#include "tap.h"
#include "maint.h"
#include "put.h"
#include "snapshot.h"
#include "changeset.h"
#include "tree.h"
#include "volume.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#define THREADS 16
#define FILES 40
#define FAILING 11

static const char *scratch;
static struct ov_store *base;

struct job
{
  int i;
  int put_r, get_ok;
  char msg[512];
};

static size_t
file_size (int i, int j)
{
  /* small ones go to packs, every tenth is a loose object */
  return j % 10 == 9 ? (1u << 20) + 4096u * i + j : 100u + 97u * j + 13u * i;
}

static void
fill (uint8_t *b, size_t n, int i, int j)
{
  for (size_t k = 0; k < n; k++)
    b[k] = (uint8_t) (k * 31 + i * 7 + j * 131 + (k >> 8));
}

static int
make_tree (int i)
{
  char dir[4096];
  snprintf (dir, sizeof dir, "%s/src%d", scratch, i);
  if (mkdir (dir, 0755) < 0)
    return -1;
  for (int j = 0; j < FILES; j++)
    {
      char path[4200];
      snprintf (path, sizeof path, "%s/f%d", dir, j);
      size_t n = file_size (i, j);
      uint8_t *b = xmalloc (n);
      fill (b, n, i, j);
      int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      int ok = fd >= 0 && write_all (fd, b, n) == 0;
      if (fd >= 0)
        close (fd);
      free (b);
      if (!ok)
        return -1;
    }
  return 0;
}

/* Every file of thread i is in `root`, with its bytes. */
static bool
tree_holds (struct ov_store *s, const struct ov_entry *root, int i)
{
  for (int j = 0; j < FILES; j++)
    {
      char t[32], f[32];
      snprintf (t, sizeof t, "t%d", i);
      snprintf (f, sizeof f, "f%d", j);
      char *comps[2] = { t, f };
      struct ov_entry e;
      ov_error_t err = NULL;
      if (tree_lookup (s, root, comps, 2, &e, &err) < 0)
        {
          ov_error_free (&err);
          return false;
        }
      size_t n = file_size (i, j);
      struct ov_blob_loc loc;
      bool ok = e.size == n && ov_store_blob_loc (s, &e.oid, e.size, &loc, &err) == 0;
      if (ok)
        {
          uint8_t *got = xmalloc (n), *want = xmalloc (n);
          fill (want, n, i, j);
          ok = pread_all (loc.fd, got, n, loc.off) == (ssize_t) n && memcmp (got, want, n) == 0;
          ov_blob_loc_release (&loc);
          free (got);
          free (want);
        }
      ov_error_free (&err);
      entry_free (&e);
      if (!ok)
        return false;
    }
  return true;
}

static void *
run (void *arg)
{
  struct job *j = arg;
  struct ov_store *s = ov_store_session (base);
  if (j->i == FAILING)
    s->fail = "pack-publish";
  char local[4096], remote[32];
  snprintf (local, sizeof local, "%s/src%d/", scratch, j->i);
  snprintf (remote, sizeof remote, "/t%d", j->i);
  struct ov_put_item item = { local, remote };
  struct ov_snapshot snap;
  ov_error_t err = NULL;
  j->put_r = ov_put (s, "v", &item, 1, NULL, NULL, &snap, &err);
  if (j->put_r < 0)
    snprintf (j->msg, sizeof j->msg, "%s", err->msg);
  else
    {
      /* a get of what it put, through its own session */
      j->get_ok = tree_holds (s, &snap.root, j->i);
      snapshot_free (&snap);
    }
  ov_error_free (&err);
  ov_store_close (s);
  return NULL;
}

static void
count_problem (const char *msg, void *ctx)
{
  fprintf (stderr, "fsck: %s\n", msg);
  (*(int *) ctx)++;
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    return 2;
  scratch = argv[1];
  char root[4096];
  snprintf (root, sizeof root, "%s/store", scratch);
  ov_error_t err = NULL;
  struct ov_volume v;
  if (ov_store_open (&base, root, OV_STORE_CREATE, &err) < 0
      || ov_volume_create (base, "v", 500000, &v, &err) < 0)
    {
      fprintf (stderr, "%s\n", err->msg);
      return 1;
    }
  volume_free (&v);
  for (int i = 0; i < THREADS; i++)
    if (make_tree (i) < 0)
      return 1;
  struct job jobs[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++)
    {
      jobs[i] = (struct job){ .i = i };
      pthread_create (&th[i], NULL, run, &jobs[i]);
    }
  for (int i = 0; i < THREADS; i++)
    pthread_join (th[i], NULL);
  int failed = 0, ok_puts = 0, ok_gets = 0;
  for (int i = 0; i < THREADS; i++)
    {
      failed += jobs[i].put_r < 0;
      ok_puts += i != FAILING && jobs[i].put_r == 0;
      ok_gets += i != FAILING && jobs[i].get_ok;
      if (jobs[i].put_r < 0 && i != FAILING)
        fprintf (stderr, "thread %d: %s\n", i, jobs[i].msg);
    }
  ok (jobs[FAILING].put_r < 0 && strstr (jobs[FAILING].msg, "injected fault at pack-publish"),
      "the put whose pack could not be published fails, saying why");
  ok (failed == 1 && ok_puts == THREADS - 1, "it fails alone: the 15 other puts succeed");
  ok (ok_gets == THREADS - 1, "each of them reads back what it put, through its own session");
  struct ov_volume head;
  struct ov_snapshot snap;
  bool all = ov_volume_load (base, "v", &head, &err) == 0
             && ov_snapshot_load (base, &head.head, &snap, &err) == 0;
  bool complete = all, absent = all;
  for (int i = 0; all && i < THREADS; i++)
    if (i != FAILING)
      complete &= tree_holds (base, &snap.root, i);
  if (all)
    {
      char t[32];
      snprintf (t, sizeof t, "t%d", FAILING);
      char *comps[1] = { t };
      struct ov_entry e;
      ov_error_t e2 = NULL;
      absent = tree_lookup (base, &snap.root, comps, 1, &e, &e2) < 0 && e2->code == OV_ENOTFOUND;
      ov_error_free (&e2);
      snapshot_free (&snap);
      volume_free (&head);
    }
  ok (complete, "the head holds every file of the 15 successful puts, byte for byte");
  ok (absent, "and nothing of the failed one");
  int problems = 0;
  struct ov_fsck_result res;
  ov_error_free (&err);
  ok (ov_fsck (base, count_problem, &problems, &res, &err) == 0 && problems == 0,
      "fsck finds no problem");
  ov_error_free (&err);
  ov_store_close (base);
  return failures != 0;
}
