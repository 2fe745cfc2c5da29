/* Layout and writing of an EROFS image (see erofs.h for what it holds).
 *
 * Everything is placed before a byte is written, so the image goes out
 * front to back in large batches (erofs-out.c); contents from mapped
 * sources (ov_erofs_map_sources) go from the mapping to the kernel with no
 * copy here, hashed on the way. The inodes (with xattrs, inline
 * tails, chunk maps) fill metadata blocks in the order find reads a tree
 * (depth first, by name), each metadata block followed by the whole blocks
 * of the inodes it holds: a reader walking the tree reads the image as one
 * stream, and the backing file's readahead brings the inodes in with the
 * data. (With every inode first and the data after, a cold read of 10,000
 * files of 1-16 KiB took 0.8x an ext4 copy's time: the kernel reads inode
 * blocks one at a time, without readahead.) A file's tail lives with its
 * inode and its whole blocks after it, so a file with both is read twice:
 * its tail first (and checksummed), all of it then, where the verify
 * callback sees it whole and the tail must still match (a mapped source is
 * the same bytes both times). A file that is all tail is read once. */
#include "erofs-int.h"
#include "erofs-out.h"
#include "hash.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>

#define BLK OV_EROFS_BLOCK
#define READ_CHUNK OV_EROFS_VERIFY_WHOLE /* a multiple of BLK */

static inline uint64_t
round_up (uint64_t v, uint64_t a)
{
  return (v + a - 1) / a * a;
}

/* --- the superblock checksum ------------------------------------------------------------ */

/* crc32c (Castagnoli, reflected) as the kernel's crc32c(): no final xor. */
static uint32_t
crc32c (uint32_t crc, const uint8_t *p, size_t n)
{
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; i++)
    {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
  while (n--)
    crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

/* The superblock checksum covers the rest of block 0 (the first inodes
 * share it), so it is set when block 0 is complete: at the first flush. */
static void
sb_seal (uint8_t *block0)
{
  uint8_t *sb = block0 + EROFS_SB_OFFSET;
  put_le (sb + 4, 0, 4);
  put_le (sb + 4, crc32c (~0u, sb, BLK - EROFS_SB_OFFSET), 4);
}

/* --- layout ------------------------------------------------------------------------------ */

static int
dent_cmp (const void *a, const void *b)
{
  const struct ov_erofs_dent *x = a, *y = b;
  int c = memcmp (x->name, y->name, x->len < y->len ? x->len : y->len);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Sorts a directory (with "." and ".."), rejects a name given twice and
 * packs the entries into blocks: 12-byte dirents, then their names. */
static int
dir_prepare (struct ov_erofs_node *d, ov_error_t *err)
{
  char pb[512];
  if (d->nents > UINT32_MAX - 2)
    return ov_error_set (err, OV_ENOSPACE, 0, "erofs image: %s: too many entries",
                         ov_erofs_path (d, pb, sizeof pb));
  if (d->nents + 2 > d->cap)
    {
      d->cap = d->nents + 2;
      d->ents = xrealloc (d->ents, d->cap * sizeof *d->ents);
    }
  d->ents[d->nents++] = (struct ov_erofs_dent) { ".", 1, d };
  d->ents[d->nents++] = (struct ov_erofs_dent) { "..", 2, d->parent };
  qsort (d->ents, d->nents, sizeof *d->ents, dent_cmp);
  uint32_t nblk = 0, used = 0;
  for (uint32_t i = 0; i < d->nents; i++)
    {
      if (i && dent_cmp (&d->ents[i - 1], &d->ents[i]) == 0)
        return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: two entries named %.*s",
                             ov_erofs_path (d, pb, sizeof pb), (int) d->ents[i].len, d->ents[i].name);
      uint32_t need = EROFS_DIRENT_SIZE + d->ents[i].len;
      if (i == 0 || used + need > BLK)
        {
          nblk++;
          used = 0;
        }
      used += need;
    }
  d->blk_first = xmalloc ((nblk + 1) * sizeof *d->blk_first);
  nblk = 0;
  used = 0;
  for (uint32_t i = 0; i < d->nents; i++)
    {
      uint32_t need = EROFS_DIRENT_SIZE + d->ents[i].len;
      if (i == 0 || used + need > BLK)
        {
          d->blk_first[nblk++] = i;
          used = 0;
        }
      used += need;
    }
  d->blk_first[nblk] = d->nents;
  d->size = (uint64_t) (nblk - 1) * BLK + used;
  d->nlink = 2 + d->nsubdirs;
  return 0;
}

/* Directory block b, cut or zero-padded to len bytes (its used bytes fit). */
static void
dir_block (const struct ov_erofs_node *d, uint32_t b, uint8_t *dst, size_t len)
{
  memset (dst, 0, len);
  uint32_t first = d->blk_first[b], end = d->blk_first[b + 1];
  size_t nameoff = (size_t) (end - first) * EROFS_DIRENT_SIZE;
  for (uint32_t i = first; i < end; i++)
    {
      const struct ov_erofs_dent *e = &d->ents[i];
      uint8_t *de = dst + (size_t) (i - first) * EROFS_DIRENT_SIZE;
      put_le (de, e->node->pos / EROFS_INODE_SLOT, 8);
      put_le (de + 8, nameoff, 2);
      de[10] = ov_erofs_ftype (e->node->mode);
      memcpy (dst + nameoff, e->name, e->len);
      nameoff += e->len;
    }
}

/* A run of metadata blocks, then the whole blocks of the inodes in it. */
struct group
{
  size_t first, end; /* l->order[first..end) */
  uint64_t meta_end; /* byte after the group's metadata blocks */
};

struct layout
{
  struct ov_erofs_node **order; /* depth first (order_tree) */
  size_t n;
  struct group *groups;
  size_t ngroups;
  uint64_t blocks;
  bool chunked;
};

/* Depth first in name order, each name right before what is below it:
 * the order find, tar and cp -a read a tree in. A hard-linked inode goes
 * where its first name is. */
static int
order_tree (struct ov_erofs *w, struct layout *l, ov_error_t *err)
{
  l->order = xmalloc (w->nnodes * sizeof *l->order);
  l->n = 0;
  struct frame
  {
    struct ov_erofs_node *dir;
    uint32_t next;
  } *stack = NULL;
  size_t depth = 0, cap = 0;
  struct ov_erofs_node *c = w->root;
  int r = 0;
  for (;;)
    {
      if (c && !c->ordered)
        {
          c->ordered = true;
          l->order[l->n++] = c;
          if ((c->mode & S_IFMT) == S_IFDIR)
            {
              if ((r = dir_prepare (c, err)) < 0)
                break;
              if (depth == cap)
                stack = xrealloc (stack, (cap = cap ? 2 * cap : 16) * sizeof *stack);
              stack[depth++] = (struct frame) { c, 0 };
            }
        }
      if (depth == 0)
        break;
      struct frame *f = &stack[depth - 1];
      if (f->next == f->dir->nents)
        {
          depth--;
          c = NULL;
          continue;
        }
      c = f->dir->ents[f->next++].node;
    }
  free (stack);
  if (r == 0 && l->n != w->nnodes)
    r = ov_error_set (err, OV_EGENERIC, 0, "erofs image: internal error: %zu of %zu inodes reachable", l->n,
                      w->nnodes);
  return r;
}

static bool
tail_fits (uint64_t pos, uint64_t isize, uint32_t tail)
{
  return (pos + isize) % BLK + tail <= BLK;
}

/* Where the inode goes and how its content is stored: whole blocks, and a
 * tail inlined after the inode when that wastes less than a block of its
 * own (moving the inode to the next block start if that makes it fit). */
static uint64_t
place (struct ov_erofs_node *n, uint64_t pos, bool *chunked)
{
  uint64_t isize = EROFS_INODE_EXT_SIZE + n->xsize;
  uint32_t type = n->mode & S_IFMT;
  n->layout = EROFS_FLAT_PLAIN;
  n->nblocks = 0;
  n->tail = 0;
  bool has_data = type == S_IFREG || type == S_IFDIR || type == S_IFLNK;
  if (!has_data || n->size == 0)
    {
      n->pos = pos;
      return pos + isize;
    }
  if (n->kind == OV_EROFS_DATA_SPARSE)
    {
      /* every chunk a hole: the smallest chunk size that covers the file
       * in one 4-byte map entry, or chunks of 2^43 bytes */
      unsigned cb = 0;
      while (cb < 31 && ((uint64_t) BLK << cb) < n->size)
        cb++;
      n->layout = EROFS_CHUNK_BASED;
      n->chunkbits = cb;
      *chunked = true;
      uint64_t chunks = (n->size + ((uint64_t) BLK << cb) - 1) >> (EROFS_BLKBITS + cb);
      n->pos = pos;
      return pos + isize + 4 * chunks;
    }
  uint64_t full = n->size / BLK;
  uint32_t tail = n->size % BLK;
  if (tail && tail_fits (pos, isize, tail))
    {
      n->layout = EROFS_FLAT_INLINE;
    }
  else if (tail && tail_fits (round_up (pos, BLK), isize, tail) && round_up (pos, BLK) - pos < BLK - tail)
    {
      pos = round_up (pos, BLK);
      n->layout = EROFS_FLAT_INLINE;
    }
  n->pos = pos;
  if (n->layout == EROFS_FLAT_INLINE)
    {
      n->tail = tail;
      n->nblocks = full;
      return pos + isize + tail;
    }
  n->nblocks = full + (tail != 0);
  return pos + isize;
}

/* Closes the group of order[g->first..end) whose metadata ends in the
 * block before *blk: their whole blocks from there on. */
static int
close_group (struct layout *l, size_t end, uint64_t meta_end, uint64_t *blk, ov_error_t *err)
{
  struct group *g = &l->groups[l->ngroups - 1];
  g->end = end;
  g->meta_end = round_up (meta_end, BLK);
  *blk = g->meta_end / BLK;
  for (size_t i = g->first; i < end; i++)
    {
      struct ov_erofs_node *n = l->order[i];
      if (!n->nblocks)
        continue;
      if (*blk + n->nblocks > UINT32_MAX)
        return ov_error_set (err, OV_ENOSPACE, 0, "erofs image: more than %u blocks of %u bytes", UINT32_MAX,
                             BLK);
      n->blkaddr = *blk;
      *blk += n->nblocks;
    }
  return 0;
}

static void
open_group (struct layout *l, size_t first)
{
  l->groups = xrealloc (l->groups, (l->ngroups + 1) * sizeof *l->groups);
  l->groups[l->ngroups++] = (struct group) { first, first, 0 };
}

/* Inodes go into the group's metadata block while they fit in it whole;
 * one that does not starts the next group after the data (one larger
 * than a block, with big xattrs, spans blocks of a group of its own). */
static int
layout_tree (struct ov_erofs *w, struct layout *l, ov_error_t *err)
{
  if (order_tree (w, l, err) < 0)
    return -1;
  uint64_t pos = EROFS_SB_OFFSET + EROFS_SB_SIZE, blk = 0;
  uint64_t gend = BLK; /* end of the open group's metadata */
  open_group (l, 0);
  for (size_t i = 0; i < l->n; i++)
    {
      struct ov_erofs_node *n = l->order[i];
      n->ino = i + 1;
      uint64_t next = place (n, pos, &l->chunked);
      if (next > gend && i > l->groups[l->ngroups - 1].first)
        {
          if (close_group (l, i, pos, &blk, err) < 0)
            return -1;
          open_group (l, i);
          pos = blk * BLK;
          gend = pos + BLK;
          next = place (n, pos, &l->chunked);
        }
      if (next > gend)
        gend = round_up (next, BLK);
      pos = round_up (next, EROFS_INODE_SLOT);
    }
  if (close_group (l, l->n, pos, &blk, err) < 0)
    return -1;
  l->blocks = blk;
  return 0;
}

/* --- writing ----------------------------------------------------------------------------- */

static void
superblock (const struct layout *l, const struct ov_erofs *w, uint8_t *sb)
{
  memset (sb, 0, EROFS_SB_SIZE);
  put_le (sb + 0, EROFS_MAGIC, 4);
  put_le (sb + 8, EROFS_COMPAT_SB_CHKSUM | EROFS_COMPAT_MTIME, 4);
  sb[12] = EROFS_BLKBITS;
  put_le (sb + 14, w->root->pos / EROFS_INODE_SLOT, 2);
  put_le (sb + 16, l->n, 8);
  put_le (sb + 36, l->blocks, 4);
  /* meta_blkaddr and xattr_blkaddr 0: nids count from byte 0 */
  put_le (sb + 80, l->chunked ? EROFS_INCOMPAT_CHUNKED_FILE : 0, 4);
}

static void
inode_bytes (const struct ov_erofs_node *n, uint8_t *p)
{
  memset (p, 0, EROFS_INODE_EXT_SIZE);
  put_le (p + 0, 1 | n->layout << 1, 2);
  put_le (p + 2, n->xsize ? (n->xsize - EROFS_XATTR_HDR_SIZE) / 4 + 1 : 0, 2);
  put_le (p + 4, n->mode, 2);
  put_le (p + 8, n->size, 8);
  switch (n->mode & S_IFMT)
    {
    case S_IFCHR:
    case S_IFBLK: put_le (p + 16, n->rdev, 4); break;
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
      if (n->layout == EROFS_CHUNK_BASED)
        put_le (p + 16, n->chunkbits, 2);
      else
        put_le (p + 16, n->nblocks ? n->blkaddr : 0, 4);
      break;
    default: break;
    }
  put_le (p + 20, n->ino, 4);
  put_le (p + 24, n->uid, 4);
  put_le (p + 28, n->gid, 4);
  put_le (p + 32, (uint64_t) n->mtime, 8);
  put_le (p + 40, n->mtime_nsec, 4);
  put_le (p + 44, n->nlink, 4);
}

static bool
verified (const struct ov_erofs_node *n)
{
  return (n->mode & S_IFMT) == S_IFREG
         && (n->kind == OV_EROFS_DATA_FD || n->kind == OV_EROFS_DATA_AT || n->kind == OV_EROFS_DATA_MEM);
}

static int
verify (struct ov_erofs *w, const struct ov_erofs_node *n, uint64_t off, const void *buf, size_t len,
        ov_error_t *err)
{
  if (!w->verify || !verified (n))
    return 0;
  if (w->verify (w->verify_ctx, n->tag, off, buf, len, n->size, err) < 0)
    {
      char pb[512];
      return ov_error_prefix (err, "erofs image: %s", ov_erofs_path (n, pb, sizeof pb));
    }
  return 0;
}

/* The fd to read n's content from: its own, or (AT) its file opened now;
 * source_close closes only what source_open opened. */
static int
source_open (const struct ov_erofs_node *n, ov_error_t *err)
{
  char pb[512];
  if (n->kind != OV_EROFS_DATA_AT)
    return n->fd >= 0 ? n->fd
                      : ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: no source fd",
                                      ov_erofs_path (n, pb, sizeof pb));
  int fd = openat (n->fd, n->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "erofs image: %s: open the source %s", ov_erofs_path (n, pb, sizeof pb), n->path);
  return fd;
}

static void
source_close (const struct ov_erofs_node *n, int fd)
{
  if (n->kind == OV_EROFS_DATA_AT && fd >= 0)
    close (fd);
}

static int
read_source (const struct ov_erofs_node *n, int fd, uint8_t *dst, size_t len, uint64_t at, ov_error_t *err)
{
  char pb[512];
  ssize_t r = pread_all (fd, dst, len, n->off + at);
  if (r < 0)
    return ov_error (err, errno, "erofs image: %s: read %zu bytes at %llu of the source", ov_erofs_path (n, pb, sizeof pb),
                     len, (unsigned long long) (n->off + at));
  if ((size_t) r < len)
    return ov_corrupt (err, "erofs image: %s: the source ends %zu bytes short (bytes %llu-%llu)",
                       ov_erofs_path (n, pb, sizeof pb), len - (size_t) r,
                       (unsigned long long) (n->off + at), (unsigned long long) (n->off + at + len));
  return 0;
}

/* Where a mapped source's bytes are (ov_erofs_map_sources): each source
 * file is mapped once, whole, and must hold the node's range. */
static const uint8_t *
source_map (struct ov_erofs *w, const struct ov_erofs_node *n, ov_error_t *err)
{
  char pb[512];
  if (n->fd < 0)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: no source fd", ov_erofs_path (n, pb, sizeof pb)),
           NULL;
  struct ov_erofs_map *m = NULL;
  if (w->nmaps && w->maps[w->last_map].fd == n->fd)
    m = &w->maps[w->last_map];
  for (size_t i = 0; m == NULL && i < w->nmaps; i++)
    if (w->maps[i].fd == n->fd)
      m = &w->maps[i];
  if (m == NULL)
    {
      struct stat st;
      if (fstat (n->fd, &st) < 0)
        return ov_error (err, errno, "erofs image: %s: stat the source", ov_erofs_path (n, pb, sizeof pb)), NULL;
      void *p = st.st_size ? mmap (NULL, st.st_size, PROT_READ, MAP_SHARED, n->fd, 0) : NULL;
      if (p == MAP_FAILED)
        return ov_error (err, errno, "erofs image: %s: map the source", ov_erofs_path (n, pb, sizeof pb)), NULL;
      if (p)
        madvise (p, st.st_size, MADV_WILLNEED);
      w->maps = xrealloc (w->maps, (w->nmaps + 1) * sizeof *w->maps);
      m = &w->maps[w->nmaps++];
      *m = (struct ov_erofs_map){ n->fd, p, st.st_size };
    }
  w->last_map = m - w->maps;
  if (n->off > m->len || n->size > m->len - n->off)
    return ov_corrupt (err, "erofs image: %s: the source ends %llu bytes short (bytes %llu-%llu)",
                       ov_erofs_path (n, pb, sizeof pb), (unsigned long long) (n->off + n->size - m->len),
                       (unsigned long long) n->off, (unsigned long long) (n->off + n->size)),
           NULL;
  return m->addr + n->off;
}

static bool
mapped (const struct ov_erofs *w, const struct ov_erofs_node *n)
{
  return w->map_sources && n->kind == OV_EROFS_DATA_FD;
}

/* The inline tail, in the metadata pass. */
static int
write_tail (struct ov_erofs *w, struct eout *o, struct ov_erofs_node *n, ov_error_t *err)
{
  uint64_t at = (uint64_t) n->nblocks * BLK;
  uint8_t *dst = eout_room (o, n->tail, err);
  if (!dst)
    return -1;
  if ((n->mode & S_IFMT) == S_IFDIR)
    dir_block (n, n->nblocks, dst, n->tail);
  else if (n->kind == OV_EROFS_DATA_MEM || mapped (w, n))
    {
      const uint8_t *src = n->kind == OV_EROFS_DATA_MEM ? n->mem : source_map (w, n, err);
      if (!src || (at == 0 && verify (w, n, 0, src, n->size, err) < 0))
        return -1;
      memcpy (dst, src + at, n->tail);
    }
  else
    {
      int fd = source_open (n, err);
      int r = fd < 0 ? -1 : read_source (n, fd, dst, n->tail, at, err);
      source_close (n, fd);
      if (r < 0 || (at == 0 && verify (w, n, 0, dst, n->tail, err) < 0))
        return -1;
      n->tail_sum = ov_checksum (dst, n->tail);
    }
  eout_used (o, n->tail);
  return 0;
}

static int
write_meta (struct ov_erofs *w, struct eout *o, const struct layout *l, const struct group *g,
            ov_error_t *err)
{
  for (size_t i = g->first; i < g->end; i++)
    {
      struct ov_erofs_node *n = l->order[i];
      if (eout_fill (o, NULL, 0, n->pos - eout_pos (o), err) < 0)
        return -1;
      uint8_t ino[EROFS_INODE_EXT_SIZE];
      inode_bytes (n, ino);
      if (eout_fill (o, ino, 0, sizeof ino, err) < 0 || eout_fill (o, n->xattr, 0, n->xsize, err) < 0)
        return -1;
      if (n->layout == EROFS_CHUNK_BASED)
        {
          uint64_t chunks = (n->size + ((uint64_t) BLK << n->chunkbits) - 1) >> (EROFS_BLKBITS + n->chunkbits);
          if (eout_fill (o, NULL, 0xff, 4 * chunks, err) < 0)
            return -1;
        }
      if (n->tail && write_tail (w, o, n, err) < 0)
        return -1;
    }
  return eout_fill (o, NULL, 0, g->meta_end - eout_pos (o), err);
}

/* A file's whole blocks from its fd, in READ_CHUNK pieces (block multiples,
 * so the tail is always in the last piece). */
static int
write_source_blocks (struct ov_erofs *w, struct eout *o, struct ov_erofs_node *n, int fd, ov_error_t *err)
{
  for (uint64_t at = 0; at < n->size;)
    {
      size_t k = n->size - at < READ_CHUNK ? n->size - at : READ_CHUNK;
      uint8_t *dst = eout_room (o, round_up (k, BLK), err);
      if (!dst || read_source (n, fd, dst, k, at, err) < 0 || verify (w, n, at, dst, k, err) < 0)
        return -1;
      size_t keep = k;
      if (at + k == n->size && n->tail)
        {
          keep = k - n->tail;
          if (ov_checksum (dst + keep, n->tail) != n->tail_sum)
            {
              char pb[512];
              return ov_corrupt (err, "erofs image: %s: the source changed while the image was written",
                                 ov_erofs_path (n, pb, sizeof pb));
            }
        }
      else if (at + k == n->size)
        {
          keep = round_up (k, BLK);
          memset (dst + k, 0, keep - k);
        }
      eout_used (o, keep);
      at += k;
    }
  return 0;
}

/* A mapped file's whole blocks, verified (in READ_CHUNK pieces past
 * OV_EROFS_VERIFY_WHOLE), then written in place from the mapping. */
static int
write_mapped_blocks (struct ov_erofs *w, struct eout *o, struct ov_erofs_node *n, ov_error_t *err)
{
  const uint8_t *src = source_map (w, n, err);
  if (src == NULL)
    return -1;
  for (uint64_t at = 0; at < n->size;)
    {
      size_t k = n->size <= OV_EROFS_VERIFY_WHOLE ? n->size : n->size - at < READ_CHUNK ? n->size - at : READ_CHUNK;
      if (verify (w, n, at, src + at, k, err) < 0)
        return -1;
      at += k;
    }
  uint64_t bytes = (uint64_t) n->nblocks * BLK, have = n->size - n->tail;
  return eout_ext (o, src, have, err) < 0 ? -1 : eout_fill (o, NULL, 0, bytes - have, err);
}

static int
write_data (struct ov_erofs *w, struct eout *o, const struct layout *l, const struct group *g,
            ov_error_t *err)
{
  for (size_t i = g->first; i < g->end; i++)
    {
      struct ov_erofs_node *n = l->order[i];
      if (!n->nblocks)
        continue;
      if ((uint64_t) n->blkaddr * BLK != eout_pos (o))
        return ov_error_set (err, OV_EGENERIC, 0, "erofs image: internal error: block %u written at byte %llu",
                             n->blkaddr, (unsigned long long) eout_pos (o));
      uint64_t bytes = (uint64_t) n->nblocks * BLK;
      if ((n->mode & S_IFMT) == S_IFDIR)
        {
          for (uint32_t b = 0; b < n->nblocks; b++)
            {
              uint8_t *dst = eout_room (o, BLK, err);
              if (!dst)
                return -1;
              dir_block (n, b, dst, BLK);
              eout_used (o, BLK);
            }
        }
      else if (n->kind == OV_EROFS_DATA_MEM)
        {
          uint64_t have = n->size < bytes ? n->size : bytes;
          if (verify (w, n, 0, n->mem, n->size, err) < 0 || eout_fill (o, n->mem, 0, have, err) < 0
              || eout_fill (o, NULL, 0, bytes - have, err) < 0)
            return -1;
        }
      else if (mapped (w, n))
        {
          if (write_mapped_blocks (w, o, n, err) < 0)
            return -1;
        }
      else
        {
          int fd = source_open (n, err);
          int r = fd < 0 ? -1 : write_source_blocks (w, o, n, fd, err);
          source_close (n, fd);
          if (r < 0)
            return -1;
        }
    }
  return 0;
}

static void
unmap_sources (struct ov_erofs *w)
{
  for (size_t i = 0; i < w->nmaps; i++)
    if (w->maps[i].addr)
      munmap (w->maps[i].addr, w->maps[i].len);
  free (w->maps);
  w->maps = NULL;
  w->nmaps = 0;
}

int
ov_erofs_write (struct ov_erofs *w, int out_fd, ov_error_t *err)
{
  if (w->written)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: the image was already written");
  w->written = true;
  struct layout l = { 0 };
  struct eout o;
  int r = layout_tree (w, &l, err);
  bool opened = false;
  if (r == 0)
    r = eout_open (&o, out_fd, sb_seal, BLK, err);
  if (r == 0)
    {
      opened = true;
      uint8_t *b0 = eout_room (&o, BLK, err); /* the first bytes: never a flush */
      memset (b0, 0, EROFS_SB_OFFSET);
      superblock (&l, w, b0 + EROFS_SB_OFFSET);
      eout_used (&o, EROFS_SB_OFFSET + EROFS_SB_SIZE);
    }
  for (size_t g = 0; r == 0 && g < l.ngroups; g++)
    {
      r = write_meta (w, &o, &l, &l.groups[g], err);
      if (r == 0)
        r = write_data (w, &o, &l, &l.groups[g], err);
    }
  if (r == 0 && eout_pos (&o) != l.blocks * BLK)
    r = ov_error_set (err, OV_EGENERIC, 0, "erofs image: internal error: %llu bytes for %llu blocks",
                      (unsigned long long) eout_pos (&o), (unsigned long long) l.blocks);
  if (r == 0)
    r = eout_finish (&o, err);
  if (r == 0)
    w->image_size = l.blocks * BLK;
  if (opened)
    eout_close (&o);
  unmap_sources (w);
  free (l.order);
  free (l.groups);
  return r;
}
