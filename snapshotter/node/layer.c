#include "layer.h"
#include "trash.h"
#include "dir.h"
#include "changeset.h"
#include "materialize.h"
#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

void
ov_layers_free (struct ov_layers *l)
{
  for (size_t i = 0; i < l->n; i++)
    free (l->dirs[i]);
  free (l->dirs);
  free (l->trees);
  memset (l, 0, sizeof *l);
}

static int
cache_dirs (int rootfd, ov_error_t *err)
{
  static const char *const dirs[] = { "cache", "cache/layers", "cache/tmp", "trash" };
  for (size_t i = 0; i < ARRAY_SIZE (dirs); i++)
    if (mkdirat (rootfd, dirs[i], 0700) < 0 && errno != EEXIST)
      return ov_error (err, errno, "create %s", dirs[i]);
  return 0;
}

/* A layer is published without waiting for the disk; "synced" is added
 * once a background syncfs has made it durable. One from an earlier boot
 * without it may have lost data in a crash, so it is built again. */
static void
boot_id (char out[64])
{
  out[0] = '\0';
  int fd = open ("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read (fd, out, 63) : -1;
  if (fd >= 0)
    close (fd);
  out[n > 0 ? n : 0] = '\0';
  out[strcspn (out, "\n")] = '\0';
}

/* info: "base <hex>|-\ndepth <n>\nboot <boot id>\n" */
static int
read_info (int rootfd, const struct ov_oid *tree, bool *has_base, struct ov_oid *base, int *depth)
{
  char hex[OV_OID_STR], path[PATH_MAX], buf[128];
  oid_hex (tree, hex);
  snprintf (path, sizeof path, "cache/layers/%s/info", hex);
  cleanup_close int fd = openat (rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read_all (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  char b[OV_OID_STR + 8], boot[64], now[64];
  if (sscanf (buf, "base %44s\ndepth %d\nboot %63s\n", b, depth, boot) != 3 || *depth < 0
      || *depth > 2 * OV_LAYER_HARD_DEPTH)
    return -1;
  boot_id (now);
  snprintf (path, sizeof path, "cache/layers/%s/synced", hex);
  if (strcmp (boot, now) != 0 && faccessat (rootfd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  *has_base = strcmp (b, "-") != 0;
  return *has_base ? oid_parse (b, base) : 0;
}

static bool
has_flat (int rootfd, const struct ov_oid *tree)
{
  char hex[OV_OID_STR], path[PATH_MAX];
  oid_hex (tree, hex);
  snprintf (path, sizeof path, "cache/layers/%s/flat", hex);
  return faccessat (rootfd, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool
layer_exists (int rootfd, const struct ov_oid *tree, int *depth)
{
  bool hb;
  struct ov_oid b;
  int d;
  if (read_info (rootfd, tree, &hb, &b, &d) < 0)
    return false;
  if (depth)
    *depth = has_flat (rootfd, tree) ? 0 : d;
  return true;
}

static int
chain (struct ov_node *n, const struct ov_oid *top, struct ov_layers *out, ov_error_t *err)
{
  int rootfd = n->fd;
  struct ov_oid cur = *top;
  for (int i = 0; i <= 2 * OV_LAYER_HARD_DEPTH; i++)
    {
      bool hb;
      struct ov_oid base;
      int depth;
      char hex[OV_OID_STR];
      oid_hex (&cur, hex);
      if (read_info (rootfd, &cur, &hb, &base, &depth) < 0)
        return ov_error_set (err, OV_ECORRUPT, 0, "cache layer %s/cache/layers/%s is damaged",
                             n->root, hex);
      bool flat = has_flat (rootfd, &cur);
      out->dirs = xrealloc (out->dirs, (out->n + 1) * sizeof *out->dirs);
      out->trees = xrealloc (out->trees, (out->n + 1) * sizeof *out->trees);
      out->dirs[out->n] = xasprintf ("%s/cache/layers/%s/%s", n->root, hex, flat ? "flat" : "tree");
      out->trees[out->n++] = cur;
      if (!hb || flat)
        return 0;
      cur = base;
    }
  return ov_error_set (err, OV_ECORRUPT, 0, "cache layers of %s form a loop", n->root);
}

struct delta
{
  struct ov_store *s;
  struct ov_mat *mat;
  struct ov_tree **keep; /* trees whose entries the materializer still points to */
  size_t nkeep;
};

static struct ov_tree *
keep_tree (struct delta *d)
{
  d->keep = xrealloc (d->keep, (d->nkeep + 1) * sizeof *d->keep);
  return d->keep[d->nkeep++] = xcalloc (1, sizeof (struct ov_tree));
}

/* Entries of B that differ from A go into fd; entries only in A become
 * whiteouts. Directories present in both with different contents recurse. */
static int
delta_dir (struct delta *d, const struct ov_oid *a_tree, const struct ov_oid *b_tree, int fd,
           ov_error_t *err)
{
  struct ov_tree a;
  if (tree_load (d->s, a_tree, &a, err) < 0)
    return -1;
  struct ov_tree *b = keep_tree (d);
  if (tree_load (d->s, b_tree, b, err) < 0)
    {
      tree_free (&a);
      return -1;
    }
  int r = 0;
  size_t i = 0, j = 0;
  while (r == 0 && (i < a.n || j < b->n))
    {
      int c = i == a.n ? 1 : j == b->n ? -1 : strcmp (a.e[i].name, b->e[j].name);
      if (c < 0)
        {
          if (mknodat (fd, a.e[i].name, S_IFCHR | 0000, makedev (0, 0)) < 0)
            r = ov_error (err, errno, "whiteout %s", a.e[i].name);
          i++;
          continue;
        }
      if (c > 0)
        {
          r = ov_mat_add (d->mat, &b->e[j], fd, b->e[j].name, err);
          j++;
          continue;
        }
      const struct ov_entry *x = &a.e[i++], *y = &b->e[j++];
      if (x->type == OV_DIR && y->type == OV_DIR)
        {
          bool contents = !oid_eq (&x->oid, &y->oid);
          if (!contents && entry_meta_same (x, y))
            continue;
          /* an (at first empty) directory here merges with the one below */
          if (mkdirat (fd, y->name, 0700) < 0)
            {
              r = ov_error (err, errno, "create directory %s", y->name);
              continue;
            }
          int sub = openat (fd, y->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            {
              r = ov_error (err, errno, "open directory %s", y->name);
              continue;
            }
          ov_mat_adopt_dir (d->mat, sub, y);
          if (contents)
            r = delta_dir (d, &x->oid, &y->oid, sub, err);
          continue;
        }
      struct ov_entry xx = *x;
      xx.link_id = y->link_id;
      if (x->type == OV_DIR || y->type == OV_DIR || !entry_same (&xx, y))
        r = ov_mat_add (d->mat, y, fd, y->name, err);
    }
  tree_free (&a);
  return r;
}

struct sync_job
{
  int rootfd;
  const char *layer;
};

/* Background: make the layer durable, then say so. */
static void
sync_run (void *ctx)
{
  struct sync_job *j = ctx;
  if (syncfs (j->rootfd) < 0)
    return;
  cleanup_free char *marker = xasprintf ("%s/synced", j->layer);
  int fd = openat (j->rootfd, marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0)
    {
      fsync (fd);
      close (fd);
    }
  cleanup_close int dfd = openat (j->rootfd, j->layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    fsync (dfd);
}

static int
build (struct ov_node *n, const struct ov_snapshot *snap, const struct ov_oid *base, int depth,
       ov_error_t *err)
{
  struct ov_store *s = n->store;
  int rootfd = n->fd;
  char hex[OV_OID_STR], tmp[PATH_MAX], final[PATH_MAX];
  oid_hex (&snap->root.oid, hex);
  snprintf (tmp, sizeof tmp, "cache/tmp/%s.%d.%lld", hex, getpid (), (long long) now_ns ());
  snprintf (final, sizeof final, "cache/layers/%s", hex);
  if (mkdirat (rootfd, tmp, 0700) < 0)
    return ov_error (err, errno, "create %s/%s", n->root, tmp);
  cleanup_close int tfd = openat (rootfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0)
    return ov_error (err, errno, "open %s/%s", n->root, tmp);
  struct ov_mat *mat = ov_mat_new (s, 0, NULL);
  struct delta d = { s, mat, NULL, 0 };
  int r;
  if (base)
    {
      int rfd = -1;
      r = mkdirat (tfd, "tree", 0700) < 0 ? ov_error (err, errno, "create layer tree") : 0;
      if (r == 0 && (rfd = openat (tfd, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        r = ov_error (err, errno, "open layer tree");
      if (r == 0)
        {
          ov_mat_adopt_dir (mat, rfd, &snap->root);
          r = delta_dir (&d, base, &snap->root.oid, rfd, err);
        }
    }
  else
    r = ov_mat_add (mat, &snap->root, tfd, "tree", err);
  if (r == 0)
    r = ov_mat_finish (mat, err);
  ov_mat_free (mat);
  for (size_t i = 0; i < d.nkeep; i++)
    {
      tree_free (d.keep[i]);
      free (d.keep[i]);
    }
  free (d.keep);
  if (r == 0)
    {
      char bhex[OV_OID_STR] = "-";
      if (base)
        oid_hex (base, bhex);
      char boot[64];
      boot_id (boot);
      cleanup_free char *info = xasprintf ("base %s\ndepth %d\nboot %s\n", bhex, depth, boot);
      cleanup_close int fd = openat (tfd, "info", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0 || write_all (fd, info, strlen (info)) < 0)
        r = ov_error (err, errno, "write layer info");
    }
  /* A stale layer from an earlier boot (see boot_id) makes way. */
  if (r == 0)
    {
      ov_trash (n, rootfd, final, "stale-layer");
    }
  if (r == 0 && renameat (rootfd, tmp, rootfd, final) < 0)
    r = ov_error (err, errno, "publish layer %s", final);
  if (r == 0)
    {
      struct sync_job j = { rootfd, final };
      ov_run_detached (sync_run, &j);
    }
  if (r < 0)
    ov_trash (n, rootfd, tmp, "unfinished-layer");
  return r;
}

int
ov_layers_get (struct ov_node *n, const struct ov_snapshot *snap, const struct ov_oid *base,
               struct ov_layers *out, ov_error_t *err)
{
  memset (out, 0, sizeof *out);
  int rootfd = n->fd;
  if (cache_dirs (rootfd, err) < 0)
    return -1;
  char hex[OV_OID_STR];
  oid_hex (&snap->root.oid, hex);
  cleanup_free char *lname = xasprintf ("layer.%s", hex);
  cleanup_close int lock = ov_node_lock (n, lname, err);
  if (lock < 0)
    return -1;
  int r = 0;
  if (!layer_exists (rootfd, &snap->root.oid, NULL))
    {
      int bdepth = -1;
      bool delta = base && !oid_eq (base, &snap->root.oid) && layer_exists (rootfd, base, &bdepth)
                   && bdepth + 1 < OV_LAYER_HARD_DEPTH;
      r = build (n, snap, delta ? base : NULL, delta ? bdepth + 1 : 0, err);
    }
  if (r == 0)
    {
      ov_error_t e = NULL;
      r = chain (n, &snap->root.oid, out, &e);
      if (r < 0)
        {
          /* a base below it could not be trusted: build this one whole */
          ov_error_free (&e);
          ov_layers_free (out);
          r = build (n, snap, NULL, 0, err);
          if (r == 0)
            r = chain (n, &snap->root.oid, out, err);
        }
    }
  if (r < 0)
    ov_layers_free (out);
  else
    out->deep = out->n > OV_LAYER_MAX_DEPTH;
  return r;
}

int
ov_layers_flatten (struct ov_node *n, const struct ov_snapshot *snap, ov_error_t *err)
{
  struct ov_store *s = n->store;
  int rootfd = n->fd;
  char hex[OV_OID_STR], tmp[PATH_MAX], final[PATH_MAX];
  oid_hex (&snap->root.oid, hex);
  cleanup_free char *lname = xasprintf ("layer.%s", hex);
  cleanup_close int lock = ov_node_lock (n, lname, err);
  if (lock < 0)
    return -1;
  if (has_flat (rootfd, &snap->root.oid) || !layer_exists (rootfd, &snap->root.oid, NULL))
    return 0;
  snprintf (tmp, sizeof tmp, "cache/tmp/%s.flat.%d.%lld", hex, getpid (), (long long) now_ns ());
  snprintf (final, sizeof final, "cache/layers/%s/flat", hex);
  if (mkdirat (rootfd, tmp, 0700) < 0)
    return ov_error (err, errno, "create %s/%s", n->root, tmp);
  cleanup_close int tfd = openat (rootfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = tfd < 0 ? ov_error (err, errno, "open %s/%s", n->root, tmp)
                  : ov_materialize (s, &snap->root, tfd, "tree", 0, NULL, err);
  if (r == 0 && syncfs (tfd) < 0)
    r = ov_error (err, errno, "sync layer");
  cleanup_free char *built = xasprintf ("%s/tree", tmp);
  if (r == 0 && renameat (rootfd, built, rootfd, final) < 0)
    r = ov_error (err, errno, "publish %s", final);
  ov_trash (n, rootfd, tmp, "flattening");
  return r;
}

struct evict
{
  struct ov_node *n;
  const struct ov_layers *keep;
  uint64_t *evicted;
};

static int
evict_one (int dfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct evict *e = ctx;
  struct ov_oid id;
  if (name[0] == '.' || oid_parse (name, &id) < 0)
    return 0;
  for (size_t i = 0; i < e->keep->n; i++)
    if (oid_eq (&e->keep->trees[i], &id))
      return 0;
  if (ov_trash (e->n, dfd, name, "layer") == 0)
    (*e->evicted)++;
  return 0;
}

int
ov_layers_evict (struct ov_node *n, const struct ov_oid *keep, size_t nkeep, uint64_t *evicted,
                 ov_error_t *err)
{
  int rootfd = n->fd;
  *evicted = 0;
  if (cache_dirs (rootfd, err) < 0)
    return -1;
  /* everything kept layers stand on is kept too */
  struct ov_layers all = { 0 };
  for (size_t i = 0; i < nkeep; i++)
    if (layer_exists (rootfd, &keep[i], NULL))
      {
        ov_error_t e = NULL;
        if (chain (n, &keep[i], &all, &e) < 0)
          ov_error_free (&e);
      }
  struct evict e = { n, &all, evicted };
  int r = ov_dir_each_at (rootfd, "cache/layers", false, evict_one, &e);
  ov_layers_free (&all);
  return r < 0 ? ov_error (err, errno, "read %s/cache/layers", n->root) : 0;
}
