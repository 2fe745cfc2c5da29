/* The snapshotter: containerd's snapshot model (what its builtin overlayfs
 * snapshotter and snapshots/testsuite define) over the metadata (snapdb.h),
 * the snapshot directories and the committed-snapshot storage (layers.h).
 * No gRPC here: service.c decodes the requests and calls these.
 *
 * Layout of the root (kept short: 128 lowers must fit one page of mount
 * options, and containerd shortens a long lowerdir= only by their common
 * parent directory):
 *   lock          flock: one daemon per root
 *   meta/<id>     the records
 *   s/<id>/fs     the snapshot's directory (upper of an active, the lower
 *                 of a committed one); s/<id>/work the overlay work dir
 *   trash/        directories being removed (reaper.h)
 * Errors carry gRPC codes (OV_GRPC_ERR): NotFound, AlreadyExists,
 * FailedPrecondition, InvalidArgument, and name the key and the cause. */
#ifndef OVSNAP_SNAPSHOTS_H
#define OVSNAP_SNAPSHOTS_H

#include "layers.h"
#include "reaper.h"
#include "snapdb.h"

struct ov_mount
{
  char *type, *source;
  size_t n_options;
  char *options[6];
};
void ov_mount_free (struct ov_mount *m);

struct ov_snapshotter
{
  char *root;
  int rootfd, lockfd;
  struct ov_snapdb db;
  struct ov_layers *layers;
  struct ov_reaper *reaper;
};

/* Opens (creating) the root: takes its lock, loads the metadata, removes
 * what an interrupted Prepare, Commit or Remove left (directories no record
 * owns, the trash). */
int ov_snapshotter_open (struct ov_snapshotter **out, const char *root, ov_error_t *err);
/* Where committed snapshots live: trees false: plain directories
 * (layers-dir.c); true: ovsnap trees in the store at store_url (NULL: the
 * node's local store), lowers from the node cache at node_root (NULL:
 * <root>/node). */
struct ov_sn_opts
{
  bool trees;
  const char *node_root, *store_url;
};
int ov_snapshotter_open_ex (struct ov_snapshotter **out, const char *root,
                            const struct ov_sn_opts *o, ov_error_t *err);

/* containerd's remote-snapshotter label: the chain id of the layer a Prepare unpacks */
#define OV_SNAP_REF_LABEL "containerd.io/snapshot.ref" 
void ov_snapshotter_close (struct ov_snapshotter *sn);

struct ov_label_in
{
  const char *key, *value;
};

/* Prepare (kind active) or View (kind view). */
int ov_sn_create (struct ov_snapshotter *sn, enum ov_snap_kind kind, const char *key,
                  const char *parent, const struct ov_label_in *labels, size_t n_labels,
                  struct ov_mount *m, ov_error_t *err);
int ov_sn_mounts (struct ov_snapshotter *sn, const char *key, struct ov_mount *m, ov_error_t *err);
int ov_sn_commit (struct ov_snapshotter *sn, const char *name, const char *key,
                  const struct ov_label_in *labels, size_t n_labels, ov_error_t *err);
int ov_sn_remove (struct ov_snapshotter *sn, const char *key, ov_error_t *err);
const struct ov_snap *ov_sn_stat (struct ov_snapshotter *sn, const char *key, ov_error_t *err);
/* Update labels: paths "labels" (all) and "labels.KEY"; none: all. */
const struct ov_snap *ov_sn_update (struct ov_snapshotter *sn, const char *key,
                                    const struct ov_label_in *labels, size_t n_labels,
                                    char *const *paths, size_t n_paths, ov_error_t *err);
int ov_sn_usage (struct ov_snapshotter *sn, const char *key, struct ov_usage *u, ov_error_t *err);
int ov_sn_cleanup (struct ov_snapshotter *sn, ov_error_t *err);

/* The key of a snapshot's parent ("" for none). */
const char *ov_sn_parent_key (struct ov_snapshotter *sn, const struct ov_snap *s);

/* Checks a key or name from a peer: non-empty, at most OV_SNAP_KEY_MAX bytes. */
int ov_sn_check_key (const char *what, const char *key, ov_error_t *err);

#endif
