/* Differences between two snapshot trees, by path. Equal subtrees (same
 * tree id and directory metadata) are skipped without being read. */
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

/* Compare root entries a and b (directories). */
int ov_diff (struct ov_store *s, const struct ov_entry *a, const struct ov_entry *b, ov_diff_cb cb,
             void *ctx, ov_error_t *err);

#endif
