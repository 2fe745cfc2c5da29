#include "layer.h"
#include "image.h"
#include "trash.h"
#include "dir.h"
#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

struct sync_job
{
  int rootfd;
  const char *layer;
};

static void
mark_synced (int rootfd, const char *layer)
{
  cleanup_free char *marker = xasprintf ("%s/synced", layer);
  int fd = openat (rootfd, marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0)
    {
      fsync (fd);
      close (fd);
    }
  cleanup_close int dfd = openat (rootfd, layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    fsync (dfd);
}

/* Background: make the layer durable, then say so. */
static void
sync_run (void *ctx)
{
  struct sync_job *j = ctx;
  if (syncfs (j->rootfd) == 0)
    mark_synced (j->rootfd, j->layer);
}

void
ov_layers_free (struct ov_layers *l)
{
  if (l->unsynced)
    {
      struct sync_job j = { l->rootfd, l->unsynced };
      ov_run_detached (sync_run, &j);
      free (l->unsynced);
    }
  for (size_t i = 0; i < l->n; i++)
    free (l->images[i]);
  free (l->images);
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

struct info
{
  bool has_base;
  struct ov_oid base;
  int depth;
  bool metacopy;
};

/* info: "base <hex>|-\ndepth <n>\nboot <boot id>\nmeta 0|1\n"; a layer
 * without its image (a tree of an older ovsnap) is no layer, nor is one
 * with metacopy entries when the store keeps no loose objects here (the
 * node now serves another store: S3). */
static int
read_info (struct ov_node *n, const struct ov_oid *tree, struct info *in)
{
  int rootfd = n->fd;
  char hex[OV_OID_STR], path[PATH_MAX], buf[160];
  oid_hex (tree, hex);
  snprintf (path, sizeof path, "cache/layers/%s/image", hex);
  if (faccessat (rootfd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  snprintf (path, sizeof path, "cache/layers/%s/info", hex);
  cleanup_close int fd = openat (rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t len = read_all (fd, buf, sizeof buf - 1);
  if (len <= 0)
    return -1;
  buf[len] = '\0';
  char b[OV_OID_STR + 8], boot[64], now[64];
  int meta;
  if (sscanf (buf, "base %44s\ndepth %d\nboot %63s\nmeta %d\n", b, &in->depth, boot, &meta) != 4
      || in->depth < 0 || in->depth > 2 * OV_LAYER_HARD_DEPTH || (meta != 0 && meta != 1))
    return -1;
  boot_id (now);
  snprintf (path, sizeof path, "cache/layers/%s/synced", hex);
  if (strcmp (boot, now) != 0 && faccessat (rootfd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  if (meta)
    {
      cleanup_free char *loose = ov_store_loose_dir (n->store);
      if (loose == NULL)
        return -1;
    }
  in->metacopy = meta;
  in->has_base = strcmp (b, "-") != 0;
  return in->has_base ? oid_parse (b, &in->base) : 0;
}

static bool
layer_exists (struct ov_node *n, const struct ov_oid *tree, int *depth)
{
  struct info in;
  if (read_info (n, tree, &in) < 0)
    return false;
  if (depth)
    *depth = in.depth;
  return true;
}

static int
chain (struct ov_node *n, const struct ov_oid *top, struct ov_layers *out, ov_error_t *err)
{
  struct ov_oid cur = *top;
  for (int i = 0; i <= 2 * OV_LAYER_HARD_DEPTH; i++)
    {
      struct info in;
      char hex[OV_OID_STR];
      oid_hex (&cur, hex);
      if (read_info (n, &cur, &in) < 0)
        return ov_error_set (err, OV_ECORRUPT, 0, "cache layer %s/cache/layers/%s is damaged",
                             n->root, hex);
      out->images = xrealloc (out->images, (out->n + 1) * sizeof *out->images);
      out->trees = xrealloc (out->trees, (out->n + 1) * sizeof *out->trees);
      out->images[out->n] = xasprintf ("%s/cache/layers/%s/image", n->root, hex);
      out->trees[out->n++] = cur;
      out->metacopy |= in.metacopy;
      if (!in.has_base)
        return 0;
      cur = in.base;
    }
  return ov_error_set (err, OV_ECORRUPT, 0, "cache layers of %s form a loop", n->root);
}

/* A layer's directory (or a half-built one) goes to the trash in one
 * rename: unlinking its image is the slow part (trash.h); gc reaps it. */
static int
remove_layer (struct ov_node *n, int dfd, const char *name)
{
  return ov_trash (n, dfd, name, "layer");
}

/* Writes a layer (image and info) into the new directory tmp. */
static int
write_layer (struct ov_node *n, const struct ov_snapshot *snap, const struct ov_oid *base, int depth,
             const char *tmp, bool sync, ov_error_t *err)
{
  int rootfd = n->fd;
  if (mkdirat (rootfd, tmp, 0700) < 0)
    return ov_error (err, errno, "create %s/%s", n->root, tmp);
  cleanup_close int tfd = openat (rootfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0)
    return ov_error (err, errno, "open %s/%s", n->root, tmp);
  cleanup_close int ifd = openat (tfd, "image", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (ifd < 0)
    return ov_error (err, errno, "create %s/%s/image", n->root, tmp);
  cleanup_free char *loose = ov_store_loose_dir (n->store);
  bool metacopy = false, full = true;
  if (ov_image_write (n->store, &snap->root, base, loose, ifd, &metacopy, &full, err) < 0)
    return -1;
  if (full)
    {
      base = NULL;
      depth = 0;
    }
  if (sync && fsync (ifd) < 0)
    return ov_error (err, errno, "sync %s/%s/image", n->root, tmp);
  char bhex[OV_OID_STR] = "-", boot[64];
  if (base)
    oid_hex (base, bhex);
  boot_id (boot);
  cleanup_free char *info
      = xasprintf ("base %s\ndepth %d\nboot %s\nmeta %d\n", bhex, depth, boot, metacopy ? 1 : 0);
  cleanup_close int fd = openat (tfd, "info", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write_all (fd, info, strlen (info)) < 0 || (sync && fsync (fd) < 0))
    return ov_error (err, errno, "write layer info");
  if (sync)
    mark_synced (rootfd, tmp);
  return 0;
}

/* Builds the layer; its syncing is left to ov_layers_free (out->unsynced). */
static int
build (struct ov_node *n, const struct ov_snapshot *snap, const struct ov_oid *base, int depth,
       struct ov_layers *out, ov_error_t *err)
{
  int rootfd = n->fd;
  char hex[OV_OID_STR], tmp[PATH_MAX], final[PATH_MAX];
  oid_hex (&snap->root.oid, hex);
  snprintf (tmp, sizeof tmp, "cache/tmp/%s.%d.%lld", hex, getpid (), (long long) now_ns ());
  snprintf (final, sizeof final, "cache/layers/%s", hex);
  int r = write_layer (n, snap, base, depth, tmp, false, err);
  /* A stale layer from an earlier boot (see boot_id) makes way. */
  if (r == 0)
    remove_layer (n, rootfd, final);
  if (r == 0 && renameat (rootfd, tmp, rootfd, final) < 0)
    r = ov_error (err, errno, "publish layer %s", final);
  if (r == 0)
    {
      out->unsynced = xstrdup (final);
      out->rootfd = rootfd;
    }
  if (r < 0)
    remove_layer (n, rootfd, tmp);
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
  if (!layer_exists (n, &snap->root.oid, NULL))
    {
      int bdepth = -1;
      bool delta = base && !oid_eq (base, &snap->root.oid) && layer_exists (n, base, &bdepth)
                   && bdepth + 1 < OV_LAYER_HARD_DEPTH;
      r = build (n, snap, delta ? base : NULL, delta ? bdepth + 1 : 0, out, err);
    }
  if (r == 0)
    {
      ov_error_t e = NULL;
      r = chain (n, &snap->root.oid, out, &e);
      if (r < 0)
        {
          /* a base below it could not be trusted: build this one whole */
          ov_error_free (&e);
          free (out->unsynced); /* replaced now: a later sync would mark the new one */
          out->unsynced = NULL;
          ov_layers_free (out);
          r = build (n, snap, NULL, 0, out, err);
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
ov_layers_mount (struct ov_node *n, const struct ov_layers *l, int **fds, size_t *nfds,
                 ov_error_t *err)
{
  cleanup_free char *loose = l->metacopy ? ov_store_loose_dir (n->store) : NULL;
  if (l->metacopy && loose == NULL)
    return ov_error_set (err, OV_ECORRUPT, 0,
                         "cache layers of %s name loose objects, but the store keeps none here",
                         n->root);
  return ov_image_mount (l->images, l->n, loose, false, fds, nfds, err);
}

static bool
is_mount_root (int dirfd, const char *path)
{
  struct statx stx;
  return statx (dirfd, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) == 0
         && (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
         && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

int
ov_layers_mount_dir (struct ov_node *n, const struct ov_layers *l, char **dir, ov_error_t *err)
{
  char hex[OV_OID_STR], rel[PATH_MAX];
  oid_hex (&l->trees[0], hex);
  snprintf (rel, sizeof rel, "cache/mnt/%s", hex);
  cleanup_free char *lname = xasprintf ("layer.%s", hex);
  cleanup_close int lock = ov_node_lock (n, lname, err);
  if (lock < 0)
    return -1;
  if ((mkdirat (n->fd, "cache/mnt", 0700) < 0 && errno != EEXIST)
      || (mkdirat (n->fd, rel, 0700) < 0 && errno != EEXIST))
    return ov_error (err, errno, "create %s/%s", n->root, rel);
  /* any mount there shows this tree (what it is named by): keep it */
  if (!is_mount_root (n->fd, rel))
    {
      cleanup_free char *loose = l->metacopy ? ov_store_loose_dir (n->store) : NULL;
      int *fds = NULL;
      size_t nfds = 0;
      if (l->metacopy && loose == NULL)
        return ov_error_set (err, OV_ECORRUPT, 0, "cache layers of %s name loose objects, but the store keeps none here", n->root);
      if (ov_image_mount (l->images, l->n, loose, true, &fds, &nfds, err) < 0)
        return -1;
      int r = move_mount (fds[0], "", n->fd, rel, MOVE_MOUNT_F_EMPTY_PATH);
      int e = errno;
      for (size_t i = 0; i < nfds; i++)
        close (fds[i]);
      free (fds);
      if (r < 0)
        return ov_error (err, e, "mount cache layer on %s/%s", n->root, rel);
    }
  *dir = xasprintf ("%s/%s", n->root, rel);
  return 0;
}

/* The host mount of a layer (ov_layers_mount_dir) goes with it: detached,
 * so what containers already mounted on it keeps working. */
static void
unmount_dir (struct ov_node *n, const char *name)
{
  char rel[PATH_MAX];
  snprintf (rel, sizeof rel, "cache/mnt/%s", name);
  cleanup_free char *abs = xasprintf ("%s/%s", n->root, rel);
  while (is_mount_root (n->fd, rel) && umount2 (abs, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
    ;
  unlinkat (n->fd, rel, AT_REMOVEDIR);
}

int
ov_layers_flatten (struct ov_node *n, const struct ov_snapshot *snap, ov_error_t *err)
{
  int rootfd = n->fd;
  char hex[OV_OID_STR], tmp[PATH_MAX], final[PATH_MAX];
  oid_hex (&snap->root.oid, hex);
  cleanup_free char *lname = xasprintf ("layer.%s", hex);
  cleanup_close int lock = ov_node_lock (n, lname, err);
  if (lock < 0)
    return -1;
  int depth;
  if (!layer_exists (n, &snap->root.oid, &depth) || depth == 0)
    return 0;
  snprintf (tmp, sizeof tmp, "cache/tmp/%s.flat.%d.%lld", hex, getpid (), (long long) now_ns ());
  snprintf (final, sizeof final, "cache/layers/%s", hex);
  int r = write_layer (n, snap, NULL, 0, tmp, true, err);
  /* the delta layer and its replacement trade places in one step: a
   * reader sees the one or the other, whole */
  if (r == 0 && renameat2 (rootfd, tmp, rootfd, final, RENAME_EXCHANGE) < 0)
    r = ov_error (err, errno, "publish %s", final);
  remove_layer (n, rootfd, tmp);
  return r;
}

struct evict
{
  struct ov_node *n;
  const struct ov_layers *chains; /* the kept layers and what they stand on */
  const struct ov_oid *keep;
  size_t nkeep;
  uint64_t *evicted;
};

static bool
kept (const struct evict *e, const char *name)
{
  struct ov_oid id;
  if (name[0] == '.' || oid_parse (name, &id) < 0)
    return true;
  for (size_t i = 0; i < e->chains->n; i++)
    if (oid_eq (&e->chains->trees[i], &id))
      return true;
  for (size_t i = 0; i < e->nkeep; i++)
    if (oid_eq (&e->keep[i], &id))
      return true;
  return false;
}

/* One rename into the trash (gc reaps it later), under the layer's lock:
 * never while ov_layers_get builds it or ov_layers_mount_dir mounts it.
 * Which layers are in use the records say (the caller's keep); a mount
 * the records miss keeps working on the renamed, then unlinked, image. */
static int
evict_one (int dfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct evict *e = ctx;
  if (kept (e, name))
    return 0;
  cleanup_free char *lname = xasprintf ("layer.%s", name);
  ov_error_t err = NULL;
  cleanup_close int lock = ov_node_lock (e->n, lname, &err);
  if (lock < 0)
    {
      ov_error_free (&err);
      return 0;
    }
  if (remove_layer (e->n, dfd, name) == 0)
    (*e->evicted)++;
  return 0;
}

static int
unmount_one (int dfd UNUSED, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct evict *e = ctx;
  if (!kept (e, name))
    unmount_dir (e->n, name);
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
    if (layer_exists (n, &keep[i], NULL))
      {
        ov_error_t e = NULL;
        if (chain (n, &keep[i], &all, &e) < 0)
          ov_error_free (&e);
      }
  struct evict e = { n, &all, keep, nkeep, evicted };
  int r = ov_dir_each_at (rootfd, "cache/layers", false, evict_one, &e);
  if (r == 0)
    r = ov_dir_each_at (rootfd, "cache/mnt", true, unmount_one, &e);
  ov_layers_free (&all);
  return r < 0 ? ov_error (err, errno, "read %s/cache/layers", n->root) : 0;
}
