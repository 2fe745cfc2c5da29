/* Snapshot trees: one immutable tree object per directory, entries sorted by
 * name, like git. A directory entry carries the id of its tree object and
 * the totals of its subtree (inodes, bytes), so edits, limits and stats
 * never read untouched subtrees.
 *
 * On-disk tree object (little endian):
 *   "OVSNTREE" u32 version=1 u32 count u64 inodes u64 bytes
 *   count x entry
 *   u64 xxh3-64 of everything before
 * entry:
 *   u16 namelen, name | u8 type | u32 mode | u32 uid | u32 gid
 *   i64 mtime_sec | u32 mtime_nsec | u64 size | u64 inodes | u64 rdev
 *   oid[16] u8 variant | u64 link_id | u32 targetlen, target
 *   u16 nxattr, nxattr x (u16 namelen, name, u32 vallen, value)
 * Decoders reject anything they do not fully understand. */
#ifndef OVSNAP_TREE_H
#define OVSNAP_TREE_H

#include "error.h"
#include "hash.h"
#include "util.h"

#include <stdbool.h>
#include <sys/stat.h>

#define OV_TREE_VERSION 1
#define OV_NAME_MAX 255
#define OV_TARGET_MAX 4095
#define OV_XATTR_VALUE_MAX 65536

enum ov_type
{
  OV_REG = 1,
  OV_DIR = 2,
  OV_LNK = 3,
  OV_FIFO = 4,
  OV_CHR = 5,
  OV_BLK = 6,
  OV_SOCK = 7,
};

struct ov_xattr
{
  char *name;
  uint8_t *value;
  uint32_t len;
};

struct ov_entry
{
  char *name;
  uint8_t type;
  uint32_t mode; /* full st_mode */
  uint32_t uid, gid;
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  uint64_t size;   /* regular: file size; symlink: target length; dir: bytes below */
  uint64_t inodes; /* dir: entries below (recursive); else 0 */
  uint64_t rdev;
  struct ov_oid oid; /* regular: content; dir: tree object */
  uint64_t link_id;  /* hardlink group within a snapshot, 0 = none */
  char *target;      /* symlink */
  struct ov_xattr *xattrs;
  uint16_t nxattrs;
};

struct ov_tree
{
  struct ov_entry *e;
  size_t n;
  size_t cap;
};

const char *ov_type_name (uint8_t type);
uint8_t ov_type_from_mode (mode_t mode);

void entry_free (struct ov_entry *e);
void entry_copy (struct ov_entry *dst, const struct ov_entry *src); /* deep */
/* Same content and metadata (names not compared). */
bool entry_same (const struct ov_entry *a, const struct ov_entry *b);
/* Same metadata (type, mode, owner, times, xattrs), whatever the content. */
bool entry_meta_same (const struct ov_entry *a, const struct ov_entry *b);
/* Inodes and bytes an entry stands for, itself included. */
uint64_t entry_inodes (const struct ov_entry *e);
uint64_t entry_bytes (const struct ov_entry *e);
void entry_add_xattr (struct ov_entry *e, const char *name, const void *val, uint32_t len);
void entry_clear_xattrs (struct ov_entry *e);
void entry_sort_xattrs (struct ov_entry *e);

void tree_free (struct ov_tree *t);
struct ov_entry *tree_add (struct ov_tree *t); /* zeroed slot at the end */
void tree_sort (struct ov_tree *t);
struct ov_entry *tree_find (const struct ov_tree *t, const char *name);
void tree_totals (const struct ov_tree *t, uint64_t *inodes, uint64_t *bytes);

/* `what` names the object in error messages. */
void tree_encode (const struct ov_tree *t, struct ov_buf *out);
int tree_decode (const uint8_t *p, size_t n, struct ov_tree *t, const char *what, ov_error_t *err);

void entry_encode (const struct ov_entry *e, struct ov_buf *out);
int entry_decode (struct ov_reader *r, struct ov_entry *e, bool named, const char *what, ov_error_t *err);

/* An entry as it lies in an encoded tree, checked as strictly as
 * entry_decode checks it but with nothing allocated: e holds the numbers
 * (no name, target or xattrs), the pointers point into the tree's bytes.
 * Encoding is canonical, so start[0..len) is exactly what entry_encode
 * writes for the decoded entry: merges copy untouched entries as bytes. */
struct ov_entry_raw
{
  struct ov_entry e;
  const uint8_t *start;
  size_t len;
  const char *name; /* not NUL-terminated */
  uint16_t name_len;
  const char *target; /* symlink, else NULL */
  uint32_t target_len;
  const uint8_t *xattrs; /* nxattrs encoded xattrs */
  uint16_t nxattrs;
};

int entry_scan (struct ov_reader *r, struct ov_entry_raw *x, bool named, const char *what,
                ov_error_t *err);
void entry_from_raw (const struct ov_entry_raw *x, struct ov_entry *e); /* deep copy */

/* Reading a tree entry by entry: tree_scan_next returns 1 with the next
 * entry, 0 at the end once trailing bytes and the header's totals are
 * checked, -1 on anything tree_decode would refuse. */
struct ov_tree_scan
{
  struct ov_reader r;
  const char *what;
  uint32_t count, left;
  uint64_t inodes, bytes, seen_inodes, seen_bytes;
  const char *prev;
  uint16_t prev_len;
};

int tree_scan_open (const uint8_t *p, size_t n, struct ov_tree_scan *ts, const char *what,
                    ov_error_t *err);
int tree_scan_next (struct ov_tree_scan *ts, struct ov_entry_raw *x, ov_error_t *err);

/* Writing a tree entry by entry into an empty buffer: tree_begin,
 * entry_encode or raw bytes per entry in name order, then tree_finish
 * with the count and totals. */
void tree_begin (struct ov_buf *out, size_t n_hint);
void tree_finish (struct ov_buf *out, uint32_t count, uint64_t inodes, uint64_t bytes);

bool name_valid (const char *name, size_t len);
/* strcmp's order for names of known length that hold no NUL */
int name_cmp (const void *a, size_t al, const void *b, size_t bl);

#endif
