/* The writer's internals, shared by the tree builder (erofs.c) and the
 * layout and image writer (erofs-write.c); the on-disk numbers are those of
 * Linux's fs/erofs/erofs_fs.h. */
#ifndef OVSNAP_EROFS_INT_H
#define OVSNAP_EROFS_INT_H

#include "erofs.h"
#include "util.h"

#include <sys/stat.h>

#define EROFS_MAGIC 0xE0F5E1E2u
#define EROFS_SB_OFFSET 1024u
#define EROFS_SB_SIZE 128u
#define EROFS_BLKBITS 12
#define EROFS_INODE_EXT_SIZE 64u
#define EROFS_INODE_SLOT 32u /* nid = byte offset / 32 */
#define EROFS_DIRENT_SIZE 12u
#define EROFS_XATTR_HDR_SIZE 12u
#define EROFS_XATTR_ENTRY_SIZE 4u
/* i_xattr_icount is 16 bits: the ibody is 12 + 4 * (icount - 1) bytes */
#define EROFS_XATTR_IBODY_MAX (EROFS_XATTR_HDR_SIZE + 4u * 65534u)
#define EROFS_NULL_ADDR 0xFFFFFFFFu

#define EROFS_COMPAT_SB_CHKSUM 0x1u
#define EROFS_COMPAT_MTIME 0x2u
#define EROFS_INCOMPAT_CHUNKED_FILE 0x4u
#define EROFS_SB_CHKSUM_SEED 0x5045B54Au /* crc32c(~0) over magic and a zero checksum */

enum erofs_layout
{
  EROFS_FLAT_PLAIN = 0,
  EROFS_FLAT_INLINE = 2,
  EROFS_CHUNK_BASED = 4,
};

enum erofs_ft
{
  EROFS_FT_UNKNOWN,
  EROFS_FT_REG,
  EROFS_FT_DIR,
  EROFS_FT_CHR,
  EROFS_FT_BLK,
  EROFS_FT_FIFO,
  EROFS_FT_SOCK,
  EROFS_FT_LNK,
};

/* One name in a directory; "." and ".." are added at layout. */
struct ov_erofs_dent
{
  const char *name;
  uint16_t len;
  struct ov_erofs_node *node;
};

struct ov_erofs_node
{
  struct ov_erofs_node *parent; /* directory of the first name; the root's is itself */
  const char *name;             /* the first name, for messages */
  uint16_t namelen;
  uint32_t mode, uid, gid, mtime_nsec, rdev, nlink;
  int64_t mtime;
  uint64_t size;
  enum ov_erofs_data_kind kind; /* S_IFREG; symlinks carry their target as MEM */
  int fd;
  const char *path; /* AT */
  uint64_t off;
  uint8_t *mem; /* owned */
  void *tag;
  uint8_t *xattr; /* the encoded xattr ibody (owned), xsize bytes, or NULL */
  uint32_t xsize;

  /* directories */
  struct ov_erofs_dent *ents;
  uint32_t nents, cap;
  uint32_t *blk_first; /* dir block -> index of its first entry; [nblk] = nents */
  uint32_t nsubdirs;

  /* layout */
  bool ordered;
  uint8_t layout;
  uint8_t chunkbits; /* CHUNK_BASED: log2(chunk blocks) */
  uint32_t ino;
  uint64_t nblocks; /* data blocks outside the metadata */
  uint32_t blkaddr;
  uint32_t tail; /* bytes inlined after the inode (FLAT_INLINE) */
  uint64_t pos;  /* byte offset of the inode */
  uint64_t tail_sum;
};

struct ov_erofs_arena
{
  struct ov_erofs_arena *next;
  size_t used, cap;
  char data[];
};

/* A source file mapped whole (ov_erofs_map_sources). */
struct ov_erofs_map
{
  int fd;
  uint8_t *addr;
  uint64_t len;
};

struct ov_erofs
{
  struct ov_erofs_node *root;
  struct ov_erofs_node **nodes; /* every node, in creation order (for freeing) */
  size_t nnodes, capnodes;
  struct ov_erofs_arena *arena;
  ov_erofs_verify_fn verify;
  void *verify_ctx;
  bool written;
  uint64_t image_size;
  bool map_sources;
  struct ov_erofs_map *maps; /* while writing */
  size_t nmaps, last_map;
};

/* "/a/b/name" of a node (its first name), shortened from the left past
 * `size` bytes; for messages. */
const char *ov_erofs_path (const struct ov_erofs_node *n, char *buf, size_t size);

static inline uint8_t
ov_erofs_ftype (uint32_t mode)
{
  switch (mode & S_IFMT)
    {
    case S_IFREG: return EROFS_FT_REG;
    case S_IFDIR: return EROFS_FT_DIR;
    case S_IFCHR: return EROFS_FT_CHR;
    case S_IFBLK: return EROFS_FT_BLK;
    case S_IFIFO: return EROFS_FT_FIFO;
    case S_IFSOCK: return EROFS_FT_SOCK;
    case S_IFLNK: return EROFS_FT_LNK;
    default: return EROFS_FT_UNKNOWN;
    }
}

/* Little-endian stores into on-disk structures. */
static inline void
put_le (uint8_t *p, uint64_t v, int n)
{
  for (int i = 0; i < n; i++)
    p[i] = v >> (8 * i);
}

#endif
