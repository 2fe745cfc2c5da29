/* A minimal, bounds-checked EROFS reader for the writer's tests (unit test
 * and fuzz harness): an image in memory, read the way fs/erofs reads it
 * (superblock checksum, extended and compact inodes, inline xattrs, flat
 * plain / flat inline / chunk-based data, dirent blocks). Every function
 * returns -1 on anything malformed, with a reason in er_why. Written from
 * the on-disk format, independently of snapshotter/erofs. */
#ifndef OVSNAP_EROFS_READER_H
#define OVSNAP_EROFS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

static const char *er_why = "";

#define ER_FAIL(why)                                                                                         \
  do                                                                                                         \
    {                                                                                                        \
      er_why = (why);                                                                                        \
      return -1;                                                                                             \
    }                                                                                                        \
  while (0)

struct er_img
{
  const uint8_t *p;
  uint64_t len;
  uint64_t root;
  uint64_t inos, blocks;
  uint32_t incompat;
};

struct er_inode
{
  uint64_t nid, iloc;
  uint8_t layout;
  uint32_t isize, xsize;
  uint32_t mode, uid, gid, nlink, u, ino;
  uint64_t size;
  int64_t mtime;
  uint32_t nsec;
};

static uint64_t
er_le (const uint8_t *p, int n)
{
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static const uint8_t *
er_at (const struct er_img *im, uint64_t off, uint64_t n)
{
  if (off > im->len || n > im->len - off)
    return NULL;
  return im->p + off;
}

static uint32_t
er_crc32c (uint32_t crc, const uint8_t *p, size_t n)
{
  while (n--)
    {
      crc ^= *p++;
      for (int k = 0; k < 8; k++)
        crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
  return crc;
}

static int
er_open (struct er_img *im, const uint8_t *p, size_t len)
{
  im->p = p;
  im->len = len;
  const uint8_t *sb = er_at (im, 1024, 128);
  if (!sb || er_le (sb, 4) != 0xE0F5E1E2u)
    ER_FAIL ("no superblock");
  if (sb[12] != 12)
    ER_FAIL ("block size not 4096");
  if (er_le (sb + 8, 4) & 1)
    {
      uint8_t blk[3072];
      const uint8_t *b = er_at (im, 1024, sizeof blk);
      if (!b)
        ER_FAIL ("block 0 short");
      memcpy (blk, b, sizeof blk);
      memset (blk + 4, 0, 4);
      if (er_crc32c (~0u, blk, sizeof blk) != er_le (sb + 4, 4))
        ER_FAIL ("superblock checksum");
    }
  if (er_le (sb + 40, 4) != 0)
    ER_FAIL ("meta_blkaddr not 0 (not read here)");
  im->root = er_le (sb + 14, 2);
  im->inos = er_le (sb + 16, 8);
  im->blocks = er_le (sb + 36, 4);
  im->incompat = er_le (sb + 80, 4);
  if (im->blocks * 4096 != len)
    ER_FAIL ("image size is not blocks * 4096");
  if (im->incompat & ~4u)
    ER_FAIL ("incompatible feature");
  return 0;
}

static int
er_inode (const struct er_img *im, uint64_t nid, struct er_inode *o)
{
  memset (o, 0, sizeof *o);
  o->nid = nid;
  o->iloc = nid * 32;
  const uint8_t *p = er_at (im, o->iloc, 32);
  if (!p)
    ER_FAIL ("inode beyond the image");
  uint16_t fmt = er_le (p, 2);
  if (fmt & ~0xfu)
    ER_FAIL ("i_format");
  o->layout = fmt >> 1 & 7;
  uint16_t icount = er_le (p + 2, 2);
  o->xsize = icount ? 12 + 4 * (icount - 1) : 0;
  o->mode = er_le (p + 4, 2);
  if (fmt & 1)
    {
      p = er_at (im, o->iloc, 64);
      if (!p)
        ER_FAIL ("extended inode beyond the image");
      o->isize = 64;
      o->size = er_le (p + 8, 8);
      o->u = er_le (p + 16, 4);
      o->ino = er_le (p + 20, 4);
      o->uid = er_le (p + 24, 4);
      o->gid = er_le (p + 28, 4);
      o->mtime = (int64_t) er_le (p + 32, 8);
      o->nsec = er_le (p + 40, 4);
      o->nlink = er_le (p + 44, 4);
    }
  else
    {
      o->isize = 32;
      o->nlink = er_le (p + 6, 2);
      o->size = er_le (p + 8, 4);
      o->u = er_le (p + 16, 4);
      o->ino = er_le (p + 20, 4);
      o->uid = er_le (p + 24, 2);
      o->gid = er_le (p + 26, 2);
    }
  if (o->layout != 0 && o->layout != 2 && o->layout != 4)
    ER_FAIL ("data layout not read here");
  if (!er_at (im, o->iloc, (uint64_t) o->isize + o->xsize))
    ER_FAIL ("xattrs beyond the image");
  if (o->size > INT64_MAX)
    ER_FAIL ("size");
  switch (o->mode & S_IFMT)
    {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK: break;
    default: ER_FAIL ("file type");
    }
  return 0;
}

/* n bytes of the content at off (off + n <= size) */
static int
er_read (const struct er_img *im, const struct er_inode *in, uint64_t off, uint8_t *dst, size_t n)
{
  if (off > in->size || n > in->size - off)
    ER_FAIL ("read beyond the size");
  uint64_t meta_end = in->iloc + in->isize + in->xsize;
  while (n)
    {
      uint64_t inblk = 4096 - off % 4096;
      size_t k = n < inblk ? n : inblk;
      const uint8_t *src;
      if (in->layout == 4)
        {
          unsigned cbits = 12 + (in->u & 0x1f);
          if (in->u & 0x20)
            ER_FAIL ("chunk indexes not read here");
          const uint8_t *e = er_at (im, ((meta_end + 3) & ~3ull) + 4 * (off >> cbits), 4);
          if (!e)
            ER_FAIL ("chunk map beyond the image");
          uint32_t addr = er_le (e, 4);
          if (addr == 0xFFFFFFFFu)
            {
              memset (dst, 0, k);
              goto next;
            }
          src = er_at (im, (uint64_t) addr * 4096 + (off & ((1ull << cbits) - 1)), k);
        }
      else
        {
          uint64_t nblocks = (in->size + 4095) / 4096;
          uint64_t last = in->layout == 2 ? nblocks - 1 : nblocks;
          if (off < last * 4096)
            src = er_at (im, (uint64_t) in->u * 4096 + off, k);
          else if (in->layout == 2)
            {
              uint64_t pa = meta_end + off % 4096;
              /* the kernel: inline data must not cross a block boundary */
              if ((meta_end % 4096) + (in->size - last * 4096) > 4096)
                ER_FAIL ("inline tail crosses a block boundary");
              src = er_at (im, pa, k);
            }
          else
            ER_FAIL ("no block for this offset");
        }
      if (!src)
        ER_FAIL ("data beyond the image");
      memcpy (dst, src, k);
    next:
      dst += k;
      off += k;
      n -= k;
    }
  return 0;
}

typedef int (*er_dirent_fn) (void *ctx, const char *name, size_t len, uint64_t nid, uint8_t ftype);

/* Every entry, checking the kernel's rules: nameoff bounds, names of
 * 1-255 bytes, memcmp order across the whole directory. */
static int
er_readdir (const struct er_img *im, const struct er_inode *dir, er_dirent_fn fn, void *ctx)
{
  static uint8_t blk[4096];
  static char prev[256];
  size_t prevlen = 0;
  bool first = true;
  if ((dir->mode & S_IFMT) != S_IFDIR)
    ER_FAIL ("not a directory");
  for (uint64_t at = 0; at < dir->size; at += 4096)
    {
      size_t max = dir->size - at < 4096 ? dir->size - at : 4096;
      if (er_read (im, dir, at, blk, max) < 0)
        return -1;
      if (max < 12)
        ER_FAIL ("dir block too short");
      uint32_t nameoff0 = er_le (blk + 8, 2);
      if (nameoff0 < 12 || nameoff0 >= max || nameoff0 % 12)
        ER_FAIL ("dirent nameoff");
      uint32_t count = nameoff0 / 12;
      for (uint32_t i = 0; i < count; i++)
        {
          const uint8_t *de = blk + 12 * i;
          uint32_t off = er_le (de + 8, 2);
          size_t len;
          if (i + 1 < count)
            {
              uint32_t next = er_le (de + 20, 2);
              if (next < off)
                ER_FAIL ("dirent names out of order");
              len = next - off;
            }
          else
            len = strnlen ((const char *) blk + off, max - off);
          if (off < nameoff0 || off + len > max || len == 0 || len > 255)
            ER_FAIL ("dirent name bounds");
          const char *name = (const char *) blk + off;
          if (!first)
            {
              int c = memcmp (prev, name, prevlen < len ? prevlen : len);
              if (c > 0 || (c == 0 && prevlen >= len))
                ER_FAIL ("directory not sorted");
            }
          first = false;
          memcpy (prev, name, len);
          prevlen = len;
          if (fn (ctx, name, len, er_le (de, 8), de[10]) < 0)
            return -1;
        }
    }
  return 0;
}

typedef int (*er_xattr_fn) (void *ctx, uint8_t index, const char *name, size_t nlen, const uint8_t *value,
                            size_t vlen);

static int
er_xattrs (const struct er_img *im, const struct er_inode *in, er_xattr_fn fn, void *ctx)
{
  if (!in->xsize)
    return 0;
  const uint8_t *h = er_at (im, in->iloc + in->isize, in->xsize);
  if (!h || in->xsize < 12)
    ER_FAIL ("xattr header");
  uint32_t shared = h[4];
  uint64_t at = 12 + 4ull * shared;
  while (at < in->xsize)
    {
      if (in->xsize - at < 4)
        ER_FAIL ("xattr entry header");
      const uint8_t *e = h + at;
      size_t nlen = e[0], vlen = er_le (e + 2, 2);
      uint64_t esize = (4 + nlen + vlen + 3) & ~3ull;
      if (esize > in->xsize - at)
        ER_FAIL ("xattr entry beyond the ibody");
      if (fn (ctx, e[1], (const char *) e + 4, nlen, e + 4 + nlen, vlen) < 0)
        return -1;
      at += esize;
    }
  return 0;
}

#endif
