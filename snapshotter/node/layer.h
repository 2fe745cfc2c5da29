/* The node cache of lower dirs. A snapshot tree is materialized once per
 * node, read-only, and shared by every attachment of it. A layer is keyed by
 * its root tree id: cache/layers/<tree>/tree. A full layer holds the whole
 * tree; a delta layer holds only what changed since a base layer (new and changed
 * entries, whiteouts for deletions) and is stacked above it, so
 * materializing the next snapshot costs work proportional to the change.
 * Stacks are bounded: past OV_LAYER_MAX_DEPTH deltas a flat copy of the
 * newest tree (cache/layers/<tree>/flat) is built in the background and
 * used from then on; past OV_LAYER_HARD_DEPTH one is built on the spot. */
#ifndef OVSNAP_LAYER_H
#define OVSNAP_LAYER_H

#include "snapshot.h"
#include "node.h"

#define OV_LAYER_MAX_DEPTH 8
#define OV_LAYER_HARD_DEPTH 24

struct ov_layers
{
  char **dirs; /* absolute paths, top first: overlay lowerdirs */
  struct ov_oid *trees;
  size_t n;
  bool deep; /* worth flattening (ov_layers_flatten) off the caller's path */
};

void ov_layers_free (struct ov_layers *l);
/* Make sure the snapshot's tree is cached; base (may be NULL) names a tree
 * that may be cached already and close to it (e.g. the one being
 * replaced). */
int ov_layers_get (struct ov_node *n, const struct ov_snapshot *snap, const struct ov_oid *base,
                   struct ov_layers *out, ov_error_t *err);
/* Build the flat copy of a deep stack's top tree. */
int ov_layers_flatten (struct ov_node *n, const struct ov_snapshot *snap, ov_error_t *err);
/* Layer trees not in `keep` (held by attachments): moved to the trash. */
int ov_layers_evict (struct ov_node *n, const struct ov_oid *keep, size_t nkeep, uint64_t *evicted,
                     ov_error_t *err);

#endif
