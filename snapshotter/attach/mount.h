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
  const int *lower_fds; /* instead of lowers: mount fds (lowerdir+ by FSCONFIG_SET_FD) */
  bool xino; /* lowers on other file systems: xino=on keeps one st_dev for every file */
};

/* A detached overlay mount; returns its fd (close it after moving it). */
int ov_overlay_build (const struct ov_overlay *o, ov_error_t *err);
/* Attach a detached mount at path (resolved in the caller's mount namespace). */
int ov_mount_move (int mfd, const char *path, ov_error_t *err);
int ov_umount (const char *path, ov_error_t *err);
/* The same inside the mount namespace of process pid (a container): path
 * is resolved beneath `root` (NULL: the namespace's root) with
 * RESOLVE_IN_ROOT, never through a symlink out of it; move creates the
 * mount point if it is missing. */
int ov_mount_move_ns (pid_t pid, const char *root, const char *path, int mfd, ov_error_t *err);
int ov_umount_ns (pid_t pid, const char *root, const char *path, ov_error_t *err);

/* A reload's switch, in steps that each leave a usable mount behind. Both
 * act on the top mount at path in the mount namespace of pid (0: the
 * caller's, path used as it is), and refuse (naming it) a mount there
 * whose device is not dev: someone else's mount is never touched.
 *
 * ov_mount_freeze makes that mount read-only (frozen) or writable again.
 * Freezing fails with OV_EBUSY while a file is open for writing in it; once
 * frozen, nothing can change its upper, so what a reload carries over from
 * it is exactly what the mount holds.
 *
 * ov_mount_replace puts mfd beneath it and removes it. A process that
 * took hold of the old mount after the caller looked for holders gets a
 * few milliseconds to let go; past them the old mount is detached lazily
 * and the holder keeps its frozen, read-only view of the old snapshot
 * (nothing it writes can be lost: it cannot write). Returns 1 then, 0 when
 * the old mount is gone. On an error nothing has changed at path. */
int ov_mount_freeze (pid_t pid, const char *path, dev_t dev, bool frozen, ov_error_t *err);
int ov_mount_replace (pid_t pid, const char *path, dev_t dev, int mfd, ov_error_t *err);

/* The mounts stacked at dir in the mount namespace of pid (0: ours), from
 * its mountinfo: how many, and the top one's super options (for an
 * overlay: its upperdir) and whether it is read-only. */
struct ov_mount_top
{
  unsigned count;
  bool readonly;
  char *super_options; /* NULL when nothing is mounted at dir */
};
int ov_mount_top_at (pid_t pid, const char *dir, struct ov_mount_top *out, ov_error_t *err);
void ov_mount_top_free (struct ov_mount_top *t);

/* Is path the root of an overlay mount? */
bool ov_is_overlay_root (const char *path);

#endif
