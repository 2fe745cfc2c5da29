/* Extended attributes of a file being read into, or written out of, a
 * snapshot. overlayfs keeps private state in trusted.overlay.* xattrs; those
 * never enter a snapshot. */
#ifndef OVSNAP_XATTR_H
#define OVSNAP_XATTR_H

#include "tree.h"

/* Reads xattrs of fd (or, when fd < 0, of the symlink `name` in dirfd).
 * If opaque is not NULL it says whether overlayfs marked the directory
 * opaque (trusted.overlay.opaque "y"), found in the same listing. */
int xattrs_read (int fd, int dirfd, const char *name, struct ov_entry *e, bool *opaque,
                 ov_error_t *err);
/* Writes e's xattrs to fd (or to the symlink `name` in dirfd). */
int xattrs_write (int fd, int dirfd, const char *name, const struct ov_entry *e, ov_error_t *err);

#endif
