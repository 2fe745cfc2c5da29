/* Store maintenance: gc removes what no volume references; fsck verifies
 * every record and object and reports problems without changing anything. */
#ifndef OVSNAP_MAINT_H
#define OVSNAP_MAINT_H

#include "node.h"

struct ov_gc_result
{
  uint64_t objects_removed, trees_removed, snapshots_removed, bytes_freed;
  uint64_t objects_kept;
  uint64_t layers_evicted; /* node cache */
};
/* The store's garbage, then the node's cache layers no attachment of this
 * node uses (into the trash), then starts a detached reaper of the trash:
 * the space of evicted layers comes back a moment after gc returns.
 * Takes the store lock exclusively: no writer runs while gc sweeps. */
int ov_gc (struct ov_node *node, struct ov_gc_result *res, ov_error_t *err);

struct ov_fsck_result
{
  uint64_t volumes, snapshots, trees, objects;
  uint64_t containerd_snapshots; /* committed snapshots of ovsnap-snapshotter daemons */
  uint64_t garbage_objects, garbage_bytes; /* unreferenced: gc removes them */
  uint64_t problems;
};
/* problem() is called once per problem found, naming the file. */
int ov_fsck (struct ov_store *s, void (*problem) (const char *msg, void *ctx), void *ctx,
             struct ov_fsck_result *res, ov_error_t *err);


#endif
