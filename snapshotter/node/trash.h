/* The node's trash (<root>/trash): deleting a big tree is slow on this
 * disk, and slows file creation for minutes after (unlinking one 89 MiB
 * image took 118 ms), so nothing is deleted on an operation's path: it is
 * renamed here, and reaped later, by a detached process. The one place
 * that names trash entries. */
#ifndef OVSNAP_TRASH_H
#define OVSNAP_TRASH_H

#include "node.h"

/* Moves name (beneath dirfd) into the trash as KIND.NAME.PID.TIME; a
 * missing name is fine. -1 with errno. */
int ov_trash (struct ov_node *n, int dirfd, const char *name, const char *kind);
/* Removes what the trash holds now, in a detached process: the caller
 * does not wait for the unlinks. The reaper drops the store lock it
 * inherits, so no command waits for it either; reapers take turns (node
 * lock "trash"); one killed part-way leaves the rest to the next (gc
 * starts one every time, with every entry it finds). */
void ov_trash_reap_later (struct ov_node *n);

#endif
