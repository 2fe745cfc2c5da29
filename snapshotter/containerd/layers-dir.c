/* Committed snapshots as plain directories: the upper of the active
 * snapshot stays where it is and serves as a lower from then on. */
#include "layers.h"
#include "util.h"

#include <ftw.h>
#include <search.h>
#include <stdio.h>
#include <sys/stat.h>

struct du
{
  struct ov_usage u;
  void *seen; /* tsearch tree of (dev, ino) */
};

static __thread struct du *du_cur;

static int
cmp_ino (const void *a, const void *b)
{
  const uint64_t *x = a, *y = b;
  if (x[0] != y[0])
    return x[0] < y[0] ? -1 : 1;
  return x[1] < y[1] ? -1 : x[1] > y[1];
}

static int
du_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) path;
  (void) ftw;
  if (flag == FTW_NS)
    return 0;
  uint64_t *k = xmalloc (2 * sizeof *k);
  k[0] = st->st_dev;
  k[1] = st->st_ino;
  void *found = tsearch (k, &du_cur->seen, cmp_ino);
  if (found == NULL)
    abort ();
  if (*(uint64_t **) found != k)
    {
      free (k);
      return 0;
    }
  du_cur->u.size += (int64_t) st->st_blocks * 512;
  du_cur->u.inodes++;
  return 0;
}

int
ov_disk_usage (const char *path, struct ov_usage *u, ov_error_t *err)
{
  struct du d = { { 0, 0 }, NULL };
  du_cur = &d;
  int r = nftw (path, du_one, 32, FTW_PHYS);
  int e = errno;
  du_cur = NULL;
  tdestroy (d.seen, free);
  if (r != 0)
    return ov_error (err, e, "disk usage of %s", path);
  *u = d.u;
  return 0;
}

static int
dir_commit (struct ov_layers *l, uint64_t id, uint64_t parent, const char *upper,
            const struct ov_commit_beside *beside, struct ov_usage *u, ov_error_t *err)
{
  (void) l;
  (void) id;
  (void) parent;
  if (ov_disk_usage (upper, u, err) < 0)
    return -1;
  return beside->fn (u, beside->ctx, err); /* nothing of its own to make durable */
}

static char *
dir_lower (struct ov_layers *l, uint64_t id)
{
  return xasprintf ("%s/s/%llu/fs", l->root, (unsigned long long) id);
}

static int
dir_remove (struct ov_layers *l, uint64_t id, ov_error_t *err)
{
  /* the directory is the snapshot's own: the snapshotter removes it */
  (void) l;
  (void) id;
  (void) err;
  return 0;
}

static void
dir_close (struct ov_layers *l)
{
  free (l->root);
  free (l);
}

static const struct ov_layers_ops dir_ops = { dir_commit, dir_lower, dir_remove, dir_close,
                                              NULL, NULL, NULL, NULL, NULL };

struct ov_layers *
ov_layers_dir_new (const char *root)
{
  struct ov_layers *l = xcalloc (1, sizeof *l);
  l->ops = &dir_ops;
  l->root = xstrdup (root);
  return l;
}
