/* overlayfs mounts through the new mount API. A mount is built detached
 * (fsopen/fsconfig/fsmount), then moved onto its target; a reload moves
 * the new mount beneath the old one (MOVE_MOUNT_BENEATH) and then removes
 * the old one, so the path is never empty. Where the kernel lacks
 * MOVE_MOUNT_BENEATH the old mount is removed first: callers only swap
 * after checking that nothing holds the old mount. */
#ifndef OVSNAP_MOUNT_H
#define OVSNAP_MOUNT_H

#include "error.h"
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct ov_overlay
{
  char **lowers; /* top first */
  size_t nlowers;
  const char *upper;
  const char *work;
  bool readonly; /* a read-only mount (overlay needs an upper or two lowers) */
};

/* A detached overlay mount; returns its fd (close it after moving it). */
int ov_overlay_build (const struct ov_overlay *o, ov_error_t *err);
/* Attach a detached mount at path (resolved in the caller's mount namespace). */
int ov_mount_move (int mfd, const char *path, ov_error_t *err);
/* Replace whatever is mounted at path by mfd; fails with OV_EBUSY if the
 * old mount cannot be removed (the new one is then removed again). */
int ov_mount_swap (int mfd, const char *path, ov_error_t *err);
int ov_umount (const char *path, ov_error_t *err);
/* The same inside the mount namespace of process pid (a container): path
 * is resolved beneath `root` (NULL: the namespace's root) with
 * RESOLVE_IN_ROOT, never through a symlink out of it; move creates the
 * mount point if it is missing. */
int ov_mount_move_ns (pid_t pid, const char *root, const char *path, int mfd, ov_error_t *err);
int ov_mount_swap_ns (pid_t pid, const char *path, int mfd, ov_error_t *err);
int ov_umount_ns (pid_t pid, const char *root, const char *path, ov_error_t *err);

/* Is path the root of an overlay mount? */
bool ov_is_overlay_root (const char *path);

#endif
