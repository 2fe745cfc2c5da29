#include "export.h"
#include "pool.h"
#include "xattr.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define CHUNK (1u << 20)

struct out_file
{
  struct ov_entry *e;
  int dirfd;
};

struct out_dir
{
  struct ov_entry *e;
  int fd;
  struct ov_tree tree;
};

struct export
{
  struct ov_store *s;
  int flags;
  struct out_file *files;
  size_t nfiles, capfiles;
  struct out_dir *dirs;
  size_t ndirs, capdirs;
  struct ov_progress *progress;
};

int
ov_export_content (struct ov_store *s, const struct ov_entry *e, int fd, ov_error_t *err)
{
  cleanup_close int in = ov_store_open_blob (s, &e->oid, err);
  if (in < 0)
    return -1;
  cleanup_free uint8_t *buf = xmalloc (e->size < CHUNK ? e->size + 1 : CHUNK);
  size_t bufsz = e->size < CHUNK ? e->size + 1 : CHUNK;
  struct ov_hasher h;
  ov_hasher_init (&h);
  uint64_t total = 0;
  int ret = 0;
  for (;;)
    {
      ssize_t n = read_all (in, buf, bufsz);
      if (n < 0)
        {
          ret = ov_error (err, errno, "read object");
          break;
        }
      if (n == 0)
        break;
      ov_hasher_update (&h, buf, n);
      total += n;
      if (write_all (fd, buf, n) < 0)
        {
          ret = ov_error (err, errno, "write");
          break;
        }
    }
  struct ov_oid got;
  ov_hasher_final (&h, &got);
  ov_hasher_free (&h);
  if (ret == 0 && (total != e->size || memcmp (got.b, e->oid.b, 16)))
    {
      char hex[OV_OID_STR];
      oid_hex (&e->oid, hex);
      return ov_corrupt (err, "object %s is corrupt (content does not match its hash)", hex);
    }
  return ret;
}

/* Owner, mode, xattrs, then times (last: the others change ctime only). */
static int
set_meta (int fd, int dirfd, const char *name, const struct ov_entry *e, ov_error_t *err)
{
  bool root = geteuid () == 0;
  if (e->type == OV_LNK)
    {
      if (root && fchownat (dirfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ov_error (err, errno, "chown %s", name);
      if (xattrs_write (-1, dirfd, name, e, err) < 0)
        return -1;
      struct timespec ts[2] = { { e->mtime_sec, e->mtime_nsec }, { e->mtime_sec, e->mtime_nsec } };
      if (utimensat (dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return ov_error (err, errno, "set times of %s", name);
      return 0;
    }
  if (root && fchown (fd, e->uid, e->gid) < 0)
    return ov_error (err, errno, "chown %s", name);
  if (fchmod (fd, e->mode & 07777) < 0)
    return ov_error (err, errno, "chmod %s", name);
  if (xattrs_write (fd, -1, name, e, err) < 0)
    return -1;
  struct timespec ts[2] = { { e->mtime_sec, e->mtime_nsec }, { e->mtime_sec, e->mtime_nsec } };
  if (futimens (fd, ts) < 0)
    return ov_error (err, errno, "set times of %s", name);
  return 0;
}

static int
open_target (int dirfd, const char *name, int flags, ov_error_t *err)
{
  int fd = openat (dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST && (flags & OV_EXPORT_FORCE))
    {
      if (unlinkat (dirfd, name, 0) < 0)
        return ov_error (err, errno, "replace %s", name);
      fd = openat (dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
  if (fd < 0 && errno == EEXIST)
    return ov_error_set (err, OV_EGENERIC, EEXIST, "%s exists (use --force to replace it)", name);
  if (fd < 0)
    return ov_error (err, errno, "create %s", name);
  return fd;
}

static int
file_run (size_t i, void *ctx, ov_error_t *err)
{
  struct export *x = ctx;
  struct out_file *f = &x->files[i];
  cleanup_close int fd = open_target (f->dirfd, f->e->name, x->flags, err);
  if (fd < 0)
    return -1;
  if (ov_export_content (x->s, f->e, fd, err) < 0 || set_meta (fd, -1, f->e->name, f->e, err) < 0)
    return ov_error_prefix (err, "%s", f->e->name);
  ov_progress_add (x->progress, 1, f->e->size);
  return 0;
}

static int export_dir (struct export *x, struct ov_entry *e, int dirfd, const char *name,
                       ov_error_t *err);

static int
make_node (struct export *x, struct ov_entry *e, int dirfd, const char *name, ov_error_t *err)
{
  for (int attempt = 0; attempt < 2; attempt++)
    {
      int r;
      if (e->type == OV_LNK)
        r = symlinkat (e->target, dirfd, name);
      else
        r = mknodat (dirfd, name, e->mode & (S_IFMT | 07777), e->rdev);
      if (r == 0)
        break;
      if (errno == EEXIST && (x->flags & OV_EXPORT_FORCE) && attempt == 0
          && unlinkat (dirfd, name, 0) == 0)
        continue;
      return ov_error (err, errno, "create %s %s", ov_type_name (e->type), name);
    }
  if (e->type == OV_LNK)
    return set_meta (-1, dirfd, name, e, err);
  /* Never open a FIFO or device: set its metadata by name, beneath dirfd. */
  if (geteuid () == 0 && fchownat (dirfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return ov_error (err, errno, "chown %s", name);
  if (fchmodat (dirfd, name, e->mode & 07777, 0) < 0)
    return ov_error (err, errno, "chmod %s", name);
  if (xattrs_write (-1, dirfd, name, e, err) < 0)
    return -1;
  struct timespec ts[2] = { { e->mtime_sec, e->mtime_nsec }, { e->mtime_sec, e->mtime_nsec } };
  if (utimensat (dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return ov_error (err, errno, "set times of %s", name);
  return 0;
}

static int
export_entry (struct export *x, struct ov_entry *e, int dirfd, const char *name, ov_error_t *err)
{
  switch (e->type)
    {
    case OV_DIR:
      return export_dir (x, e, dirfd, name, err);
    case OV_REG:
      if (x->nfiles == x->capfiles)
        {
          x->capfiles = x->capfiles ? x->capfiles * 2 : 1024;
          x->files = xrealloc (x->files, x->capfiles * sizeof *x->files);
        }
      x->files[x->nfiles++] = (struct out_file){ e, dirfd };
      x->progress->total_files++;
      return 0;
    default:
      return make_node (x, e, dirfd, name, err);
    }
}

static int
export_dir (struct export *x, struct ov_entry *e, int dirfd, const char *name, ov_error_t *err)
{
  if (mkdirat (dirfd, name, 0700) < 0)
    {
      struct stat st;
      if (errno != EEXIST || !(x->flags & (OV_EXPORT_MERGE | OV_EXPORT_FORCE))
          || fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
        return ov_error_set (err, 0, errno == EEXIST ? EEXIST : errno, "create directory %s%s",
                             name, errno == EEXIST ? " (use --force to merge)" : "");
    }
  int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "open directory %s", name);
  if (x->ndirs == x->capdirs)
    {
      x->capdirs = x->capdirs ? x->capdirs * 2 : 64;
      x->dirs = xrealloc (x->dirs, x->capdirs * sizeof *x->dirs);
    }
  size_t me = x->ndirs++;
  x->dirs[me] = (struct out_dir){ e, fd, { 0 } };
  if (tree_load (x->s, &e->oid, &x->dirs[me].tree, err) < 0)
    return -1;
  /* Trees are only appended to x->dirs; take a stable copy of the pointer. */
  struct ov_tree *t = &x->dirs[me].tree;
  struct ov_entry *ents = t->e;
  size_t n = t->n;
  for (size_t i = 0; i < n; i++)
    if (export_entry (x, &ents[i], fd, ents[i].name, err) < 0)
      return ov_error_prefix (err, "%s", name);
  return 0;
}

/* Copy every file on the pool; members of a hardlink group after the
 * first become links to it. */
static int
export_files (struct export *x, ov_error_t *err)
{
  struct leader
  {
    uint64_t id;
    struct out_file *f;
  };
  size_t cap = 64;
  while (cap < x->nfiles * 2)
    cap *= 2;
  cleanup_free struct leader *tab = xcalloc (cap, sizeof *tab);
  cleanup_free struct out_file *copies = xmalloc ((x->nfiles + 1) * sizeof *copies);
  cleanup_free struct out_file *links = xmalloc ((x->nfiles + 1) * 2 * sizeof *links);
  size_t ncopies = 0, nlinks = 0;
  for (size_t i = 0; i < x->nfiles; i++)
    {
      struct out_file *f = &x->files[i];
      if (f->e->link_id == 0)
        {
          copies[ncopies++] = *f;
          continue;
        }
      size_t h = (f->e->link_id * 0x9e3779b97f4a7c15ull) & (cap - 1);
      while (tab[h].f && tab[h].id != f->e->link_id)
        h = (h + 1) & (cap - 1);
      if (tab[h].f == NULL)
        {
          tab[h] = (struct leader){ f->e->link_id, f };
          copies[ncopies++] = *f;
        }
      else
        {
          links[nlinks++] = *tab[h].f;
          links[nlinks++] = *f;
        }
    }
  struct out_file *all = x->files;
  size_t nall = x->nfiles;
  x->files = copies;
  x->nfiles = ncopies;
  int r = ov_pool_run (ncopies, file_run, x, err);
  x->files = all;
  x->nfiles = nall;
  for (size_t i = 0; r == 0 && i < nlinks; i += 2)
    {
      struct out_file *from = &links[i], *to = &links[i + 1];
      r = linkat (from->dirfd, from->e->name, to->dirfd, to->e->name, 0);
      if (r < 0 && errno == EEXIST && (x->flags & OV_EXPORT_FORCE)
          && unlinkat (to->dirfd, to->e->name, 0) == 0)
        r = linkat (from->dirfd, from->e->name, to->dirfd, to->e->name, 0);
      if (r < 0)
        r = ov_error (err, errno, "hardlink %s to %s", to->e->name, from->e->name);
    }
  return r;
}

int
ov_export (struct ov_store *s, const struct ov_entry *e, int dirfd, const char *name, int flags,
           struct ov_progress *progress, ov_error_t *err)
{
  struct ov_progress quiet = { 0 };
  struct export x = { .s = s, .flags = flags, .progress = progress ? progress : &quiet };
  struct ov_entry top;
  entry_copy (&top, e);
  int r = export_entry (&x, &top, dirfd, name, err);
  if (r == 0)
    r = export_files (&x, err);
  /* Directory metadata last, deepest first, so child writes do not touch
   * the parents' mtimes afterwards. */
  for (size_t i = x.ndirs; i-- > 0;)
    {
      if (r == 0)
        r = set_meta (x.dirs[i].fd, -1, x.dirs[i].e->name ? x.dirs[i].e->name : name, x.dirs[i].e, err);
      close (x.dirs[i].fd);
    }
  for (size_t i = x.ndirs; i-- > 0;)
    tree_free (&x.dirs[i].tree);
  free (x.dirs);
  free (x.files);
  entry_free (&top);
  return r;
}
