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

/* The trash's entries when the reaper was asked for: what gc found there
 * while it held the store lock. Entries trashed later wait for the next
 * gc, as they did when gc reaped them itself (an old upper may still
 * serve a lazily detached mount for a moment). */
struct reap
{
  struct ov_node *n;
  char **names;
  size_t n_names;
};

static int
list_one (int dirfd UNUSED, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct reap *rp = ctx;
  rp->names = xrealloc (rp->names, (rp->n_names + 1) * sizeof *rp->names);
  rp->names[rp->n_names++] = xstrdup (name);
  return 0;
}

static void
reap_run (void *ctx)
{
  struct reap *rp = ctx;
  /* the inherited store lock would hold up every gc, or every command
   * after a gc, until the unlinks are done: trash entries are no one's */
  ov_store_unlock (rp->n->store);
  ov_error_t e = NULL;
  cleanup_close int lock = ov_node_lock (rp->n, "trash", &e);
  cleanup_close int tfd = lock < 0 ? -1 : openat (rp->n->fd, "trash", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (tfd < 0)
    {
      fprintf (stderr, "ovsnap: reaping %s/trash: %s\n", rp->n->root, e ? e->msg : strerror (errno));
      ov_error_free (&e);
      return;
    }
  for (size_t i = 0; i < rp->n_names; i++)
    {
      ov_fault ("trash-reap");
      if (ov_remove_tree (tfd, rp->names[i]) < 0)
        fprintf (stderr, "ovsnap: remove %s/trash/%s: %s\n", rp->n->root, rp->names[i], strerror (errno));
    }
}

void
ov_trash_reap_later (struct ov_node *n)
{
  struct reap rp = { n, NULL, 0 };
  ov_dir_each_at (n->fd, "trash", true, list_one, &rp);
  if (rp.n_names)
    ov_run_detached (reap_run, &rp);
  for (size_t i = 0; i < rp.n_names; i++)
    free (rp.names[i]);
  free (rp.names);
}
