/* Snapshot records: immutable, content-addressed (the id is the XXH3-128 of
 * the record), each naming its volume, its parent and its root directory.
 *   "OVSNSNAP" u32 version=1 | u16 len, volume | u8 has_parent, oid[16] u8 variant parent
 *   i64 time_ns | u64 next_link_id | u32 len, message | root entry (unnamed dir)
 *   u64 xxh3-64 of everything before */
#ifndef OVSNAP_SNAPSHOT_H
#define OVSNAP_SNAPSHOT_H

#include "store.h"
#include "tree.h"

#define OV_SNAPSHOT_VERSION 1
#define OV_MESSAGE_MAX 4096

struct ov_snapshot
{
  struct ov_oid id;
  char *volume;
  bool has_parent;
  struct ov_oid parent;
  int64_t time_ns;
  uint64_t next_link_id; /* first free hardlink group id */
  char *message;
  struct ov_entry root; /* directory: metadata, tree id, totals */
};

void snapshot_free (struct ov_snapshot *s);
void snapshot_encode (const struct ov_snapshot *s, struct ov_buf *out);
int snapshot_decode (const uint8_t *p, size_t n, struct ov_snapshot *s, const char *what,
                     ov_error_t *err);

int ov_snapshot_load (struct ov_store *st, const struct ov_oid *id, struct ov_snapshot *out,
                      ov_error_t *err);
/* Writes the record; sets s->id. */
int ov_snapshot_store (struct ov_store *st, struct ov_snapshot *s, ov_error_t *err);

/* Files (non-directories) and directories below the root. */
uint64_t snapshot_inodes (const struct ov_snapshot *s);

#endif
