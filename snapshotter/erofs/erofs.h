/* An EROFS image writer: the node cache holds each materialized snapshot
 * tree as one uncompressed EROFS image, mounted file-backed as an overlay
 * lower. The caller builds the tree in memory (ov_erofs_add, ov_erofs_link),
 * then ov_erofs_write lays it out and writes the image front to back in
 * large sequential writes (io_uring, direct where the output file takes
 * it: erofs-out.c), taking file contents from their sources (the store's
 * pack files, read or mapped) at that moment. Nothing here depends on the engine
 * beyond snapshotter/lib.
 *
 * What the image holds (Linux 6.x erofs, block size 4096, no compression):
 * - every inode extended (64 bytes: 32-bit uid/gid, nanosecond mtime, 64-bit
 *   size), full st_mode (setuid, setgid, sticky), rdev of devices (overlay
 *   whiteouts are char 0/0), nlink (hard links share one inode);
 * - xattrs inline after their inode, names under user., trusted., security.
 *   and the two POSIX ACL names; values up to 65535 bytes (the on-disk
 *   limit: one byte short of Linux's 64 KiB), at most 256 KiB per inode;
 * - file, directory and symlink contents as whole blocks with the tail
 *   (size % 4096) inlined after the inode when it fits its block
 *   (FLAT_INLINE), else in a block of its own (FLAT_PLAIN);
 * - directories as dirent blocks sorted by memcmp of the names (shorter
 *   first on a common prefix), the order the kernel's lookup bisects;
 * - a "sparse" file: i_size N and no data at all (chunk-based, every chunk a
 *   hole; reads give zeros), for overlay metacopy entries whose bytes an
 *   overlay data-only lower serves: the caller sets trusted.overlay.metacopy
 *   and trusted.overlay.redirect itself.
 *
 * Layout: the inodes depth first in name order (as find and tar walk a
 * tree), from block 0 on (after the superblock at 1024), each metadata
 * block followed by the data blocks of the inodes it holds: reading the
 * tree in that order reads the image front to back. The superblock carries a crc32c (EROFS_FEATURE_COMPAT_SB_CHKSUM).
 * Limits, checked with errors that name the entry: names 1-255 bytes of
 * anything but '/' and NUL (not "." or ".."), symlink targets 1-4095 bytes,
 * 2^32-2 inodes, 2^32-1 blocks (16 TiB) per image. */
#ifndef OVSNAP_EROFS_H
#define OVSNAP_EROFS_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define OV_EROFS_BLOCK 4096u
#define OV_EROFS_NAME_MAX 255u
#define OV_EROFS_XATTR_VALUE_MAX 65535u
#define OV_EROFS_LINK_MAX 4095u
/* A file of at most this many bytes reaches the verify callback in one call. */
#define OV_EROFS_VERIFY_WHOLE (8u << 20)

struct ov_erofs;      /* a writer: one tree, then one image */
struct ov_erofs_node; /* an inode of that tree; owned by the writer */

enum ov_erofs_data_kind
{
  OV_EROFS_DATA_NONE = 0, /* an empty file */
  OV_EROFS_DATA_MEM,      /* bytes in memory (copied by ov_erofs_add) */
  OV_EROFS_DATA_FD,       /* len bytes at off of fd, read by ov_erofs_write */
  OV_EROFS_DATA_SPARSE,   /* i_size len, no data (metacopy entries) */
  OV_EROFS_DATA_AT,       /* len bytes at off of file `path` beneath directory fd, opened
                             (O_NOFOLLOW) by ov_erofs_write while it reads it: a tree of more
                             files than the process may hold open */
};

/* The content of a regular file. */
struct ov_erofs_data
{
  enum ov_erofs_data_kind kind;
  const void *mem; /* MEM */
  int fd;           /* FD, AT (a directory): stays the caller's, open until the write;
                     * FD may be -1 until ov_erofs_set_source */
  const char *path; /* AT: relative to fd (copied) */
  uint64_t off;     /* FD, AT */
  uint64_t len;     /* MEM, FD, AT, SPARSE: the file's size */
  void *tag;        /* handed to the verify callback (FD, AT and MEM) */
};

struct ov_erofs_xattr
{
  const char *name; /* NUL-terminated, with its namespace: "user.x" */
  const void *value;
  size_t len;
};

/* An entry's metadata; everything it points to is copied. */
struct ov_erofs_meta
{
  uint32_t mode; /* st_mode: the type and all 12 permission bits */
  uint32_t uid, gid;
  int64_t mtime;       /* seconds, may be negative */
  uint32_t mtime_nsec; /* < 1e9 */
  uint32_t rdev_major, rdev_minor; /* S_IFCHR, S_IFBLK (major < 4096, minor < 2^20) */
  const struct ov_erofs_xattr *xattrs;
  size_t nxattrs;
  const char *link; /* S_IFLNK: the target, linklen bytes */
  size_t linklen;
  struct ov_erofs_data data; /* S_IFREG */
};

/* Called, when set, with every byte of every FD, AT and MEM file before the
 * bytes go into the image, in order: (off, buf, n) pieces of the file of
 * `total` bytes, the whole file at once if it has at most
 * OV_EROFS_VERIFY_WHOLE bytes. Returns 0, or -1 with *err set to fail the
 * write. */
typedef int (*ov_erofs_verify_fn) (void *ctx, void *tag, uint64_t off, const void *buf, size_t n,
                                   uint64_t total, ov_error_t *err);

struct ov_erofs *ov_erofs_new (void);
void ov_erofs_free (struct ov_erofs *w);
void ov_erofs_set_verify (struct ov_erofs *w, ov_erofs_verify_fn fn, void *ctx);

/* The root directory: mode 0755, owner 0:0, mtime 0 until ov_erofs_set_root. */
struct ov_erofs_node *ov_erofs_root (struct ov_erofs *w);
int ov_erofs_set_root (struct ov_erofs *w, const struct ov_erofs_meta *m, ov_error_t *err);

/* A new inode named `name` (namelen bytes) in directory `parent`. Returns
 * NULL with *err set when an argument breaks a limit. A name already in the
 * directory is reported by ov_erofs_write (no lookup here, to stay O(1)). */
struct ov_erofs_node *ov_erofs_add (struct ov_erofs *w, struct ov_erofs_node *parent, const char *name,
                                    size_t namelen, const struct ov_erofs_meta *m, ov_error_t *err);

/* Where an FD file's bytes come from, when that is known only after it was
 * added (a caller that fetches a batch of contents first). */
void ov_erofs_set_source (struct ov_erofs_node *node, int fd, uint64_t off, void *tag);

/* FD sources are files nobody writes or truncates while the image is
 * written (the store's packs and objects): the writer maps each once and
 * writes their bytes from the mapping, with no copy of its own. */
void ov_erofs_map_sources (struct ov_erofs *w);

/* A hard link: another name for `target` (not a directory). */
int ov_erofs_link (struct ov_erofs *w, struct ov_erofs_node *parent, const char *name, size_t namelen,
                   struct ov_erofs_node *target, ov_error_t *err);

/* Lays out the tree and writes the image to out_fd from its current
 * position on (a file or a pipe; nothing is seeked). Once per writer. */
int ov_erofs_write (struct ov_erofs *w, int out_fd, ov_error_t *err);

/* After a successful write: the image's size in bytes and inode count. */
uint64_t ov_erofs_image_size (const struct ov_erofs *w);
uint64_t ov_erofs_inode_count (const struct ov_erofs *w);

#endif
