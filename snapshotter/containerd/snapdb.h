/* The snapshotter's metadata: one record per snapshot (key, kind, parent,
 * labels, times, usage at commit) in <root>/meta/<id>, each written with
 * write-temp, fsync, rename, fsync-dir, so a kill -9 at any point leaves
 * every record whole, old or new. Records use the engine's envelope
 * (record.h: magic, version, XXH3 checksum); a damaged one stops the
 * daemon from starting rather than losing a snapshot silently.
 *
 * Keys are the strings containerd sends ("NS/N/KEY"); they never become
 * paths. A snapshot's directory is named by its numeric id, which never
 * changes (Commit keeps the id and rewrites the record). In memory all
 * records are held in one array; the daemon is single-threaded. */
#ifndef OVSNAP_SNAPDB_H
#define OVSNAP_SNAPDB_H

#include "error.h"
#include "util.h"

/* the values of containerd.services.snapshots.v1.Kind */
enum ov_snap_kind
{
  OV_SNAP_VIEW = 1,
  OV_SNAP_ACTIVE = 2,
  OV_SNAP_COMMITTED = 3,
};

#define OV_SNAP_KEY_MAX 4096   /* bytes of a key or a name */
#define OV_SNAP_LABEL_MAX 4096 /* bytes of a label's key and value together (containerd's limit) */

struct ov_label
{
  char *key, *value;
};

struct ov_snap
{
  uint64_t id;
  enum ov_snap_kind kind;
  char *key;
  uint64_t parent;            /* the parent's id, 0 for none */
  int64_t created, updated;   /* ns since the epoch */
  int64_t size, inodes;       /* committed: measured at commit */
  size_t n_labels;
  struct ov_label *labels;    /* sorted by key; no empty value */
};

struct ov_snapdb
{
  int metafd;
  char *dir;                  /* for messages */
  struct ov_snap **snaps;
  size_t n, cap;
  uint64_t max_id;
};

const char *ov_snap_kind_name (enum ov_snap_kind k);

/* Loads every record of dir (created if missing); removes leftover temp
 * files of an interrupted write. */
int ov_snapdb_open (struct ov_snapdb *db, int rootfd, const char *root, ov_error_t *err);
void ov_snapdb_close (struct ov_snapdb *db);

struct ov_snap *ov_snapdb_find (struct ov_snapdb *db, const char *key);
struct ov_snap *ov_snapdb_get (struct ov_snapdb *db, uint64_t id);
size_t ov_snapdb_children (struct ov_snapdb *db, uint64_t id);

/* Writes s's record durably, then holds s in memory (taking ownership of
 * a new s, or replacing the held one with the same id). */
int ov_snapdb_put (struct ov_snapdb *db, struct ov_snap *s, ov_error_t *err);
/* ov_snapdb_put in two steps, for a caller that makes something else
 * durable meanwhile (on another thread): stage writes the record's temp
 * file durably (nothing in memory changes; thread-safe against the
 * others), publish renames it in place (the record exists from then on)
 * and holds s. unstage drops a staged record that is not to be published. */
int ov_snapdb_stage (struct ov_snapdb *db, const struct ov_snap *s, ov_error_t *err);
int ov_snapdb_publish (struct ov_snapdb *db, struct ov_snap *s, ov_error_t *err);
void ov_snapdb_unstage (struct ov_snapdb *db, const struct ov_snap *s);
/* Removes the record of id durably and frees its snapshot. */
int ov_snapdb_drop (struct ov_snapdb *db, uint64_t id, ov_error_t *err);

/* Encoding, exposed for the fuzz harness and the tests. */
void ov_snap_encode (const struct ov_snap *s, struct ov_buf *b);
int ov_snap_decode (const uint8_t *p, size_t n, const char *what, struct ov_snap **out,
                    ov_error_t *err);

struct ov_snap *ov_snap_dup (const struct ov_snap *s);
void ov_snap_free (struct ov_snap *s);
/* Sets key to value (an empty value removes the label). */
void ov_snap_set_label (struct ov_snap *s, const char *key, const char *value);
const char *ov_snap_label (const struct ov_snap *s, const char *key);
void ov_snap_clear_labels (struct ov_snap *s);

#endif
