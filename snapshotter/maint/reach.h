/* Everything the volumes reference: their snapshots (whole history), trees
 * and blobs. gc keeps exactly this; fsck checks it. */
#ifndef OVSNAP_REACH_H
#define OVSNAP_REACH_H

#include "oidset.h"
#include "store.h"

struct ov_reach
{
  struct ov_oidset snapshots, trees, blobs;
  size_t volumes;
  /* containerd snapshots (containerd/roots/..., written by ovsnap-snapshotter):
   * how many, and their root trees (the node cache keeps their layers) */
  size_t ctr_roots;
  struct ov_oid *ctr_trees;
  /* fsck: called for each problem and the walk goes on; gc: NULL, and the
   * first problem stops it (never delete on a partial view). */
  void (*problem) (const char *msg, void *ctx);
  void *ctx;
  const struct ov_oidset *known_bad; /* fsck: trees already reported */
};

int ov_reach_mark (struct ov_store *s, struct ov_reach *r, ov_error_t *err);
/* gc: the trees of the node's attachments and of the cache layers they
 * stand on, and what they hold, as if a volume reached them: an image's
 * metacopy entries name loose objects that must outlive the volume's
 * history (a rollback or delete). A tree already gone is skipped. */
void ov_reach_mark_trees (struct ov_store *s, struct ov_reach *r, const struct ov_oid *trees,
                          size_t n);
/* "<snapshot hex>\n", the containerd records' body */
int ov_reach_parse_oid_line (const uint8_t *p, size_t n, struct ov_oid *out);
/* gc: drops containerd/refs/ records whose snapshot r did not mark. */
int ov_reach_drop_stale_refs (struct ov_store *s, const struct ov_reach *r, ov_error_t *err);
void ov_reach_free (struct ov_reach *r);

#endif
