/* Differences between two snapshot trees, by path. Equal subtrees (same
 * tree id and directory metadata) are skipped without being read. The
 * walk of two directories side by side is the one the node's delta images
 * use too (ov_tree_pair). */
#ifndef OVSNAP_DIFF_H
#define OVSNAP_DIFF_H

#include "changeset.h"

enum ov_diff_kind
{
  OV_DIFF_ADDED = 'A',
  OV_DIFF_MODIFIED = 'M',
  OV_DIFF_DELETED = 'D',
};

typedef int (*ov_diff_cb) (enum ov_diff_kind kind, const char *path, const struct ov_entry *a,
                           const struct ov_entry *b, void *ctx);

/* Two directories' entries side by side in name order: ov_tree_pair_next
 * gives each name once, with its entry in a and in b (NULL on the side
 * that lacks it); false at the end. */
struct ov_tree_pair
{
  struct ov_tree a, b;
  size_t i, j;
};

int ov_tree_pair_open (struct ov_store *s, const struct ov_oid *a, const struct ov_oid *b,
                       struct ov_tree_pair *p, ov_error_t *err);
bool ov_tree_pair_next (struct ov_tree_pair *p, const struct ov_entry **a, const struct ov_entry **b);
void ov_tree_pair_close (struct ov_tree_pair *p);

/* Same entry but for its hard-link group number: a renumbering alone is
 * not a change (a user sees none, an image need not change). */
bool entry_same_but_link (const struct ov_entry *a, const struct ov_entry *b);

/* Compare root entries a and b (directories). */
int ov_diff (struct ov_store *s, const struct ov_entry *a, const struct ov_entry *b, ov_diff_cb cb,
             void *ctx, ov_error_t *err);

#endif
