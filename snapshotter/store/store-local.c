/* The local directory backend: the embedded default store. Keys are paths
 * below the root. Immutable objects are written as O_TMPFILE files and
 * published with linkat, so a crash leaves no partial object under a key;
 * both are durable when the call returns (fsync of the file, then of its
 * directory); mutable records are replaced with write-temp, fsync,
 * rename, fsync-dir. */
#include "store.h"
#include "dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

struct local
{
  int rootfd;
};

static int
mkdir_parents (int rootfd, const char *key)
{
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s", key);
  for (char *p = strchr (path, '/'); p; p = strchr (p + 1, '/'))
    {
      *p = '\0';
      if (mkdirat (rootfd, path, 0700) < 0 && errno != EEXIST)
        return -1;
      *p = '/';
    }
  return 0;
}

static int
local_open_read (void *be, const char *key)
{
  struct local *l = be;
  return openat (l->rootfd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
}

static int
local_create_tmp (void *be, const char *dir UNUSED)
{
  struct local *l = be;
  return openat (l->rootfd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

static int fsync_dir_of (int rootfd, const char *key);

/* Durable on return: the bytes before the name exists, the name after.
 * So only what a commit wrote is flushed, not everything dirty on the
 * filesystem (a container's upper dir, say), as syncfs would. */
static int
local_link_tmp (void *be, int fd, const char *key)
{
  struct local *l = be;
  if (fsync (fd) < 0)
    return -1;
  for (int attempt = 0; attempt < 2; attempt++)
    {
      int r = linkat (fd, "", l->rootfd, key, AT_EMPTY_PATH);
      if (r < 0 && (errno == EPERM || errno == EACCES))
        {
          char proc[64];
          snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
          r = linkat (AT_FDCWD, proc, l->rootfd, key, AT_SYMLINK_FOLLOW);
        }
      if (r == 0)
        return fsync_dir_of (l->rootfd, key);
      if (errno != ENOENT || attempt)
        return r;
      if (mkdir_parents (l->rootfd, key) < 0)
        return -1;
    }
  return -1;
}

static int
fsync_dir_of (int rootfd, const char *key)
{
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s", key);
  char *slash = strrchr (dir, '/');
  if (slash)
    *slash = '\0';
  else
    strcpy (dir, ".");
  cleanup_close int dfd = openat (rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync (dfd) < 0)
    return -1;
  return 0;
}

static int
local_put_replace (void *be, const char *key, const void *p, size_t n)
{
  struct local *l = be;
  char tmp[PATH_MAX];
  const char *base = strrchr (key, '/');
  snprintf (tmp, sizeof tmp, "tmp/%s.%d.%lld", base ? base + 1 : key, getpid (),
            (long long) now_ns ());
  cleanup_close int fd = openat (l->rootfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  if (write_all (fd, p, n) < 0 || fsync (fd) < 0)
    goto fail;
  if (renameat (l->rootfd, tmp, l->rootfd, key) < 0)
    {
      if (errno != ENOENT || mkdir_parents (l->rootfd, key) < 0
          || renameat (l->rootfd, tmp, l->rootfd, key) < 0)
        goto fail;
    }
  return fsync_dir_of (l->rootfd, key);
fail:;
  int saved = errno;
  unlinkat (l->rootfd, tmp, 0);
  errno = saved;
  return -1;
}

static int
local_remove (void *be, const char *key)
{
  struct local *l = be;
  return unlinkat (l->rootfd, key, 0);
}

struct listing
{
  int rootfd;
  const char *dir;
  int depth;
  int (*cb) (const char *key, uint64_t size, void *ctx);
  void *ctx;
};

static int list_dir (int rootfd, const char *dir, int depth,
                     int (*cb) (const char *key, uint64_t size, void *ctx), void *ctx);

static int
list_entry (int dfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct listing *l = ctx;
  if (name[0] == '.')
    return 0;
  char key[PATH_MAX];
  snprintf (key, sizeof key, "%s/%s", l->dir, name);
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  if (S_ISDIR (st.st_mode) && l->depth > 0)
    return list_dir (l->rootfd, key, l->depth - 1, l->cb, l->ctx);
  if (S_ISREG (st.st_mode))
    return l->cb (key, st.st_size, l->ctx);
  return 0;
}

static int
list_dir (int rootfd, const char *dir, int depth,
          int (*cb) (const char *key, uint64_t size, void *ctx), void *ctx)
{
  struct listing l = { rootfd, dir, depth, cb, ctx };
  return ov_dir_each_at (rootfd, dir, true, list_entry, &l);
}

static int
local_list (void *be, const char *dir, int (*cb) (const char *key, uint64_t size, void *ctx),
            void *ctx)
{
  struct local *l = be;
  return list_dir (l->rootfd, dir, 1, cb, ctx);
}

static int
local_lock (void *be, const char *name, bool exclusive)
{
  struct local *l = be;
  char path[PATH_MAX];
  snprintf (path, sizeof path, "locks/%s", name);
  int fd = openat (l->rootfd, path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  while (flock (fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
    if (errno != EINTR)
      {
        close (fd);
        return -1;
      }
  return fd;
}

static int
local_fd (void *be)
{
  return ((struct local *) be)->rootfd;
}

static void
local_close (void *be)
{
  struct local *l = be;
  close (l->rootfd);
  free (l);
}

static const struct ov_backend local_backend = {
  .name = "local",
  .open_read = local_open_read,
  .create_tmp = local_create_tmp,
  .link_tmp = local_link_tmp,
  .put_replace = local_put_replace,
  .remove = local_remove,
  .list = local_list,
  .lock = local_lock,
  .local_fd = local_fd,
  .close = local_close,
};

int
ov_backend_local_open (struct ov_store *s, const char *root, bool create, ov_error_t *err)
{
  static const char *const dirs[] = { "objects", "packs", "snapshots", "volumes", "locks", "tmp" };
  if (create && mkdir (root, 0700) < 0 && errno != EEXIST)
    return ov_error (err, errno, "create store %s", root);
  int fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "open store %s", root);
  for (size_t i = 0; i < ARRAY_SIZE (dirs); i++)
    if (mkdirat (fd, dirs[i], 0700) < 0 && errno != EEXIST)
      {
        int e = errno;
        close (fd);
        return ov_error (err, e, "create %s/%s", root, dirs[i]);
      }
  struct local *l = xcalloc (1, sizeof *l);
  l->rootfd = fd;
  s->be = &local_backend;
  s->be_data = l;
  return 0;
}
