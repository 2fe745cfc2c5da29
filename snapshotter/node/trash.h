/* The node's trash (<root>/trash): deleting a big tree is slow on this
 * disk, and slows file creation for minutes after, so nothing is deleted
 * on an operation's path: it is renamed here, and reaped later (gc). The
 * one place that names trash entries. */
#ifndef OVSNAP_TRASH_H
#define OVSNAP_TRASH_H

#include "node.h"

/* Moves name (beneath dirfd) into the trash as KIND.NAME.PID.TIME; a
 * missing name is fine. -1 with errno. */
int ov_trash (struct ov_node *n, int dirfd, const char *name, const char *kind);
/* Removes everything in the trash (no symlink followed). */
int ov_trash_reap (struct ov_node *n, uint64_t *removed, ov_error_t *err);

#endif
