#include "trash.h"
#include "dir.h"

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
  struct reap rp = { n, removed, err, 0 };
  if (ov_dir_each_at (n->fd, "trash", true, reap_one, &rp) < 0)
    return ov_error (err, errno, "read %s/trash", n->root);
  return rp.r;
}
