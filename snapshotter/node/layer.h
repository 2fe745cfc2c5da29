/* The node cache of lowers. A snapshot tree is written once per node as
 * an EROFS image (image.h), read-only, and shared by every attachment of it.
 * A layer is keyed by its root tree id: cache/layers/<tree>/image, with
 * info (base, depth, boot, whether it has metacopy entries) and, once a
 * background syncfs made it durable, synced. A full layer holds the whole
 * tree; a delta layer holds only what changed since a base layer (new and
 * changed entries, whiteouts for deletions) and is stacked above it, so
 * the next snapshot costs work proportional to the change. Stacks are
 * bounded: past OV_LAYER_MAX_DEPTH deltas the newest tree's layer is
 * replaced by a full image in the background (the stack below it is then
 * no longer needed by it); past OV_LAYER_HARD_DEPTH one is built on the
 * spot. Eviction renames the layer into the node's trash (trash.h), which
 * gc reaps in the background: a mount of it keeps working. */
#ifndef OVSNAP_LAYER_H
#define OVSNAP_LAYER_H

#include "snapshot.h"
#include "node.h"

#define OV_LAYER_MAX_DEPTH 8
#define OV_LAYER_HARD_DEPTH 24

struct ov_layers
{
  char **images; /* absolute paths of the layers' images, top first */
  struct ov_oid *trees;
  size_t n;
  bool deep; /* worth flattening (ov_layers_flatten) off the caller's path */
  bool metacopy; /* some image redirects into the store's loose objects */
  /* a layer this call built, not yet durable (a new layer is usable at
   * once; an earlier boot's unsynced one is checked, layer.c: boot_id) */
  char *unsynced;
  int rootfd;
};

/* Frees l and starts making a layer it built durable, in the background:
 * free it after the caller's own small fsyncs (attachment state), which
 * would otherwise wait behind the image's writeback. */
void ov_layers_free (struct ov_layers *l);
/* Make sure the snapshot's tree is cached; base (may be NULL) names a tree
 * that may be cached already and close to it (e.g. the one being
 * replaced). */
int ov_layers_get (struct ov_node *n, const struct ov_snapshot *snap, const struct ov_oid *base,
                   struct ov_layers *out, ov_error_t *err);
/* The stack mounted as overlay lowers (image.h: ov_image_mount): *nfds
 * detached mount fds, top first, for the caller to close. */
int ov_layers_mount (struct ov_node *n, const struct ov_layers *l, int **fds, size_t *nfds,
                     ov_error_t *err);
/* The stack mounted read-only at a host directory, for a client that
 * mounts lowers by path (containerd): <root>/cache/mnt/<tree>, one mount
 * (a read-only overlay when the stack has several images or metacopy
 * entries), made once per boot and detached when the layer is evicted.
 * *dir malloc'd. */
int ov_layers_mount_dir (struct ov_node *n, const struct ov_layers *l, char **dir,
                         ov_error_t *err);
/* Replace a deep stack's top layer by a full image of its tree. */
int ov_layers_flatten (struct ov_node *n, const struct ov_snapshot *snap, ov_error_t *err);
/* Layers neither in `keep` (held by attachments) nor below one of them:
 * each renamed into the trash, their host mounts (ov_layers_mount_dir)
 * detached. The caller starts the reaper. */
int ov_layers_evict (struct ov_node *n, const struct ov_oid *keep, size_t nkeep, uint64_t *evicted,
                     ov_error_t *err);

#endif
