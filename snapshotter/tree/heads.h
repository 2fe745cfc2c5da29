/* Volume heads on a store without compare-and-swap (S3; ov_store_has_revs):
 * no writer replaces a head. Each update publishes an immutable revision
 * that records the snapshot it made and the head it was computed from
 * (its base); the head is the fold of the revisions in key order, which
 * is clock order with the node as tie-break:
 *   - a revision whose base is the fold so far moves it to its snapshot
 *     (the common, sequential case: nothing is read);
 *   - one based on an older head (it raced) has its edit replayed onto
 *     the fold (ov_replay: per path, last writer wins);
 *   - a revision without a base (a new volume) and an empty one (a
 *     deleted volume) replace the fold; an edit of a deleted volume is
 *     dropped.
 * Every node computes the same fold, and the replayed snapshots are
 * content addressed, so they are identical wherever they are computed;
 * a node keeps the replays it did in a memo (the backend's node cache).
 * A writer that published needs to do nothing more: a commit is never
 * lost because its writer died, or finished before another.
 *
 * Checkpoints bound what a reader lists: once CHECKPOINT_EVERY revisions
 * after the last checkpoint are settled (the backend: no revision can
 * appear before them any more), a writer publishes a checkpoint, a
 * revision naming the last settled one and the fold up to it; a fold
 * starts at the checkpoint reaching furthest. Revisions a settled
 * checkpoint covers are dropped. Called by tree/volume.c only. */
#ifndef OVSNAP_HEADS_H
#define OVSNAP_HEADS_H

#include "volume.h"

/* The fold: OV_ENOTFOUND if the volume was never made, or deleted. */
int ov_heads_load (struct ov_store *s, const char *name, struct ov_volume *out, ov_error_t *err);
/* A revision for v->head, computed from base (NULL: a new volume). */
int ov_heads_publish (struct ov_store *s, const struct ov_volume *v, const struct ov_oid *base,
                      ov_error_t *err);
/* After a publish: checkpoints and drops what has settled (best effort);
 * fails only if the volume was deleted meanwhile (the edit is dropped). */
int ov_heads_tidy (struct ov_store *s, const char *name, ov_error_t *err);
/* Did a revision of the volume publish snapshot id? */
int ov_heads_published (struct ov_store *s, const char *name, const struct ov_oid *id, bool *has,
                        ov_error_t *err);
/* Every snapshot a fold may read (revisions' snapshots and bases), for gc. */
int ov_heads_each_snapshot (struct ov_store *s, const char *name,
                            int (*cb) (const struct ov_oid *id, void *ctx), void *ctx,
                            ov_error_t *err);

#endif
