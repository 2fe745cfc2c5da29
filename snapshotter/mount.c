#include "mount.h"
#include "nsexec.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200
#endif

static int
set_str (int fs, const char *key, const char *val, ov_error_t *err)
{
  if (fsconfig (fs, FSCONFIG_SET_STRING, key, val, 0) < 0)
    return ov_error (err, errno, "overlay option %s=%s", key, val ? val : "");
  return 0;
}

/* lowerdir+ takes one layer per call, with no escaping of ':' or ','
 * (Linux 6.8); older kernels get the classic colon list. */
static int
set_lowers (int fs, const struct ov_overlay *o, ov_error_t *err)
{
  bool plus = true;
  for (size_t i = 0; i < o->nlowers && plus; i++)
    if (fsconfig (fs, FSCONFIG_SET_STRING, "lowerdir+", o->lowers[i], 0) < 0)
      {
        if (i == 0 && errno == EINVAL)
          plus = false;
        else
          return ov_error (err, errno, "overlay lower %s", o->lowers[i]);
      }
  if (plus)
    return 0;
  struct ov_buf b = { 0 };
  for (size_t i = 0; i < o->nlowers; i++)
    {
      if (i)
        buf_put (&b, ":", 1);
      for (const char *p = o->lowers[i]; *p; p++)
        {
          if (*p == ':' || *p == ',' || *p == '\\')
            buf_put (&b, "\\", 1);
          buf_put (&b, p, 1);
        }
    }
  buf_put (&b, "", 1);
  int r = set_str (fs, "lowerdir", (const char *) b.data, err);
  buf_free (&b);
  return r;
}

int
ov_overlay_build (const struct ov_overlay *o, ov_error_t *err)
{
  cleanup_close int fs = fsopen ("overlay", FSOPEN_CLOEXEC);
  if (fs < 0)
    return ov_error (err, errno, "fsopen overlay");
  if (set_lowers (fs, o, err) < 0)
    return -1;
  if (set_str (fs, "upperdir", o->upper, err) < 0 || set_str (fs, "workdir", o->work, err) < 0)
    return -1;
  /* index=off: an upper may be reused by the next mount after a reload;
   * no redirect_dir or metacopy: the upper must hold whole files we can diff. */
  if (set_str (fs, "index", "off", err) < 0 || set_str (fs, "redirect_dir", "off", err) < 0
      || set_str (fs, "metacopy", "off", err) < 0)
    return -1;
  if (fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return ov_error (err, errno, "create overlay");
  int mfd = fsmount (fs, FSMOUNT_CLOEXEC, o->readonly ? MOUNT_ATTR_RDONLY : 0);
  if (mfd < 0)
    return ov_error (err, errno, "fsmount overlay");
  return mfd;
}

int
ov_mount_move (int mfd, const char *path, ov_error_t *err)
{
  if (move_mount (mfd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return ov_error (err, errno, "mount on %s", path);
  return 0;
}

int
ov_mount_swap (int mfd, const char *path, ov_error_t *err)
{
  if (move_mount (mfd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) == 0)
    {
      if (umount2 (path, UMOUNT_NOFOLLOW) == 0)
        return 0;
      int e = errno;
      /* The new mount sits hidden beneath the busy one: take it away again
       * by detaching the stack and putting the old mount back is not
       * possible, so report busy and leave the stack; `umount` clears both. */
      return ov_error_set (err, e == EBUSY ? OV_EBUSY : 0, e, "remove old mount at %s", path);
    }
  if (errno != EINVAL)
    return ov_error (err, errno, "mount beneath %s", path);
  /* No MOVE_MOUNT_BENEATH: remove the old mount, then attach the new one. */
  if (umount2 (path, UMOUNT_NOFOLLOW) < 0)
    return ov_error_set (err, errno == EBUSY ? OV_EBUSY : 0, errno, "unmount %s", path);
  return ov_mount_move (mfd, path, err);
}

int
ov_umount (const char *path, ov_error_t *err)
{
  if (umount2 (path, UMOUNT_NOFOLLOW) < 0)
    return ov_error_set (err, errno == EBUSY ? OV_EBUSY : 0, errno, "unmount %s", path);
  return 0;
}

bool
ov_is_overlay_root (const char *path)
{
  struct statfs sf;
  struct stat st, parent;
  if (statfs (path, &sf) < 0 || sf.f_type != OVERLAYFS_SUPER_MAGIC || stat (path, &st) < 0)
    return false;
  cleanup_free char *up = xasprintf ("%s/..", path);
  return stat (up, &parent) == 0 && parent.st_dev != st.st_dev;
}

struct ns_op
{
  const char *root, *path;
  int mfd;
  enum
  {
    NS_MOVE,
    NS_SWAP,
    NS_UMOUNT,
  } op;
};

/* Runs in the container's mount namespace (a forked child). */
static int
ns_op_run (void *ctx, ov_error_t *err)
{
  struct ns_op *o = ctx;
  cleanup_close int rootfd = open (o->root ? o->root : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return ov_error (err, errno, "open %s", o->root ? o->root : "/");
  if (o->op == NS_MOVE)
    {
      cleanup_close int target = ov_resolve_dir_in_root (rootfd, o->path, true, err);
      if (target < 0)
        return ov_error_prefix (err, "mount point");
      if (move_mount (o->mfd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return ov_error (err, errno, "mount on %s", o->path);
      return 0;
    }
  /* swap and umount work on the last component, from its parent directory
   * (an fd on the mount itself would keep it busy) */
  cleanup_free char *parent = xstrdup (o->path);
  char *slash = strrchr (parent, '/');
  const char *name = slash ? o->path + (slash - parent) + 1 : o->path;
  if (slash)
    *slash = '\0';
  cleanup_close int pfd = ov_resolve_dir_in_root (rootfd, parent[0] ? parent : "/", false, err);
  if (pfd < 0 || fchdir (pfd) < 0)
    return pfd < 0 ? -1 : ov_error (err, errno, "enter %s", parent);
  if (o->op == NS_SWAP)
    {
      if (move_mount (o->mfd, "", AT_FDCWD, name, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) < 0)
        {
          if (errno != EINVAL)
            return ov_error (err, errno, "mount beneath %s", o->path);
          if (umount2 (name, UMOUNT_NOFOLLOW) < 0)
            return ov_error_set (err, errno == EBUSY ? OV_EBUSY : 0, errno, "unmount %s", o->path);
          if (move_mount (o->mfd, "", AT_FDCWD, name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
            return ov_error (err, errno, "mount on %s", o->path);
          return 0;
        }
    }
  if (umount2 (name, UMOUNT_NOFOLLOW) < 0)
    return ov_error_set (err, errno == EBUSY ? OV_EBUSY : 0, errno, "unmount %s", o->path);
  return 0;
}

int
ov_mount_move_ns (pid_t pid, const char *root, const char *path, int mfd, ov_error_t *err)
{
  struct ns_op o = { root, path, mfd, NS_MOVE };
  return ov_in_mntns (pid, ns_op_run, &o, err);
}

int
ov_mount_swap_ns (pid_t pid, const char *path, int mfd, ov_error_t *err)
{
  struct ns_op o = { NULL, path, mfd, NS_SWAP };
  return ov_in_mntns (pid, ns_op_run, &o, err);
}

int
ov_umount_ns (pid_t pid, const char *root, const char *path, ov_error_t *err)
{
  struct ns_op o = { root, path, -1, NS_UMOUNT };
  return ov_in_mntns (pid, ns_op_run, &o, err);
}
