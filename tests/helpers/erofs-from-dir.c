/* erofs-from-dir: the EROFS writer's test driver and benchmark. Walks a
 * directory (lstat, llistxattr, readlink; hard links found by st_ino) into
 * an ov_erofs tree whose files are (fd, 0, size) sources, then writes the
 * image.
 *
 *   erofs-from-dir [-v] [-m] [-p] [-t] SRC IMAGE
 *     -v  verify callback: hash every file (XXH3-128, as the engine does) and
 *         check that its pieces arrive in order and cover it exactly
 *     -m  a regular file carrying trusted.overlay.metacopy goes in without
 *         data (its size only): an overlay metacopy entry
 *     -p  (dirfd, name) sources, opened by the writer as it reads them, for
 *         every file; without -p files are (fd, 0, size) sources, and (dirfd,
 *         name) ones past half the process's open-file limit
 *     -t  print the walk and write times to stderr
 * Exit status 0, or 1 with the writer's message. */
#include "erofs.h"
#include "hash.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

struct link
{
  dev_t dev;
  ino_t ino;
  struct ov_erofs_node *node;
};

struct walk
{
  struct ov_erofs *w;
  bool metacopy;
  bool by_name; /* -p, or the fd limit was reached */
  size_t files;
  size_t fd_budget; /* files held open at most: half the open-file limit */
  DIR **dirs;   /* kept open: (dirfd, name) sources name files beneath them */
  size_t ndirs, capdirs;
  struct link *links; /* open addressing, cap a power of 2 */
  size_t nlinks, caplinks;
  int *fds;
  size_t nfds, capfds;
};

static size_t
link_slot (struct walk *k, dev_t dev, ino_t ino)
{
  size_t h = ((size_t) ino * 0x9E3779B97F4A7C15ull) ^ dev;
  for (size_t i = h & (k->caplinks - 1);; i = (i + 1) & (k->caplinks - 1))
    if (!k->links[i].node || (k->links[i].dev == dev && k->links[i].ino == ino))
      return i;
}

static void
link_put (struct walk *k, dev_t dev, ino_t ino, struct ov_erofs_node *n)
{
  if (2 * (k->nlinks + 1) > k->caplinks)
    {
      struct link *old = k->links;
      size_t oldcap = k->caplinks;
      k->caplinks = oldcap ? 2 * oldcap : 1024;
      k->links = xcalloc (k->caplinks, sizeof *k->links);
      for (size_t i = 0; i < oldcap; i++)
        if (old[i].node)
          k->links[link_slot (k, old[i].dev, old[i].ino)] = old[i];
      free (old);
    }
  k->links[link_slot (k, dev, ino)] = (struct link) { dev, ino, n };
  k->nlinks++;
}

struct xattrs
{
  struct ov_erofs_xattr *v;
  size_t n;
  char *names;
  char **values;
};

static void
xattrs_free (struct xattrs *x)
{
  for (size_t i = 0; i < x->n; i++)
    free (x->values[i]);
  free (x->values);
  free (x->v);
  free (x->names);
}

/* path names the entry without following it: /proc/self/fd/DIRFD/NAME */
static int
xattrs_read (const char *path, struct xattrs *x)
{
  memset (x, 0, sizeof *x);
  ssize_t len = llistxattr (path, NULL, 0);
  if (len < 0)
    return errno == ENOTSUP ? 0 : -1;
  if (len == 0)
    return 0;
  x->names = xmalloc (len + 1);
  len = llistxattr (path, x->names, len);
  if (len < 0)
    return -1;
  size_t count = 0;
  for (ssize_t i = 0; i < len; i += strlen (x->names + i) + 1)
    count++;
  x->v = xcalloc (count, sizeof *x->v);
  x->values = xcalloc (count, sizeof *x->values);
  for (ssize_t i = 0; i < len; i += strlen (x->names + i) + 1)
    {
      const char *name = x->names + i;
      ssize_t vl = lgetxattr (path, name, NULL, 0);
      if (vl < 0)
        return -1;
      char *v = xmalloc (vl + 1);
      vl = lgetxattr (path, name, v, vl);
      if (vl < 0)
        {
          free (v);
          return -1;
        }
      x->values[x->n] = v;
      x->v[x->n++] = (struct ov_erofs_xattr) { name, v, (size_t) vl };
    }
  return 0;
}

static bool
has_metacopy (const struct xattrs *x)
{
  for (size_t i = 0; i < x->n; i++)
    if (strcmp (x->v[i].name, "trusted.overlay.metacopy") == 0)
      return true;
  return false;
}

static void
meta_from_stat (struct ov_erofs_meta *m, const struct stat *st)
{
  memset (m, 0, sizeof *m);
  m->mode = st->st_mode;
  m->uid = st->st_uid;
  m->gid = st->st_gid;
  m->mtime = st->st_mtim.tv_sec;
  m->mtime_nsec = st->st_mtim.tv_nsec;
  m->rdev_major = major (st->st_rdev);
  m->rdev_minor = minor (st->st_rdev);
}

static int walk_dir (struct walk *k, int dfd, struct ov_erofs_node *dir, ov_error_t *err);

static int
walk_entry (struct walk *k, int dfd, struct ov_erofs_node *dir, const char *name, ov_error_t *err)
{
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return ov_error (err, errno, "stat %s", name);
  if (!S_ISDIR (st.st_mode) && st.st_nlink > 1 && k->caplinks)
    {
      size_t i = link_slot (k, st.st_dev, st.st_ino);
      if (k->links[i].node)
        return ov_erofs_link (k->w, dir, name, strlen (name), k->links[i].node, err);
    }
  char path[64 + NAME_MAX];
  snprintf (path, sizeof path, "/proc/self/fd/%d/%s", dfd, name);
  struct xattrs x;
  struct ov_erofs_meta m;
  meta_from_stat (&m, &st);
  cleanup_free char *target = NULL;
  cleanup_close int fd = -1;
  int r = -1;
  if (xattrs_read (path, &x) < 0)
    {
      ov_error (err, errno, "xattrs of %s", name);
      goto out;
    }
  m.xattrs = x.v;
  m.nxattrs = x.n;
  if (S_ISLNK (st.st_mode))
    {
      target = xmalloc (st.st_size + 1);
      ssize_t n = readlinkat (dfd, name, target, st.st_size + 1);
      if (n < 0 || n > st.st_size)
        {
          ov_error (err, n < 0 ? errno : EOVERFLOW, "readlink %s", name);
          goto out;
        }
      m.link = target;
      m.linklen = n;
    }
  else if (S_ISREG (st.st_mode) && k->metacopy && has_metacopy (&x))
    m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_SPARSE, .len = st.st_size };
  else if (S_ISREG (st.st_mode) && st.st_size > 0)
    {
      /* a tag unique to the file tells the verifier's pieces apart */
      void *tag = (void *) (uintptr_t) ++k->files;
      if (k->nfds >= k->fd_budget)
        k->by_name = true;
      fd = k->by_name ? -1 : openat (dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0)
        m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_FD, .fd = fd, .len = st.st_size, .tag = tag };
      else if (k->by_name || errno == EMFILE)
        {
          k->by_name = true;
          m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_AT, .fd = dfd, .path = name, .len = st.st_size,
                                            .tag = tag };
        }
      else
        {
          ov_error (err, errno, "open %s", name);
          goto out;
        }
    }
  struct ov_erofs_node *n = ov_erofs_add (k->w, dir, name, strlen (name), &m, err);
  if (!n)
    goto out;
  if (fd >= 0)
    {
      if (k->nfds == k->capfds)
        {
          k->capfds = k->capfds ? 2 * k->capfds : 1024;
          k->fds = xrealloc (k->fds, k->capfds * sizeof *k->fds);
        }
      k->fds[k->nfds++] = fd;
      fd = -1;
    }
  if (!S_ISDIR (st.st_mode) && st.st_nlink > 1)
    link_put (k, st.st_dev, st.st_ino, n);
  r = 0;
  if (S_ISDIR (st.st_mode))
    {
      int sub = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        r = ov_error (err, errno, "open %s", name);
      else
        r = walk_dir (k, sub, n, err) < 0 ? ov_error_prefix (err, "%s", name) : 0;
    }
out:
  xattrs_free (&x);
  return r;
}

/* Takes dfd. */
static int
walk_dir (struct walk *k, int dfd, struct ov_erofs_node *dir, ov_error_t *err)
{
  DIR *d = fdopendir (dfd);
  if (!d)
    {
      close (dfd);
      return ov_error (err, errno, "read directory");
    }
  int r = 0;
  struct dirent *e;
  errno = 0;
  while (r == 0 && (e = readdir (d)))
    {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      r = walk_entry (k, dirfd (d), dir, e->d_name, err);
      errno = 0;
    }
  if (r == 0 && errno)
    r = ov_error (err, errno, "read directory");
  if (k->ndirs == k->capdirs)
    {
      k->capdirs = k->capdirs ? 2 * k->capdirs : 64;
      k->dirs = xrealloc (k->dirs, k->capdirs * sizeof *k->dirs);
    }
  k->dirs[k->ndirs++] = d;
  return r;
}

struct verify
{
  void *tag;
  uint64_t next;
  struct ov_hasher h;
  uint64_t files, bytes;
};

static int
verify_piece (void *ctx, void *tag, uint64_t off, const void *buf, size_t n, uint64_t total, ov_error_t *err)
{
  struct verify *v = ctx;
  if (off == 0)
    {
      v->tag = tag;
      v->next = 0;
      ov_hasher_init (&v->h);
    }
  if (tag != v->tag || off != v->next || off + n > total || (total <= OV_EROFS_VERIFY_WHOLE && n != total))
    {
      ov_hasher_free (&v->h);
      return ov_error_set (err, OV_ECORRUPT, 0, "verify: piece %llu+%zu of %llu out of order",
                           (unsigned long long) off, n, (unsigned long long) total);
    }
  ov_hasher_update (&v->h, buf, n);
  v->next = off + n;
  v->bytes += n;
  if (v->next == total)
    {
      struct ov_oid oid;
      ov_hasher_final (&v->h, &oid);
      ov_hasher_free (&v->h);
      v->files++;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  bool verify = false, metacopy = false, timing = false;
  int opt;
  bool by_name = false;
  while ((opt = getopt (argc, argv, "vmpt")) != -1)
    switch (opt)
      {
      case 'v': verify = true; break;
      case 'm': metacopy = true; break;
      case 't': timing = true; break;
      case 'p': by_name = true; break;
      default: fprintf (stderr, "usage: erofs-from-dir [-v] [-m] [-p] [-t] SRC IMAGE\n"); return 2;
      }
  if (argc - optind != 2)
    {
      fprintf (stderr, "usage: erofs-from-dir [-v] [-m] [-p] [-t] SRC IMAGE\n");
      return 2;
    }
  const char *src = argv[optind], *image = argv[optind + 1];
  /* every file stays open until the write: as many fds as the kernel allows */
  struct rlimit rl;
  FILE *f = fopen ("/proc/sys/fs/nr_open", "r");
  unsigned long nr_open = 0;
  if (f && fscanf (f, "%lu", &nr_open) == 1 && getrlimit (RLIMIT_NOFILE, &rl) == 0)
    {
      rl.rlim_cur = rl.rlim_max = nr_open;
      if (setrlimit (RLIMIT_NOFILE, &rl) < 0 && getrlimit (RLIMIT_NOFILE, &rl) == 0)
        {
          rl.rlim_cur = rl.rlim_max;
          setrlimit (RLIMIT_NOFILE, &rl);
        }
    }
  if (f)
    fclose (f);
  size_t fd_budget = getrlimit (RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 2 : 256;

  ov_error_t err = NULL;
  struct walk k = { .w = ov_erofs_new (), .metacopy = metacopy, .by_name = by_name, .fd_budget = fd_budget };
  struct verify v = { 0 };
  if (verify)
    ov_erofs_set_verify (k.w, verify_piece, &v);
  double t0 = mono_seconds ();
  int r = 0;
  struct stat st;
  int dfd = open (src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fstat (dfd, &st) < 0)
    r = ov_error (&err, errno, "open %s", src);
  if (r == 0)
    {
      struct ov_erofs_meta m;
      struct xattrs x;
      char path[64];
      snprintf (path, sizeof path, "/proc/self/fd/%d", dfd);
      meta_from_stat (&m, &st);
      if (xattrs_read (path, &x) < 0)
        r = ov_error (&err, errno, "xattrs of %s", src);
      m.xattrs = x.v;
      m.nxattrs = x.n;
      if (r == 0)
        r = ov_erofs_set_root (k.w, &m, &err);
      xattrs_free (&x);
    }
  if (r == 0)
    {
      r = walk_dir (&k, dfd, ov_erofs_root (k.w), &err);
      if (r < 0)
        ov_error_prefix (&err, "%s", src);
    }
  else if (dfd >= 0)
    close (dfd);
  double t1 = mono_seconds ();
  if (r == 0)
    {
      int out = open (image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (out < 0)
        r = ov_error (&err, errno, "create %s", image);
      else
        {
          r = ov_erofs_write (k.w, out, &err);
          if (close (out) < 0 && r == 0)
            r = ov_error (&err, errno, "close %s", image);
        }
    }
  double t2 = mono_seconds ();
  if (timing && r == 0)
    fprintf (stderr, "erofs-from-dir: %llu inodes, %llu bytes; walk %.3f s, write %.3f s%s\n",
             (unsigned long long) ov_erofs_inode_count (k.w), (unsigned long long) ov_erofs_image_size (k.w),
             t1 - t0, t2 - t1, verify ? " (verified)" : "");
  if (r == 0 && verify)
    printf ("verified %llu files, %llu bytes\n", (unsigned long long) v.files, (unsigned long long) v.bytes);
  for (size_t i = 0; i < k.nfds; i++)
    close (k.fds[i]);
  for (size_t i = 0; i < k.ndirs; i++)
    closedir (k.dirs[i]);
  free (k.dirs);
  free (k.fds);
  free (k.links);
  ov_erofs_free (k.w);
  if (r < 0)
    {
      fprintf (stderr, "erofs-from-dir: %s\n", err->msg);
      ov_error_free (&err);
      return 1;
    }
  return 0;
}
