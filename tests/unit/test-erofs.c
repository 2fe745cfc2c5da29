/* The EROFS writer's layout, read back with an independent minimal reader
 * (erofs-reader.h): name order, inline tail boundaries, xattr packing,
 * hard links, big and deep directories, devices, sparse files, the verify
 * callback and every limit. The kernel's view of the same images is
 * tests/t1050-erofs.sh's. usage: test-erofs */
#include "erofs-reader.h"
#include "erofs.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint8_t *img;
static size_t img_len;
static struct er_img im;
static char last_err[1024];

static void
set_err (ov_error_t *err)
{
  snprintf (last_err, sizeof last_err, "%s", *err ? (*err)->msg : "(no message)");
  ov_error_free (err);
}

/* Writes w's image into fd through a pipe (the writer's in-order path for
 * an output it cannot seek): a child copies the pipe into fd. */
static int
write_piped (struct ov_erofs *w, int fd, ov_error_t *err)
{
  int p[2];
  if (pipe (p) < 0)
    return ov_error (err, errno, "pipe");
  pid_t pid = fork ();
  if (pid == 0)
    {
      close (p[1]);
      char buf[65536];
      ssize_t n;
      while ((n = read (p[0], buf, sizeof buf)) > 0)
        if (write_all (fd, buf, n) < 0)
          _exit (1);
      _exit (n < 0);
    }
  close (p[0]);
  int r = ov_erofs_write (w, p[1], err);
  close (p[1]);
  int st;
  if (waitpid (pid, &st, 0) < 0 || !WIFEXITED (st) || WEXITSTATUS (st))
    r = r < 0 ? r : ov_error_set (err, OV_EGENERIC, 0, "pipe reader failed");
  return r;
}

/* Where build writes: a memfd (no direct I/O there: gathered, buffered
 * writes), a pipe (plain writes in order) or a file on disk (direct I/O). */
enum out_kind
{
  OUT_MEMFD,
  OUT_PIPE,
  OUT_DISK,
};
static enum out_kind out_kind;

static int
disk_file (void)
{
  const char *dir = getenv ("TMPDIR");
  char *path = xasprintf ("%s/test-erofs.XXXXXX", dir && *dir ? dir : "/var/tmp");
  int fd = mkostemp (path, O_CLOEXEC);
  if (fd >= 0)
    unlink (path);
  free (path);
  return fd;
}

/* Writes w's image into memory and opens it; frees w. */
static int
build (struct ov_erofs *w)
{
  ov_error_t err = NULL;
  free (img);
  img = NULL;
  int fd = out_kind == OUT_DISK ? disk_file () : memfd_create ("erofs", MFD_CLOEXEC);
  if (fd < 0)
    {
      snprintf (last_err, sizeof last_err, "output file: %s", strerror (errno));
      ov_erofs_free (w);
      return -1;
    }
  int r = out_kind == OUT_PIPE ? write_piped (w, fd, &err) : ov_erofs_write (w, fd, &err);
  ov_erofs_free (w);
  if (r < 0)
    {
      set_err (&err);
      close (fd);
      return -1;
    }
  off_t len = lseek (fd, 0, SEEK_END);
  img = xmalloc (len);
  img_len = len;
  if (pread_all (fd, img, len, 0) != len)
    r = -1;
  close (fd);
  if (r == 0 && er_open (&im, img, img_len) < 0)
    {
      snprintf (last_err, sizeof last_err, "reader: %s", er_why);
      r = -1;
    }
  return r;
}

static struct ov_erofs_meta
meta (uint32_t mode)
{
  return (struct ov_erofs_meta) { .mode = mode };
}

static struct ov_erofs_node *
add (struct ov_erofs *w, struct ov_erofs_node *dir, const char *name, const struct ov_erofs_meta *m)
{
  ov_error_t err = NULL;
  struct ov_erofs_node *n = ov_erofs_add (w, dir, name, strlen (name), m, &err);
  if (!n)
    {
      set_err (&err);
      fprintf (stderr, "# add %s: %s\n", name, last_err);
    }
  return n;
}

struct lookup
{
  const char *name;
  size_t len;
  uint64_t nid;
  uint8_t ftype;
  int found;
};

static int
lookup_one (void *ctx, const char *name, size_t len, uint64_t nid, uint8_t ftype)
{
  struct lookup *l = ctx;
  if (len == l->len && memcmp (name, l->name, len) == 0)
    {
      l->nid = nid;
      l->ftype = ftype;
      l->found++;
    }
  return 0;
}

static int
lookup (uint64_t dirnid, const char *name, size_t len, struct er_inode *out)
{
  struct er_inode dir;
  struct lookup l = { name, len, 0, 0, 0 };
  if (er_inode (&im, dirnid, &dir) < 0 || er_readdir (&im, &dir, lookup_one, &l) < 0 || l.found != 1)
    return -1;
  return er_inode (&im, l.nid, out);
}

static int
path_inode (const char *path, struct er_inode *out)
{
  uint64_t nid = im.root;
  if (er_inode (&im, nid, out) < 0)
    return -1;
  while (*path)
    {
      const char *slash = strchr (path, '/');
      size_t len = slash ? (size_t) (slash - path) : strlen (path);
      if (lookup (nid, path, len, out) < 0)
        return -1;
      nid = out->nid;
      path += len + (slash != NULL);
    }
  return 0;
}

static int
content_is (const char *path, const uint8_t *want, size_t n)
{
  struct er_inode in;
  if (path_inode (path, &in) < 0 || in.size != n)
    return 0;
  uint8_t *got = xmalloc (n ? n : 1);
  int good = er_read (&im, &in, 0, got, n) == 0 && memcmp (got, want, n) == 0;
  free (got);
  return good;
}

static uint8_t *
pattern (size_t n, unsigned seed)
{
  uint8_t *p = xmalloc (n ? n : 1);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++)
    {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      p[i] = x;
    }
  return p;
}

/* --- tests ------------------------------------------------------------------------------- */

struct names
{
  char v[64][260];
  size_t len[64];
  size_t n;
};

static int
collect (void *ctx, const char *name, size_t len, uint64_t nid, uint8_t ftype)
{
  (void) nid;
  (void) ftype;
  struct names *s = ctx;
  if (s->n == 64)
    return -1;
  memcpy (s->v[s->n], name, len);
  s->len[s->n++] = len;
  return 0;
}

static void
test_name_order (void)
{
  static const char *names[] = { "b", "a", "ab", "a\x01", "\xff", "-x", "!", "..a", "A", "a\xff", "\x01", "...", ".b" };
  struct ov_erofs *w = ov_erofs_new ();
  struct ov_erofs_meta m = meta (S_IFREG | 0644);
  int good = 1;
  for (size_t i = 0; i < ARRAY_SIZE (names); i++)
    good &= add (w, ov_erofs_root (w), names[i], &m) != NULL;
  char long_name[256];
  memset (long_name, 'z', 255);
  long_name[255] = 0;
  good &= add (w, ov_erofs_root (w), long_name, &m) != NULL;
  good &= build (w) == 0;
  struct er_inode root;
  struct names got = { .n = 0 };
  good &= er_inode (&im, im.root, &root) == 0 && er_readdir (&im, &root, collect, &got) == 0;
  /* the reader fails on unsorted dirents; check the expected order too */
  static const char *want[] = { "\x01", "!", "-x", ".", "..", "...", "..a", ".b", "A", "a", "a\x01",
                                "ab", "a\xff", "b" };
  good &= got.n == ARRAY_SIZE (want) + 2;
  for (size_t i = 0; good && i < ARRAY_SIZE (want); i++)
    good &= got.len[i] == strlen (want[i]) && memcmp (got.v[i], want[i], got.len[i]) == 0;
  good &= got.len[got.n - 2] == 255 && got.len[got.n - 1] == 1 && (uint8_t) got.v[got.n - 1][0] == 0xff;
  ok (good, "names sort by memcmp, shorter first, bytes above 0x7f last; . and .. among them");
}

/* Files around the block boundaries, from memory and from an fd (read, or
 * mapped), the image written to a file or a pipe. */
static void
test_tails (bool mapped, enum out_kind out)
{
  static const uint64_t sizes[] = { 0, 1, 2, 100, 4031, 4032, 4033, 4095, 4096, 4097, 8191, 8192, 8193,
                                    12288 + 4000, (1 << 20) + 1, 3000, 3500, 4000 };
  struct ov_erofs *w = ov_erofs_new ();
  if (mapped)
    ov_erofs_map_sources (w);
  out_kind = out;
  int memfd = memfd_create ("src", MFD_CLOEXEC);
  uint8_t *bufs[2 * ARRAY_SIZE (sizes)];
  uint64_t off = 7;
  int good = 1;
  for (size_t i = 0; i < ARRAY_SIZE (sizes); i++)
    {
      char name[32];
      bufs[2 * i] = pattern (sizes[i], i + 1);
      struct ov_erofs_meta m = meta (S_IFREG | 0600);
      m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_MEM, .mem = bufs[2 * i], .len = sizes[i] };
      snprintf (name, sizeof name, "m%02zu", i);
      good &= add (w, ov_erofs_root (w), name, &m) != NULL;
      bufs[2 * i + 1] = pattern (sizes[i], 100 + i);
      good &= pwrite_all (memfd, bufs[2 * i + 1], sizes[i], off) == 0;
      m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_FD, .fd = memfd, .off = off, .len = sizes[i] };
      off += sizes[i] + 13;
      snprintf (name, sizeof name, "f%02zu", i);
      good &= add (w, ov_erofs_root (w), name, &m) != NULL;
    }
  good &= build (w) == 0;
  out_kind = OUT_MEMFD;
  char how[64];
  snprintf (how, sizeof how, "fd sources %s, the image into %s", mapped ? "mapped" : "read",
            out == OUT_PIPE ? "a pipe" : out == OUT_DISK ? "a file, direct" : "a memfd");
  char what[160];
  snprintf (what, sizeof what, "files of sizes around the block boundaries (%s): written and opened", how);
  ok (good, what);
  int same = good, layout = good;
  for (size_t i = 0; good && i < ARRAY_SIZE (sizes); i++)
    {
      char name[32];
      snprintf (name, sizeof name, "m%02zu", i);
      same &= content_is (name, bufs[2 * i], sizes[i]);
      snprintf (name, sizeof name, "f%02zu", i);
      same &= content_is (name, bufs[2 * i + 1], sizes[i]);
      struct er_inode in;
      path_inode (name, &in);
      uint32_t tail = sizes[i] % 4096;
      /* whole blocks stay plain; a 64-byte inode and a 4033+ byte tail never share a block */
      if (tail == 0 || tail > 4096 - 64)
        layout &= in.layout == 0;
      if (tail && tail <= 100)
        layout &= in.layout == 2;
    }
  snprintf (what, sizeof what, "every byte reads back, from memory and (fd, off, len) sources (%s)", how);
  ok (same, what);
  if (!mapped && out == OUT_MEMFD)
    {
      ok (layout, "4096-multiples are plain blocks, tails of 1-100 bytes inline, 4033+ byte tails in a block");
      struct er_inode in;
      ok (path_inode ("f09", &in) == 0 && in.layout == 2 && in.size == 4097,
          "4097 bytes: one block and a 1-byte inline tail");
    }
  for (size_t i = 0; i < 2 * ARRAY_SIZE (sizes); i++)
    free (bufs[i]);
  close (memfd);
}

/* Direct writes go out in whole blocks, in batches of 8 MiB: 3,000 files
 * of a block and a 1-byte inline tail make a 12 MiB image of metadata
 * blocks with tails between data blocks, cut into batches. */
static void
test_direct_batches (void)
{
  enum { N = 3000, SIZE = 4097 };
  uint8_t *src = pattern ((size_t) N * SIZE, 77);
  int memfd = memfd_create ("src", MFD_CLOEXEC);
  int good = pwrite_all (memfd, src, (size_t) N * SIZE, 0) == 0;
  struct ov_erofs *w = ov_erofs_new ();
  ov_erofs_map_sources (w);
  for (int i = 0; good && i < N; i++)
    {
      char name[32];
      snprintf (name, sizeof name, "f%04d", i);
      struct ov_erofs_meta m = meta (S_IFREG | 0644);
      m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_FD, .fd = memfd, .off = (uint64_t) i * SIZE, .len = SIZE };
      good &= add (w, ov_erofs_root (w), name, &m) != NULL;
    }
  out_kind = OUT_DISK;
  good &= build (w) == 0;
  out_kind = OUT_MEMFD;
  ok (good && img_len > (8u << 20), "a 12 MiB image of 3,000 tailed files, written direct");
  int same = good;
  for (int i = 0; same && i < N; i++)
    {
      char name[32];
      snprintf (name, sizeof name, "f%04d", i);
      same &= content_is (name, src + (size_t) i * SIZE, SIZE);
    }
  ok (same, "every file reads back across the batch boundaries");
  free (src);
  close (memfd);
}

struct xa_seen
{
  int n, okx;
  size_t bytes;
};

static int
xattr_check (void *ctx, uint8_t index, const char *name, size_t nlen, const uint8_t *value, size_t vlen)
{
  struct xa_seen *s = ctx;
  s->bytes += (4 + nlen + vlen + 3) & ~(size_t) 3;
  static const struct
  {
    uint8_t index;
    const char *name;
    size_t vlen;
  } want[] = { { 1, "a", 0 }, { 4, "overlay.opaque", 1 }, { 6, "selinux", 28 }, { 2, "", 5 }, { 1, "big", 65535 } };
  if (s->n < 5)
    {
      int i = s->n;
      s->okx &= index == want[i].index && nlen == strlen (want[i].name) && memcmp (name, want[i].name, nlen) == 0
               && vlen == want[i].vlen;
      if (i == 4)
        for (size_t k = 0; k < vlen; k++)
          s->okx &= value[k] == (uint8_t) (k * 7);
      if (i == 1)
        s->okx &= value[0] == 'y';
    }
  s->n++;
  return 0;
}

static void
test_xattrs (void)
{
  uint8_t *big = xmalloc (65536);
  for (size_t k = 0; k < 65536; k++)
    big[k] = k * 7;
  struct ov_erofs_xattr xa[] = {
    { "user.a", "", 0 },
    { "trusted.overlay.opaque", "y", 1 },
    { "security.selinux", "system_u:object_r:etc_t:s0\n", 28 },
    { "system.posix_acl_access", "\x02\0\0\0\x01", 5 },
    { "user.big", big, 65535 },
  };
  struct ov_erofs *w = ov_erofs_new ();
  struct ov_erofs_meta m = meta (S_IFDIR | 0755);
  m.xattrs = xa;
  m.nxattrs = ARRAY_SIZE (xa);
  int good = add (w, ov_erofs_root (w), "d", &m) != NULL;
  struct ov_erofs_meta f = meta (S_IFREG | 0644);
  f.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_MEM, .mem = "tail", .len = 4 };
  f.xattrs = xa + 1;
  f.nxattrs = 1;
  good &= add (w, ov_erofs_root (w), "f", &f) != NULL;
  good &= build (w) == 0;
  struct er_inode d;
  struct xa_seen s = { 0, 1, 12 };
  good &= path_inode ("d", &d) == 0 && er_xattrs (&im, &d, xattr_check, &s) == 0;
  ok (good && s.okx && s.n == 5, "xattrs of every namespace and a 65535-byte value read back");
  ok (good && d.xsize == s.bytes, "the ibody is 12 bytes + entries padded to 4 (i_xattr_icount matches)");
  ok (content_is ("f", (const uint8_t *) "tail", 4), "an inline tail after an inline xattr area");

  /* limits */
  ov_error_t err = NULL;
  w = ov_erofs_new ();
  struct ov_erofs_xattr bad[] = { { "user.big", big, 65536 } };
  m.xattrs = bad;
  m.nxattrs = 1;
  ok (!ov_erofs_add (w, ov_erofs_root (w), "x", 1, &m, &err) && strstr (err->msg, "65535"),
      "a 65536-byte value is refused: the format's value size is 16 bits");
  ov_error_free (&err);
  static const char *names[] = { "foo.bar", "user.", "system.posix_acl_accessX", "trusted" };
  int refused = 1;
  for (size_t i = 0; i < ARRAY_SIZE (names); i++)
    {
      struct ov_erofs_xattr one[] = { { names[i], "v", 1 } };
      m.xattrs = one;
      refused &= !ov_erofs_add (w, ov_erofs_root (w), "x", 1, &m, &err) && strstr (err->msg, "namespace");
      ov_error_free (&err);
    }
  ok (refused, "names outside user./trusted./security./the ACLs, or empty after the prefix, are refused");
  struct ov_erofs_xattr twice[] = { { "user.a", "1", 1 }, { "user.a", "2", 1 } };
  m.xattrs = twice;
  m.nxattrs = 2;
  ok (!ov_erofs_add (w, ov_erofs_root (w), "x", 1, &m, &err) && strstr (err->msg, "twice"),
      "an xattr given twice is refused");
  ov_error_free (&err);
  struct ov_erofs_xattr many[5];
  char mnames[5][24];
  for (int i = 0; i < 5; i++)
    {
      snprintf (mnames[i], sizeof mnames[i], "user.v%d", i);
      many[i] = (struct ov_erofs_xattr) { mnames[i], big, 60000 };
    }
  m.xattrs = many;
  m.nxattrs = 5;
  ok (!ov_erofs_add (w, ov_erofs_root (w), "x", 1, &m, &err) && strstr (err->msg, "an inode holds"),
      "xattrs over the 256 KiB an inode can index are refused");
  ov_error_free (&err);
  m.nxattrs = 4;
  ok (ov_erofs_add (w, ov_erofs_root (w), "x", 1, &m, &err) && build (w) == 0,
      "240 KB of xattrs on one inode (crossing blocks) are fine");
  ov_error_free (&err);
  free (big);
}

static void
test_names_limits (void)
{
  ov_error_t err = NULL;
  struct ov_erofs *w = ov_erofs_new ();
  struct ov_erofs_meta m = meta (S_IFREG | 0644);
  char n256[257];
  memset (n256, 'n', 256);
  int good = !ov_erofs_add (w, ov_erofs_root (w), n256, 256, &m, &err) && strstr (err->msg, "256 bytes");
  ov_error_free (&err);
  good &= !ov_erofs_add (w, ov_erofs_root (w), "a/b", 3, &m, &err);
  ov_error_free (&err);
  good &= !ov_erofs_add (w, ov_erofs_root (w), "a\0b", 3, &m, &err);
  ov_error_free (&err);
  good &= !ov_erofs_add (w, ov_erofs_root (w), ".", 1, &m, &err);
  ov_error_free (&err);
  good &= !ov_erofs_add (w, ov_erofs_root (w), "..", 2, &m, &err);
  ov_error_free (&err);
  good &= !ov_erofs_add (w, ov_erofs_root (w), "", 0, &m, &err);
  ov_error_free (&err);
  ok (good, "names of 256 bytes, with '/' or NUL, '.', '..' and '' are refused");
  struct ov_erofs_node *f = ov_erofs_add (w, ov_erofs_root (w), "f", 1, &m, &err);
  ok (f && !ov_erofs_add (w, f, "x", 1, &m, &err) && strstr (err->msg, "not a directory"),
      "adding below a file is refused");
  ov_error_free (&err);
  m.mode = 0170644;
  ok (!ov_erofs_add (w, ov_erofs_root (w), "bad", 3, &m, &err) && strstr (err->msg, "mode"),
      "a mode that is no file type is refused");
  ov_error_free (&err);
  m = meta (S_IFLNK | 0777);
  m.link = "";
  ok (!ov_erofs_add (w, ov_erofs_root (w), "l", 1, &m, &err), "an empty symlink target is refused");
  ov_error_free (&err);
  m = meta (S_IFCHR | 0600);
  m.rdev_major = 4096;
  ok (!ov_erofs_add (w, ov_erofs_root (w), "c", 1, &m, &err) && strstr (err->msg, "device"),
      "a device number the format cannot encode is refused");
  ov_error_free (&err);
  m = meta (S_IFREG | 0644);
  ok (ov_erofs_add (w, ov_erofs_root (w), "f", 1, &m, &err) != NULL, "a second 'f' is taken by add");
  ok (build (w) < 0 && strstr (last_err, "two entries named f"), "and refused by the write, naming both");
  w = ov_erofs_new ();
  ok (build (w) == 0, "an empty tree is an image");
  ok (ov_erofs_write (w = ov_erofs_new (), -1, &err) < 0, "writing to a bad fd fails");
  ov_error_free (&err);
  ok (ov_erofs_write (w, 1, &err) < 0 && strstr (err->msg, "already"), "a writer writes once");
  ov_error_free (&err);
  ov_erofs_free (w);
  /* the block limit, checked before a byte is read or written */
  w = ov_erofs_new ();
  m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_FD, .fd = 0, .len = 17ull << 40 };
  ok (add (w, ov_erofs_root (w), "huge", &m) && build (w) < 0 && strstr (last_err, "blocks"),
      "an image over 2^32 blocks is refused at layout");
}

static void
test_links_and_types (void)
{
  struct ov_erofs *w = ov_erofs_new ();
  ov_error_t err = NULL;
  struct ov_erofs_meta m = meta (S_IFREG | 04755);
  m.uid = 70000;
  m.gid = 80000;
  m.mtime = -1;
  m.mtime_nsec = 999999999;
  m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_MEM, .mem = "hello\n", .len = 6 };
  struct ov_erofs_node *f = add (w, ov_erofs_root (w), "f", &m);
  struct ov_erofs_meta dm = meta (S_IFDIR | 01777);
  struct ov_erofs_node *d = add (w, ov_erofs_root (w), "d", &dm);
  add (w, d, "sub", &dm);
  int good = f && d && ov_erofs_link (w, d, "f2", 2, f, &err) == 0 && ov_erofs_link (w, ov_erofs_root (w), "f3", 2, f, &err) == 0;
  ok (good && ov_erofs_link (w, d, "dl", 2, d, &err) < 0, "a hard link to a directory is refused");
  ov_error_free (&err);
  struct ov_erofs_meta c = meta (S_IFCHR | 0);
  add (w, ov_erofs_root (w), "wh", &c);
  c = meta (S_IFBLK | 0660);
  c.rdev_major = 300;
  c.rdev_minor = 70000;
  add (w, ov_erofs_root (w), "blk", &c);
  c = meta (S_IFIFO | 0600);
  add (w, ov_erofs_root (w), "fifo", &c);
  c = meta (S_IFSOCK | 0755);
  add (w, ov_erofs_root (w), "sock", &c);
  char target[4096];
  memset (target, 't', 4095);
  c = meta (S_IFLNK | 0777);
  c.link = target;
  c.linklen = 4095;
  add (w, ov_erofs_root (w), "long", &c);
  c.linklen = 1;
  add (w, ov_erofs_root (w), "short", &c);
  good &= build (w) == 0;
  struct er_inode a, b, e, root, dd;
  good &= path_inode ("f", &a) == 0 && path_inode ("d/f2", &b) == 0 && path_inode ("f3", &e) == 0;
  ok (good && a.nid == b.nid && a.nid == e.nid && a.nlink == 3, "three names, one inode, nlink 3");
  ok (a.mode == (S_IFREG | 04755) && a.uid == 70000 && a.gid == 80000 && a.mtime == -1 && a.nsec == 999999999,
      "setuid, 32-bit ids, an mtime before 1970 with nanoseconds");
  ok (path_inode ("", &root) == 0 && root.nlink == 3 && path_inode ("d", &dd) == 0 && dd.nlink == 3
      && dd.mode == (S_IFDIR | 01777), "directories: nlink 2 + subdirectories, the sticky bit");
  struct er_inode x;
  ok (path_inode ("wh", &x) == 0 && x.mode == S_IFCHR && x.u == 0, "a whiteout: char 0/0");
  ok (path_inode ("blk", &x) == 0 && x.u == ((70000 & 0xff) | (300 << 8) | ((70000 & ~0xffu) << 12)),
      "a block device: the kernel's new_encode_dev");
  ok (path_inode ("fifo", &x) == 0 && S_ISFIFO (x.mode) && path_inode ("sock", &x) == 0 && S_ISSOCK (x.mode),
      "a FIFO and a socket");
  ok (content_is ("long", (uint8_t *) target, 4095) && path_inode ("long", &x) == 0 && x.layout == 0
      && content_is ("short", (uint8_t *) "t", 1) && path_inode ("short", &x) == 0 && x.layout == 2,
      "symlinks of 4095 bytes (a block) and 1 byte (inline)");
  struct lookup l = { "..", 2, 0, 0, 0 };
  ok (er_readdir (&im, &dd, lookup_one, &l) == 0 && l.nid == im.root && l.ftype == 2, ".. of d is the root");
}

static int
count (void *ctx, const char *name, size_t len, uint64_t nid, uint8_t ftype)
{
  (void) name;
  (void) len;
  (void) nid;
  (void) ftype;
  (*(size_t *) ctx)++;
  return 0;
}

static void
test_big_and_deep (void)
{
  struct ov_erofs *w = ov_erofs_new ();
  struct ov_erofs_meta m = meta (S_IFREG | 0644);
  struct ov_erofs_node *big = add (w, ov_erofs_root (w), "big", &(struct ov_erofs_meta) { .mode = S_IFDIR | 0755 });
  int good = big != NULL;
  /* 100,000 names in a scrambled order, of 1-40 bytes */
  for (uint32_t i = 0; good && i < 100000; i++)
    {
      char name[64];
      uint32_t k = (uint64_t) i * 7919 % 100000; /* a permutation */
      int n = snprintf (name, sizeof name, "%u-%.*s", k, (int) (k % 34), "abcdefghijklmnopqrstuvwxyzABCDEFGH");
      good &= ov_erofs_add (w, big, name, n, &m, &(ov_error_t) { NULL }) != NULL;
    }
  struct ov_erofs_meta dm = meta (S_IFDIR | 0700);
  struct ov_erofs_node *d = ov_erofs_root (w);
  for (int i = 0; good && i < 3000; i++)
    good &= (d = add (w, d, "d", &dm)) != NULL;
  good &= build (w) == 0;
  struct er_inode in;
  size_t n = 0;
  ok (good && path_inode ("big", &in) == 0 && er_readdir (&im, &in, count, &n) == 0 && n == 100002,
      "a directory of 100,000 entries: sorted across its blocks, every entry there");
  ok (path_inode ("big/777-abcdefghijklmnopqrstuvwxyzABC", &in) == 0 && S_ISREG (in.mode),
      "an entry in the middle found");
  uint64_t nid = im.root;
  int deep = 1;
  for (int i = 0; deep && i < 3000; i++)
    {
      struct er_inode up;
      deep &= lookup (nid, "d", 1, &in) == 0 && lookup (in.nid, "..", 2, &up) == 0 && up.nid == nid;
      nid = in.nid;
    }
  ok (deep, "a chain of 3000 directories, each .. its parent");
}

static void
test_sparse (void)
{
  struct ov_erofs *w = ov_erofs_new ();
  struct ov_erofs_xattr xa[] = { { "trusted.overlay.metacopy", "", 0 }, { "trusted.overlay.redirect", "/ab/cd", 6 } };
  struct ov_erofs_meta m = meta (S_IFREG | 0644);
  m.xattrs = xa;
  m.nxattrs = 2;
  m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_SPARSE, .len = (5ull << 30) + 1 };
  int good = add (w, ov_erofs_root (w), "meta", &m) != NULL;
  m.data.len = (10ull << 40) + 5; /* past one 8 TiB chunk */
  good &= add (w, ov_erofs_root (w), "huge", &m) != NULL;
  m.data.len = 0;
  good &= add (w, ov_erofs_root (w), "empty", &m) != NULL;
  good &= build (w) == 0;
  struct er_inode in;
  uint8_t buf[4096], zero[4096] = { 0 };
  ok (good && path_inode ("meta", &in) == 0 && in.layout == 4 && in.size == (5ull << 30) + 1
      && er_read (&im, &in, in.size - 4096, buf, 4096) == 0 && memcmp (buf, zero, 4096) == 0,
      "a metacopy file: chunk-based, i_size 5 GiB + 1, reads zeros");
  ok (path_inode ("huge", &in) == 0 && in.layout == 4 && er_read (&im, &in, in.size - 10, buf, 10) == 0,
      "a 10 TiB sparse file: two chunks");
  ok ((im.incompat & 4) && img_len < 3 * 4096, "the chunked-file feature is set, and no data is stored");
  ok (path_inode ("empty", &in) == 0 && in.layout == 0 && in.size == 0, "a sparse file of 0 bytes is plain");
}

struct vlog
{
  int calls, fail_at;
  uint64_t bytes, max_piece;
  int order_ok;
  uint64_t next;
  void *tag;
  int change_fd;
};

static int
vcb (void *ctx, void *tag, uint64_t off, const void *buf, size_t n, uint64_t total, ov_error_t *err)
{
  (void) buf;
  struct vlog *v = ctx;
  v->calls++;
  if (off == 0)
    {
      v->tag = tag;
      v->next = 0;
    }
  v->order_ok &= tag == v->tag && off == v->next && off + n <= total
                 && (total > OV_EROFS_VERIFY_WHOLE || n == total);
  v->next = off + n;
  v->bytes += n;
  if (n > v->max_piece)
    v->max_piece = n;
  if (v->change_fd >= 0)
    {
      /* a source changing under the writer, between its two reads */
      pwrite_all (v->change_fd, "X", 1, 4096 + 10);
      v->change_fd = -1;
    }
  if (v->calls == v->fail_at)
    return ov_corrupt (err, "hash mismatch for %s", (const char *) tag);
  return 0;
}

static void
test_verify (void)
{
  size_t sizes[] = { 10, 5000, 20u << 20, 4096 };
  const char *names[] = { "small", "mid", "large", "exact" };
  int fd = memfd_create ("src", MFD_CLOEXEC);
  uint8_t *p = pattern (20u << 20, 9);
  pwrite_all (fd, p, 20u << 20, 0);
  struct vlog v = { 0, -1, 0, 0, 1, 0, NULL, -1 };
  uint64_t total = 0;
  for (int round = 0; round < 3; round++)
    {
      struct ov_erofs *w = ov_erofs_new ();
      ov_erofs_set_verify (w, vcb, &v);
      for (size_t i = 0; i < ARRAY_SIZE (sizes); i++)
        {
          struct ov_erofs_meta m = meta (S_IFREG | 0644);
          m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_FD, .fd = fd, .len = sizes[i], .tag = (void *) names[i] };
          if (i == 0)
            m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_MEM, .mem = p, .len = sizes[i], .tag = (void *) names[i] };
          add (w, ov_erofs_root (w), names[i], &m);
          total += round == 0 ? sizes[i] : 0;
        }
      if (round == 0)
        {
          ok (build (w) == 0 && v.bytes == total && v.order_ok && v.max_piece == OV_EROFS_VERIFY_WHOLE
                  && content_is ("large", p, 20u << 20),
              "verify sees every byte once, in order: small files whole, a 20 MiB one in 8 MiB pieces");
        }
      else if (round == 1)
        {
          v.calls = 0;
          v.fail_at = 2;
          ok (build (w) < 0 && strstr (last_err, "hash mismatch") && strstr (last_err, "/"),
              "a failing verify fails the write with its message and the entry's path");
        }
      else
        {
          v.calls = 0;
          v.fail_at = -1;
          v.change_fd = fd;
          ok (build (w) < 0 && strstr (last_err, "changed"),
              "a source whose tail changes between the two reads fails the write");
        }
    }
  struct ov_erofs *w = ov_erofs_new ();
  struct ov_erofs_meta m = meta (S_IFREG | 0644);
  m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_FD, .fd = fd, .off = (20u << 20) - 100, .len = 200 };
  add (w, ov_erofs_root (w), "short", &m);
  ok (build (w) < 0 && strstr (last_err, "short") && strstr (last_err, "/short"),
      "a source shorter than its length fails the write, naming the file");
  /* mapped sources: the same checks (round 2 changed a byte: put it back) */
  pwrite_all (fd, p, 20u << 20, 0);
  v = (struct vlog) { 0, -1, 0, 0, 1, 0, NULL, -1 };
  w = ov_erofs_new ();
  ov_erofs_map_sources (w);
  ov_erofs_set_verify (w, vcb, &v);
  for (size_t i = 0; i < ARRAY_SIZE (sizes); i++)
    {
      m = meta (S_IFREG | 0644);
      m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_FD, .fd = fd, .len = sizes[i], .tag = (void *) names[i] };
      add (w, ov_erofs_root (w), names[i], &m);
    }
  ok (build (w) == 0 && v.bytes == total && v.order_ok && v.max_piece == OV_EROFS_VERIFY_WHOLE
          && content_is ("large", p, 20u << 20),
      "mapped: verify sees every byte once, in order, and the image holds them");
  w = ov_erofs_new ();
  ov_erofs_map_sources (w);
  m = meta (S_IFREG | 0644);
  m.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_FD, .fd = fd, .off = (20u << 20) - 100, .len = 200 };
  add (w, ov_erofs_root (w), "short", &m);
  ok (build (w) < 0 && strstr (last_err, "short") && strstr (last_err, "/short"),
      "mapped: a source shorter than its length fails the write, naming the file");
  free (p);
  close (fd);
}

static void
test_checksum (void)
{
  struct ov_erofs *w = ov_erofs_new ();
  struct ov_erofs_meta m = meta (S_IFDIR | 0711);
  m.uid = 5;
  ov_error_t err = NULL;
  int good = ov_erofs_set_root (w, &m, &err) == 0 && build (w) == 0;
  struct er_inode root;
  ok (good && er_inode (&im, im.root, &root) == 0 && root.mode == (S_IFDIR | 0711) && root.uid == 5,
      "the root's metadata is set by ov_erofs_set_root");
  img[3000] ^= 1; /* block 0 after the superblock: the root inode */
  ok (er_open (&im, img, img_len) < 0 && strstr (er_why, "checksum"),
      "the superblock crc32c covers the rest of block 0");
}

/* find reads a tree depth first by name; the image holds it in that order,
 * each file's whole blocks after its inode's block, so that read is one
 * stream front to back. */
static void
test_read_order (void)
{
  static uint8_t bytes[20000];
  struct ov_erofs *w = ov_erofs_new ();
  struct ov_erofs_node *root = ov_erofs_root (w);
  struct ov_erofs_meta f = meta (S_IFREG | 0644), d = meta (S_IFDIR | 0755);
  f.data = (struct ov_erofs_data) { .kind = OV_EROFS_DATA_MEM, .mem = bytes, .len = 10000 };
  add (w, root, "e", &f);
  struct ov_erofs_node *d1 = add (w, root, "d1", &d);
  add (w, root, "a", &f);
  add (w, d1, "y", &f);
  struct ov_erofs_node *sub = add (w, d1, "sub", &d);
  add (w, sub, "z", &f);
  add (w, d1, "x", &f);
  static const char *const order[] = { "a", "d1", "d1/sub", "d1/sub/z", "d1/x", "d1/y", "e" };
  int good = build (w) == 0, ordered = good, after = good;
  uint64_t last_nid = 0, last_data = 0;
  for (size_t i = 0; good && i < ARRAY_SIZE (order); i++)
    {
      struct er_inode in;
      if (path_inode (order[i], &in) < 0)
        {
          ordered = after = 0;
          break;
        }
      ordered &= in.nid > last_nid;
      last_nid = in.nid;
      if ((in.mode & S_IFMT) != S_IFREG)
        continue;
      ordered &= in.u > last_data;
      last_data = in.u;
      after &= (uint64_t) in.u * OV_EROFS_BLOCK > in.iloc;
    }
  ok (ordered, "inodes and data lie in the order find reads the tree: depth first, by name");
  ok (after, "a file's whole blocks follow its inode's block");
}

int
main (void)
{
  test_name_order ();
  test_tails (false, OUT_MEMFD);
  test_tails (true, OUT_MEMFD);
  test_tails (false, OUT_PIPE);
  test_tails (true, OUT_DISK);
  test_tails (false, OUT_DISK);
  test_direct_batches ();
  test_xattrs ();
  test_names_limits ();
  test_links_and_types ();
  test_big_and_deep ();
  test_sparse ();
  test_verify ();
  test_checksum ();
  test_read_order ();
  free (img);
  printf ("1..%d\n", tests);
  return failures != 0;
}
