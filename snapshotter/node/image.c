#include "image.h"
#include "erofs.h"
#include "diff.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <linux/loop.h>
#include <linux/mount.h>

#define OVL_XATTR "trusted.overlay."

/* A file's content read from the store: where it is, what it must hash to. */
struct src
{
  struct ov_oid oid;
  uint64_t size;
  struct ov_blob_loc loc;
  bool located;               /* loc holds a reference */
  struct ov_erofs_node *node; /* the image's inode, told loc once it is known */
  struct ov_hasher h; /* files past OV_EROFS_VERIFY_WHOLE come in pieces */
  bool hashing;
};

struct link
{
  uint64_t id;
  struct ov_erofs_node *node;
};

struct img
{
  struct ov_store *s;
  struct ov_erofs *w;
  const char *loose_dir;
  bool metacopy;
  bool delta;  /* writing what changed since a base */
  bool linked; /* the delta touches a hard-link group: only a full image keeps its nlink */
  struct src **srcs;
  size_t nsrcs;
  struct link *links; /* open addressing on link_id, capacity a power of two */
  size_t nlinks, caplinks;
};

static struct ov_erofs_node **
link_slot (struct img *im, uint64_t id)
{
  if (2 * (im->nlinks + 1) > im->caplinks)
    {
      size_t cap = im->caplinks ? 2 * im->caplinks : 64;
      struct link *v = xcalloc (cap, sizeof *v);
      for (size_t i = 0; i < im->caplinks; i++)
        if (im->links[i].id)
          {
            size_t j = im->links[i].id * 0x9E3779B97F4A7C15ull & (cap - 1);
            while (v[j].id)
              j = (j + 1) & (cap - 1);
            v[j] = im->links[i];
          }
      free (im->links);
      im->links = v;
      im->caplinks = cap;
    }
  size_t j = id * 0x9E3779B97F4A7C15ull & (im->caplinks - 1);
  while (im->links[j].id && im->links[j].id != id)
    j = (j + 1) & (im->caplinks - 1);
  if (im->links[j].id == 0)
    {
      im->links[j].id = id;
      im->nlinks++;
    }
  return &im->links[j].node;
}

static int
verify (void *ctx UNUSED, void *tag, uint64_t off, const void *buf, size_t n, uint64_t total,
        ov_error_t *err)
{
  struct src *f = tag;
  struct ov_oid got;
  if (off == 0 && n == total)
    ov_hash (buf, n, &got);
  else
    {
      if (off == 0)
        {
          ov_hasher_init (&f->h);
          f->hashing = true;
        }
      ov_hasher_update (&f->h, buf, n);
      if (off + n < total)
        return 0;
      ov_hasher_final (&f->h, &got);
      ov_hasher_free (&f->h);
      f->hashing = false;
    }
  if (total != f->size || memcmp (got.b, f->oid.b, 16) != 0)
    {
      char hex[OV_OID_STR];
      oid_hex (&f->oid, hex);
      return ov_corrupt (err, "object %s is corrupt (content does not match its hash)", hex);
    }
  return 0;
}

/* The entry's xattrs as the image holds them: the snapshot's, without
 * overlay's own names, then `extra`. */
static struct ov_erofs_xattr *
xattrs_of (const struct ov_entry *e, const struct ov_erofs_xattr *extra, size_t nextra, size_t *n)
{
  struct ov_erofs_xattr *v = xcalloc (e->nxattrs + nextra + 1, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < e->nxattrs; i++)
    if (strncmp (e->xattrs[i].name, OVL_XATTR, strlen (OVL_XATTR)) != 0)
      v[k++] = (struct ov_erofs_xattr){ e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].len };
  for (size_t i = 0; i < nextra; i++)
    v[k++] = extra[i];
  *n = k;
  return v;
}

static void
meta_of (const struct ov_entry *e, struct ov_erofs_meta *m)
{
  memset (m, 0, sizeof *m);
  m->mode = e->mode;
  m->uid = e->uid;
  m->gid = e->gid;
  m->mtime = e->mtime_sec;
  m->mtime_nsec = e->mtime_nsec;
  if (e->type == OV_CHR || e->type == OV_BLK)
    {
      m->rdev_major = major (e->rdev);
      m->rdev_minor = minor (e->rdev);
    }
  if (e->type == OV_LNK && e->target)
    {
      m->link = e->target;
      m->linklen = strlen (e->target);
    }
}

static int add_tree (struct img *im, struct ov_erofs_node *dir, const struct ov_oid *tree,
                     ov_error_t *err);

/* A regular file's content: a store range, located once the whole image
 * is laid out (locate), or a metacopy entry naming the loose object (its
 * redirect goes to redirect[], kept by the caller). */
static int
content_of (struct img *im, const struct ov_entry *e, struct ov_erofs_meta *m, char *redirect,
            size_t rlen, struct src **out, bool *meta_copy, ov_error_t *err)
{
  *meta_copy = false;
  *out = NULL;
  if (e->size == 0)
    return 0;
  if (e->size > OV_SMALL_BLOB && im->loose_dir)
    {
      struct ov_blob_loc loc;
      if (ov_store_blob_loc (im->s, &e->oid, e->size, &loc, err) < 0)
        return -1;
      ov_blob_loc_release (&loc);
      /* objects/ab/cdef.. is /ab/cdef.. in the data-only lower */
      char key[PATH_MAX];
      ov_key (OV_BLOB, &e->oid, key, sizeof key);
      const char *slash = strchr (key, '/');
      snprintf (redirect, rlen, "%s", slash ? slash : key);
      m->data = (struct ov_erofs_data){ .kind = OV_EROFS_DATA_SPARSE, .len = e->size };
      *meta_copy = im->metacopy = true;
      return 0;
    }
  struct src *f = xcalloc (1, sizeof *f);
  f->oid = e->oid;
  f->size = e->size;
  im->srcs = xrealloc (im->srcs, (im->nsrcs + 1) * sizeof *im->srcs);
  im->srcs[im->nsrcs++] = f;
  m->data = (struct ov_erofs_data){ .kind = OV_EROFS_DATA_FD, .fd = -1, .len = e->size, .tag = f };
  *out = f;
  return 0;
}

/* Every file's contents, fetched in one batch from a remote store (one
 * request per file otherwise), then located for the writer. */
static int
locate (struct img *im, ov_error_t *err)
{
  int r = 0;
  if (ov_store_fetches (im->s))
    {
      struct ov_obj_ref *refs = xmalloc ((im->nsrcs + 1) * sizeof *refs);
      for (size_t i = 0; i < im->nsrcs; i++)
        refs[i] = (struct ov_obj_ref){ OV_BLOB, im->srcs[i]->oid, im->srcs[i]->size };
      r = ov_store_prefetch (im->s, refs, im->nsrcs, err);
      free (refs);
    }
  for (size_t i = 0; r == 0 && i < im->nsrcs; i++)
    {
      struct src *f = im->srcs[i];
      r = ov_store_blob_loc (im->s, &f->oid, f->size, &f->loc, err);
      if (r == 0)
        {
          f->located = true;
          ov_erofs_set_source (f->node, f->loc.fd, f->loc.off, f);
        }
    }
  return r;
}

static int
add_entry (struct img *im, struct ov_erofs_node *dir, const struct ov_entry *e, bool opaque,
           ov_error_t *err)
{
  size_t namelen = strlen (e->name);
  im->linked |= im->delta && e->link_id && e->type != OV_DIR;
  if (e->link_id && e->type != OV_DIR)
    {
      struct ov_erofs_node **slot = link_slot (im, e->link_id);
      if (*slot)
        return ov_erofs_link (im->w, dir, e->name, namelen, *slot, err);
    }
  struct ov_erofs_meta m;
  meta_of (e, &m);
  char redirect[PATH_MAX];
  bool meta_copy = false;
  struct src *f = NULL;
  if (e->type == OV_REG && content_of (im, e, &m, redirect, sizeof redirect, &f, &meta_copy, err) < 0)
    return -1;
  struct ov_erofs_xattr extra[2];
  size_t nextra = 0;
  if (meta_copy)
    {
      extra[nextra++] = (struct ov_erofs_xattr){ OVL_XATTR "metacopy", "", 0 };
      extra[nextra++] = (struct ov_erofs_xattr){ OVL_XATTR "redirect", redirect, strlen (redirect) };
    }
  if (opaque)
    extra[nextra++] = (struct ov_erofs_xattr){ OVL_XATTR "opaque", "y", 1 };
  cleanup_free struct ov_erofs_xattr *xv = xattrs_of (e, extra, nextra, &m.nxattrs);
  m.xattrs = xv;
  struct ov_erofs_node *node = ov_erofs_add (im->w, dir, e->name, namelen, &m, err);
  if (node == NULL)
    return -1;
  if (f)
    f->node = node;
  if (e->link_id && e->type != OV_DIR)
    *link_slot (im, e->link_id) = node;
  return e->type == OV_DIR ? add_tree (im, node, &e->oid, err) : 0;
}

static int
add_tree (struct img *im, struct ov_erofs_node *dir, const struct ov_oid *tree, ov_error_t *err)
{
  struct ov_tree t;
  if (tree_load (im->s, tree, &t, err) < 0)
    return -1;
  int r = tree_prefetch_subtrees (im->s, &t, err);
  for (size_t i = 0; r == 0 && i < t.n; i++)
    r = add_entry (im, dir, &t.e[i], false, err);
  tree_free (&t);
  return r;
}

static int
whiteout (struct img *im, struct ov_erofs_node *dir, const char *name, ov_error_t *err)
{
  struct ov_erofs_meta m = { .mode = S_IFCHR | 0000 };
  return ov_erofs_add (im->w, dir, name, strlen (name), &m, err) ? 0 : -1;
}

/* Removing or replacing e may drop a name of a hard-link group (e itself,
 * or anything below a directory that is not empty). */
static bool
touches_links (const struct ov_entry *e)
{
  return e->type == OV_DIR ? e->inodes > 0 : e->link_id != 0;
}

static int delta_dir (struct img *im, struct ov_erofs_node *dir, const struct ov_oid *a_tree,
                      const struct ov_oid *b_tree, ov_error_t *err);

/* A directory in both trees: in the image only if its metadata or its
 * contents changed, and then merged with the one below. */
static int
delta_subdir (struct img *im, struct ov_erofs_node *dir, const struct ov_entry *x,
              const struct ov_entry *y, ov_error_t *err)
{
  bool contents = !oid_eq (&x->oid, &y->oid);
  if (!contents && entry_meta_same (x, y))
    return 0;
  struct ov_erofs_meta m;
  meta_of (y, &m);
  cleanup_free struct ov_erofs_xattr *xv = xattrs_of (y, NULL, 0, &m.nxattrs);
  m.xattrs = xv;
  struct ov_erofs_node *sub = ov_erofs_add (im->w, dir, y->name, strlen (y->name), &m, err);
  if (sub == NULL)
    return -1;
  return contents ? delta_dir (im, sub, &x->oid, &y->oid, err) : 0;
}

/* Entries of tree b that differ from tree a; entries only in a become
 * whiteouts. Directories in both with different contents recurse (an
 * image directory merges with the one below); a directory that replaced a
 * non-directory is opaque. */
static int
delta_dir (struct img *im, struct ov_erofs_node *dir, const struct ov_oid *a_tree,
           const struct ov_oid *b_tree, ov_error_t *err)
{
  struct ov_tree_pair tp;
  if (ov_tree_pair_open (im->s, a_tree, b_tree, &tp, err) < 0)
    return -1;
  int r = 0;
  const struct ov_entry *x, *y;
  while (r == 0 && ov_tree_pair_next (&tp, &x, &y))
    {
      if (y == NULL)
        {
          im->linked |= touches_links (x);
          r = whiteout (im, dir, x->name, err);
        }
      else if (x == NULL)
        r = add_entry (im, dir, y, false, err);
      else if (x->type == OV_DIR && y->type == OV_DIR)
        r = delta_subdir (im, dir, x, y, err);
      else if (x->type == OV_DIR || y->type == OV_DIR || !entry_same_but_link (x, y))
        {
          im->linked |= touches_links (x);
          r = add_entry (im, dir, y, y->type == OV_DIR, err);
        }
    }
  ov_tree_pair_close (&tp);
  return r;
}

static void
img_free (struct img *im)
{
  for (size_t i = 0; i < im->nsrcs; i++)
    {
      if (im->srcs[i]->hashing)
        ov_hasher_free (&im->srcs[i]->h);
      if (im->srcs[i]->located)
        ov_blob_loc_release (&im->srcs[i]->loc);
      free (im->srcs[i]);
    }
  free (im->srcs);
  free (im->links);
  ov_erofs_free (im->w);
}

/* Lays out the image in memory; *linked when a delta cannot be one. */
static int
img_build (struct img *im, const struct ov_entry *root, const struct ov_oid *base_tree,
           ov_error_t *err)
{
  ov_erofs_set_verify (im->w, verify, im);
  ov_erofs_map_sources (im->w); /* packs and objects are immutable */
  im->delta = base_tree != NULL;
  struct ov_erofs_meta m;
  meta_of (root, &m);
  cleanup_free struct ov_erofs_xattr *xv = xattrs_of (root, NULL, 0, &m.nxattrs);
  m.xattrs = xv;
  if (ov_erofs_set_root (im->w, &m, err) < 0)
    return -1;
  return base_tree ? delta_dir (im, ov_erofs_root (im->w), base_tree, &root->oid, err)
                   : add_tree (im, ov_erofs_root (im->w), &root->oid, err);
}

int
ov_image_write (struct ov_store *s, const struct ov_entry *root, const struct ov_oid *base_tree,
                const char *loose_dir, int out_fd, bool *metacopy, bool *full, ov_error_t *err)
{
  *full = base_tree == NULL;
  struct img im = { .s = s, .w = ov_erofs_new (), .loose_dir = loose_dir };
  ov_trace ("image: start");
  int r = img_build (&im, root, base_tree, err);
  ov_trace ("image: laid out");
  if (r == 0 && im.linked)
    {
      /* a hard link's other names would come from the image below, a
       * separate inode: the whole tree instead (nothing is written yet) */
      img_free (&im);
      im = (struct img){ .s = s, .w = ov_erofs_new (), .loose_dir = loose_dir };
      r = img_build (&im, root, NULL, err);
      *full = true;
    }
  if (r == 0)
    r = locate (&im, err);
  ov_trace ("image: contents located");
  if (r == 0)
    r = ov_erofs_write (im.w, out_fd, err);
  ov_trace ("image: written");
  *metacopy = im.metacopy;
  img_free (&im);
  return r;
}

/* The kernel's own words on a failed fsconfig (fs context log). */
static int
fs_error (int fs, ov_error_t *err, int e, const char *what, const char *obj)
{
  char msg[512];
  ssize_t n = read (fs, msg, sizeof msg - 1);
  msg[n > 0 ? n : 0] = '\0';
  msg[strcspn (msg, "\n")] = '\0';
  return ov_error (err, e, "%s %s%s%s", what, obj, n > 0 ? ": " : "", n > 0 ? msg : "");
}

/* A read-only loop device over the image, detached by the kernel when its
 * last mount goes (autoclear); returns its open fd, its name in dev. */
static int
loop_attach (const char *path, char *dev, size_t devlen, ov_error_t *err)
{
  cleanup_close int img = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (img < 0)
    return ov_error (err, errno, "open image %s", path);
  cleanup_close int ctl = open ("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0)
    return ov_error (err, errno, "open /dev/loop-control for %s", path);
  /* another process may take the free device first: try again */
  for (int tries = 0; tries < 16; tries++)
    {
      int nr = ioctl (ctl, LOOP_CTL_GET_FREE);
      if (nr < 0)
        return ov_error (err, errno, "find a free loop device for %s", path);
      snprintf (dev, devlen, "/dev/loop%d", nr);
      int fd = open (dev, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return ov_error (err, errno, "open %s for %s", dev, path);
      struct loop_config c = { .fd = img, .block_size = 0 };
      c.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
      if (ioctl (fd, LOOP_CONFIGURE, &c) == 0)
        return fd;
      int e = errno;
      close (fd);
      if (e != EBUSY)
        return ov_error (err, e, "attach %s to %s", path, dev);
    }
  return ov_error (err, EBUSY, "attach %s to a loop device: every free one was taken", path);
}

static int
fsopen_image (const char *source, ov_error_t *err)
{
  int fs = fsopen ("erofs", FSOPEN_CLOEXEC);
  if (fs < 0)
    return ov_error (err, errno, "fsopen erofs for %s", source);
  /* ro: a read-only loop device refuses a writer */
  if (fsconfig (fs, FSCONFIG_SET_STRING, "source", source, 0) < 0
      || fsconfig (fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0
      || fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    {
      int e = errno;
      fs_error (fs, err, e, "mount image", source);
      close (fs);
      errno = e;
      return -1;
    }
  return fs;
}

/* File-backed (no loop device) where the image's file system can back a
 * mount (it needs read_folio: ext4, xfs, btrfs...); tmpfs cannot
 * (ENOTBLK), so there the image goes through a loop device. */
static int
mount_image (const char *path, ov_error_t *err)
{
  cleanup_close int fs = fsopen_image (path, err);
  if (fs < 0 && errno == ENOTBLK)
    {
      ov_error_free (err);
      char dev[64];
      cleanup_close int loop = loop_attach (path, dev, sizeof dev, err);
      if (loop < 0)
        return -1;
      fs = fsopen_image (dev, err);
      if (fs < 0)
        return ov_error_prefix (err, "image %s", path);
    }
  if (fs < 0)
    return -1;
  int mfd = fsmount (fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY);
  if (mfd < 0)
    return ov_error (err, errno, "fsmount image %s", path);
  return mfd;
}

static int
join_images (const int *fds, size_t n, const char *data_dir, ov_error_t *err)
{
  cleanup_close int fs = fsopen ("overlay", FSOPEN_CLOEXEC);
  if (fs < 0)
    return ov_error (err, errno, "fsopen overlay");
  /* regular lowers first: none may follow a data-only one */
  for (size_t i = 0; i < n; i++)
    if (fsconfig (fs, FSCONFIG_SET_FD, "lowerdir+", NULL, fds[i]) < 0)
      return fs_error (fs, err, errno, "overlay of images:", "lowerdir+");
  if (data_dir
      && (fsconfig (fs, FSCONFIG_SET_STRING, "datadir+", data_dir, 0) < 0
          || fsconfig (fs, FSCONFIG_SET_STRING, "metacopy", "on", 0) < 0))
    return fs_error (fs, err, errno, "overlay of images on objects", data_dir);
  /* inode numbers of different images stay apart */
  if (fsconfig (fs, FSCONFIG_SET_STRING, "xino", "on", 0) < 0
      || fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return fs_error (fs, err, errno, "overlay of images", data_dir ? data_dir : "");
  int mfd = fsmount (fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY);
  if (mfd < 0)
    return ov_error (err, errno, "fsmount overlay of images");
  return mfd;
}

int
ov_image_mount (char *const *images, size_t n, const char *data_dir, bool join, int **fds,
                size_t *nfds, ov_error_t *err)
{
  join = data_dir || (join && n > 1);
  int *v = xcalloc (n + 1, sizeof *v);
  size_t k = 0;
  int r = 0;
  for (; k < n && r == 0; k++)
    if ((v[k] = mount_image (images[k], err)) < 0)
      r = -1;
  if (r < 0)
    k--;
  if (r == 0 && join)
    {
      int j = join_images (v, n, data_dir, err);
      for (size_t i = 0; i < k; i++)
        close (v[i]);
      k = 0;
      if (j < 0)
        r = -1;
      else
        v[k++] = j;
    }
  if (r < 0)
    {
      for (size_t i = 0; i < k; i++)
        close (v[i]);
      free (v);
      return -1;
    }
  *fds = v;
  *nfds = k;
  return 0;
}
