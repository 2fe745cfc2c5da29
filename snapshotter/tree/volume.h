/* Volumes: a name -> newest snapshot, with history through parent links.
 * The volume record is the one mutable record, replaced atomically under
 * the volume's lock. Every change to a volume goes through
 * ov_volume_update(), which serializes writers, merges onto the newest
 * snapshot, enforces the inode limit and makes the result durable before
 * the head moves: a crash leaves the volume at the old or the new head. */
#ifndef OVSNAP_VOLUME_H
#define OVSNAP_VOLUME_H

#include "snapshot.h"
#include "store.h"

#define OV_DEFAULT_MAX_INODES 500000

struct ov_volume
{
  char *name;
  int64_t created_ns;
  uint64_t max_inodes;
  struct ov_oid head;
};

void volume_free (struct ov_volume *v);
int ov_volume_create (struct ov_store *s, const char *name, uint64_t max_inodes,
                      struct ov_volume *out, ov_error_t *err);
int ov_volume_load (struct ov_store *s, const char *name, struct ov_volume *out, ov_error_t *err);
int ov_volume_delete (struct ov_store *s, const char *name, ov_error_t *err);
/* Volumes sorted by name. The callback's volume is freed after it returns. */
int ov_volume_list (struct ov_store *s, int (*cb) (const struct ov_volume *v, void *ctx),
                    void *ctx, ov_error_t *err);

/* Builds the new root from the head snapshot. Returns 0 with *root set, 1
 * for "nothing to change" (no snapshot is written), -1 on error. It may
 * advance *next_link_id when it creates hardlink groups. */
typedef int (*ov_edit_fn) (struct ov_store *s, const struct ov_snapshot *head,
                           struct ov_entry *root, uint64_t *next_link_id, void *ctx,
                           ov_error_t *err);

/* Returns 0 and fills *result (the new snapshot, or the unchanged head). */
int ov_volume_update (struct ov_store *s, const char *name, const char *message, ov_edit_fn fn,
                      void *ctx, struct ov_snapshot *result, ov_error_t *err);
/* The same; before_head (with fn's ctx) runs once the new snapshot is
 * durable and before the head moves to it: what it makes durable there
 * can tell, after a crash, whether the head got there. Its failure
 * leaves the head where it was. */
typedef int (*ov_before_head_fn) (const struct ov_snapshot *snap, void *ctx, ov_error_t *err);
int ov_volume_update_ex (struct ov_store *s, const char *name, const char *message, ov_edit_fn fn,
                         ov_before_head_fn before_head, void *ctx, struct ov_snapshot *result,
                         ov_error_t *err);
/* Is snapshot id the head of volume `name` or one of its ancestors? */
int ov_volume_has (struct ov_store *s, const char *name, const struct ov_oid *id, bool *has,
                   ov_error_t *err);

/* SNAP: "head", "head~N", or a unique hex prefix (>= 4 digits) of a
 * snapshot in the volume's history. */
int ov_volume_resolve (struct ov_store *s, const struct ov_volume *v, const char *spec,
                       struct ov_oid *out, ov_error_t *err);
/* Newest first; stop early by returning 1 from cb. */
int ov_volume_history (struct ov_store *s, const struct ov_volume *v,
                       int (*cb) (const struct ov_snapshot *snap, void *ctx), void *ctx,
                       ov_error_t *err);

#endif
