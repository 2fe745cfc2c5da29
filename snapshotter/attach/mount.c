#include "mount.h"
#include "fault.h"
#include "nsexec.h"
#include "util.h"

#include <fcntl.h>
#include <libmount.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/mount.h>
#include <time.h>
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
  if (o->lower_fds)
    {
      for (size_t i = 0; i < o->nlowers; i++)
        if (fsconfig (fs, FSCONFIG_SET_FD, "lowerdir+", NULL, o->lower_fds[i]) < 0)
          return ov_error (err, errno, "overlay lower %zu (a mount of the node cache)", i + 1);
      return 0;
    }
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
  if (o->xino && set_str (fs, "xino", "on", err) < 0)
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

/* The top mount at a path: in the caller's namespace the path itself, in
 * a container's (a forked child that has entered it) its last component
 * below the parent directory, made the child's cwd (an fd on the mount
 * itself would keep it busy). */
struct target
{
  const char *name;  /* what umount2 and move_mount take */
  const char *shown; /* the path, for messages */
};

/* The top mount at t, checked to be the overlay with device dev. */
static int
target_open (const struct target *t, dev_t dev, ov_error_t *err)
{
  int fd = open_tree (AT_FDCWD, t->name, OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
  if (fd < 0)
    return ov_error (err, errno, "open mount %s", t->shown);
  struct stat st;
  if (fstat (fd, &st) < 0)
    {
      int e = errno;
      close (fd);
      return ov_error (err, e, "stat mount %s", t->shown);
    }
  if (st.st_dev != dev)
    {
      close (fd);
      return ov_error_set (err, OV_EGENERIC, 0,
                           "%s: the mount on top is not this attachment's overlay (device %u:%u): "
                           "something else is mounted over it",
                           t->shown, major (st.st_dev), minor (st.st_dev));
    }
  return fd;
}

static int
target_freeze (const struct target *t, dev_t dev, bool frozen, ov_error_t *err)
{
  cleanup_close int fd = target_open (t, dev, err);
  if (fd < 0)
    return -1;
  struct mount_attr attr = { 0 };
  if (frozen)
    attr.attr_set = MOUNT_ATTR_RDONLY;
  else
    attr.attr_clr = MOUNT_ATTR_RDONLY;
  if (ov_fail_err (frozen ? "reload-freeze" : "reload-thaw", err) < 0)
    return -1;
  if (syscall (SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) == 0)
    return 0;
  if (frozen && errno == EBUSY)
    return ov_error_set (err, OV_EBUSY, 0, "volume busy: a file is open for writing in %s", t->shown);
  return ov_error (err, errno, "make %s %s", t->shown, frozen ? "read-only" : "writable");
}

/* How long a holder that appeared after the holder check gets to let go. */
#define REPLACE_TRIES 20
#define REPLACE_WAIT_NS 1000000

static int
target_replace (const struct target *t, dev_t dev, int mfd, ov_error_t *err)
{
  int fd = target_open (t, dev, err);
  if (fd < 0)
    return -1;
  close (fd); /* it would hold the old mount */
  if (ov_fail_err ("reload-replace", err) < 0)
    return -1;
  if (move_mount (mfd, "", AT_FDCWD, t->name, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) < 0)
    {
      if (errno != EINVAL)
        return ov_error (err, errno, "mount beneath %s", t->shown);
      /* No MOVE_MOUNT_BENEATH (before Linux 6.5): the old mount goes first,
       * only if nothing holds it, then the new one takes its place. */
      if (umount2 (t->name, UMOUNT_NOFOLLOW) < 0)
        return ov_error_set (err, errno == EBUSY ? OV_EBUSY : 0, errno, "unmount %s", t->shown);
      if (move_mount (mfd, "", AT_FDCWD, t->name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return ov_error (err, errno, "mount on %s (the old mount is gone)", t->shown);
      return 0;
    }
  ov_fault ("reload-beneath");
  for (int i = 0; i < REPLACE_TRIES; i++)
    {
      if (umount2 (t->name, UMOUNT_NOFOLLOW) == 0)
        return 0;
      if (errno != EBUSY)
        break;
      struct timespec ts = { 0, REPLACE_WAIT_NS };
      nanosleep (&ts, NULL);
    }
  if (umount2 (t->name, UMOUNT_NOFOLLOW | MNT_DETACH) == 0)
    return 1;
  /* Cannot happen short of a kernel bug: the new mount sits hidden and
   * unused beneath the old one, which is still frozen and on top. */
  return ov_error (err, errno, "remove old mount at %s", t->shown);
}

struct ns_op
{
  const char *root, *path;
  int mfd;
  dev_t dev;
  bool frozen;
  enum
  {
    NS_MOVE,
    NS_UMOUNT,
    NS_FREEZE,
    NS_REPLACE,
  } op;
};

static int
target_op (const struct ns_op *o, const struct target *t, ov_error_t *err)
{
  switch (o->op)
    {
    case NS_UMOUNT:
      if (umount2 (t->name, UMOUNT_NOFOLLOW) < 0)
        return ov_error_set (err, errno == EBUSY ? OV_EBUSY : 0, errno, "unmount %s", t->shown);
      return 0;
    case NS_FREEZE:
      return target_freeze (t, o->dev, o->frozen, err);
    case NS_REPLACE:
      return target_replace (t, o->dev, o->mfd, err);
    case NS_MOVE:
      break;
    }
  return ov_error_set (err, OV_EGENERIC, EINVAL, "mount operation");
}

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
  cleanup_free char *parent = xstrdup (o->path);
  char *slash = strrchr (parent, '/');
  const char *name = slash ? o->path + (slash - parent) + 1 : o->path;
  if (slash)
    *slash = '\0';
  cleanup_close int pfd = ov_resolve_dir_in_root (rootfd, parent[0] ? parent : "/", false, err);
  if (pfd < 0 || fchdir (pfd) < 0)
    return pfd < 0 ? -1 : ov_error (err, errno, "enter %s", parent);
  struct target t = { name, o->path };
  return target_op (o, &t, err);
}

int
ov_mount_move_ns (pid_t pid, const char *root, const char *path, int mfd, ov_error_t *err)
{
  struct ns_op o = { .root = root, .path = path, .mfd = mfd, .op = NS_MOVE };
  return ov_in_mntns (pid, ns_op_run, &o, err);
}

int
ov_umount_ns (pid_t pid, const char *root, const char *path, ov_error_t *err)
{
  struct ns_op o = { .root = root, .path = path, .mfd = -1, .op = NS_UMOUNT };
  return ov_in_mntns (pid, ns_op_run, &o, err);
}

/* pid 0: the caller's namespace, where path is used as it is (a host
 * directory, made absolute when it was mounted); no fork, no chdir. */
static int
mount_op (pid_t pid, struct ns_op *o, ov_error_t *err)
{
  if (pid == 0)
    {
      struct target t = { o->path, o->path };
      return target_op (o, &t, err);
    }
  return ov_in_mntns (pid, ns_op_run, o, err);
}

int
ov_mount_freeze (pid_t pid, const char *path, dev_t dev, bool frozen, ov_error_t *err)
{
  struct ns_op o = { .path = path, .mfd = -1, .dev = dev, .frozen = frozen, .op = NS_FREEZE };
  return mount_op (pid, &o, err);
}

int
ov_mount_replace (pid_t pid, const char *path, dev_t dev, int mfd, ov_error_t *err)
{
  struct ns_op o = { .path = path, .mfd = mfd, .dev = dev, .op = NS_REPLACE };
  return mount_op (pid, &o, err);
}

/* From the mount table (libmount: it decodes the \ooo escapes of paths
 * with spaces or newlines): the mounts at dir, and of them the one no
 * other mount at dir stands on. */
int
ov_mount_top_at (pid_t pid, const char *dir, struct ov_mount_top *out, ov_error_t *err)
{
  memset (out, 0, sizeof *out);
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/mountinfo", pid ? pid : getpid ());
  struct libmnt_table *tb = mnt_new_table_from_file (path);
  if (tb == NULL)
    return ov_error (err, errno ? errno : EINVAL, "read %s", path);
  struct libmnt_iter *it = mnt_new_iter (MNT_ITER_FORWARD);
  struct libmnt_fs *fs, *top = NULL;
  while (mnt_table_next_fs (tb, it, &fs) == 0)
    {
      const char *target = mnt_fs_get_target (fs);
      if (target == NULL || strcmp (target, dir) != 0)
        continue;
      out->count++;
      /* on top: no other mount at dir has it for its parent */
      struct libmnt_iter *it2 = mnt_new_iter (MNT_ITER_FORWARD);
      struct libmnt_fs *other;
      bool below = false;
      while (!below && mnt_table_next_fs (tb, it2, &other) == 0)
        below = other != fs && mnt_fs_get_parent_id (other) == mnt_fs_get_id (fs)
                && mnt_fs_get_target (other) && strcmp (mnt_fs_get_target (other), dir) == 0;
      mnt_free_iter (it2);
      if (!below && top == NULL)
        top = fs;
    }
  if (top)
    {
      const char *super = mnt_fs_get_fs_options (top);
      out->super_options = xstrdup (super ? super : "");
      const char *vfs = mnt_fs_get_vfs_options (top);
      out->readonly = vfs && mnt_optstr_get_option (vfs, "ro", NULL, NULL) == 0;
    }
  mnt_free_iter (it);
  mnt_unref_table (tb);
  return 0;
}

void
ov_mount_top_free (struct ov_mount_top *t)
{
  free (t->super_options);
  memset (t, 0, sizeof *t);
}
