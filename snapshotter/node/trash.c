#include "trash.h"
#include "dir.h"
#include "fault.h"
#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

int
ov_trash (struct ov_node *n, int dirfd, const char *name, const char *kind)
{
  int rootfd = n->fd;
  char to[PATH_MAX];
  int len = snprintf (to, sizeof to, "trash/%s.%s.%d.%lld", kind, name, getpid (),
                      (long long) now_ns ());
  if (len < 0 || (size_t) len >= sizeof to)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  for (char *p = to + 6; *p; p++)
    if (*p == '/')
      *p = '_';
  if (renameat (dirfd, name, rootfd, to) < 0 && errno != ENOENT)
    return -1;
  return 0;
}

struct reap
{
  struct ov_node *n;
  uint64_t *removed;
  ov_error_t *err;
  int r;
};

static int
reap_one (int dirfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct reap *rp = ctx;
  ov_fault ("trash-reap");
  if (ov_remove_tree (dirfd, name) < 0)
    rp->r = ov_error (rp->err, errno, "remove %s/trash/%s", rp->n->root, name);
  else
    (*rp->removed)++;
  return 0;
}

int
ov_trash_reap (struct ov_node *n, uint64_t *removed, ov_error_t *err)
{
  *removed = 0;
  cleanup_close int lock = ov_node_lock (n, "trash", err);
  if (lock < 0)
    return -1;
  struct reap rp = { n, removed, err, 0 };
  if (ov_dir_each_at (n->fd, "trash", true, reap_one, &rp) < 0)
    return ov_error (err, errno, "read %s/trash", n->root);
  return rp.r;
}

static int
any_entry (int dirfd UNUSED, const char *name UNUSED, unsigned char type UNUSED, void *ctx UNUSED)
{
  return 1;
}

static void
reap_run (void *ctx)
{
  struct ov_node *n = ctx;
  /* the inherited store lock would hold up every gc, or every command
   * after a gc, until the unlinks are done: trash entries are no one's */
  ov_store_unlock (n->store);
  uint64_t removed;
  ov_error_t e = NULL;
  if (ov_trash_reap (n, &removed, &e) < 0)
    fprintf (stderr, "ovsnap: reaping the trash: %s\n", e->msg);
  ov_error_free (&e);
}

void
ov_trash_reap_later (struct ov_node *n)
{
  if (ov_dir_each_at (n->fd, "trash", true, any_entry, NULL) == 1)
    ov_run_detached (reap_run, n);
}
