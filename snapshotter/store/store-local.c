/* The local directory backend: the embedded default store. Keys are paths
 * below the root. Immutable objects are written as O_TMPFILE files and
 * published with linkat, so a crash leaves no partial object under a key;
 * both are durable when the call returns (fsync of the file, then of its
 * directory); mutable records are replaced with write-temp, fsync,
 * rename, fsync-dir. */
#include "store.h"
#include "dir.h"
#include "file.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

struct local
{
  int rootfd;
  char *objects; /* absolute path of <root>/objects */
};

static int
local_open_read (void *be, const char *key)
{
  struct local *l = be;
  return openat (l->rootfd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
}

static ssize_t
local_read_range (void *be, const char *key, uint64_t off, void *buf, size_t n)
{
  struct local *l = be;
  cleanup_close int fd = openat (l->rootfd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -1;
  return pread_all (fd, buf, n, off);
}

static int
local_create_tmp (void *be, const char *dir UNUSED)
{
  struct local *l = be;
  return openat (l->rootfd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

/* Durable on return: the bytes before the name exists, the name after.
 * So only what a commit wrote is flushed, not everything dirty on the
 * filesystem (a container's upper dir, say), as syncfs would. */
static int
local_publish (void *be, int fd, const char *key)
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
        return ov_fsync_dir_of (l->rootfd, key);
      if (errno != ENOENT || attempt)
        return r;
      if (ov_mkdir_parents (l->rootfd, key) < 0)
        return -1;
    }
  return -1;
}

static int
local_put_replace (void *be, const char *key, const void *p, size_t n)
{
  struct local *l = be;
  return ov_replace_file (l->rootfd, key, "tmp", p, n);
}

static int
local_remove (void *be, const char *key)
{
  struct local *l = be;
  return unlinkat (l->rootfd, key, 0);
}

/* Listing by prefix: the directory part of the prefix is walked, every
 * depth below it, keeping the names of its first level that begin with
 * the rest ("objects/" lists every loose object, "packs/ab" the packs
 * whose key begins so). */
struct listing
{
  int rootfd;
  const char *dir;
  const char *name_prefix; /* first level only */
  int (*cb) (const char *key, uint64_t size, void *ctx);
  void *ctx;
};

static int list_dir (int rootfd, const char *dir, const char *name_prefix,
                     int (*cb) (const char *key, uint64_t size, void *ctx), void *ctx);

static int
list_entry (int dfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct listing *l = ctx;
  if (name[0] == '.' || strncmp (name, l->name_prefix, strlen (l->name_prefix)) != 0)
    return 0;
  char key[PATH_MAX];
  snprintf (key, sizeof key, "%s%s%s", l->dir, *l->dir ? "/" : "", name);
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  if (S_ISDIR (st.st_mode))
    return list_dir (l->rootfd, key, "", l->cb, l->ctx);
  if (S_ISREG (st.st_mode))
    return l->cb (key, st.st_size, l->ctx);
  return 0;
}

static int
list_dir (int rootfd, const char *dir, const char *name_prefix,
          int (*cb) (const char *key, uint64_t size, void *ctx), void *ctx)
{
  struct listing l = { rootfd, dir, name_prefix, cb, ctx };
  return ov_dir_each_at (rootfd, *dir ? dir : ".", true, list_entry, &l);
}

static int
local_list (void *be, const char *prefix, int (*cb) (const char *key, uint64_t size, void *ctx),
            void *ctx)
{
  struct local *l = be;
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s", prefix);
  char *slash = strrchr (dir, '/');
  const char *name_prefix = slash ? prefix + (slash - dir) + 1 : prefix;
  if (slash)
    *slash = '\0';
  else
    dir[0] = '\0';
  return list_dir (l->rootfd, dir, name_prefix, cb, ctx);
}

static int
local_lock (void *be, const char *name, bool exclusive)
{
  struct local *l = be;
  return ov_lock_at (l->rootfd, name, exclusive);
}

static void
local_close (void *be)
{
  struct local *l = be;
  close (l->rootfd);
  free (l->objects);
  free (l);
}

static char *
local_loose_dir (void *be)
{
  struct local *l = be;
  return l->objects ? xstrdup (l->objects) : NULL;
}

static const struct ov_backend local_backend = {
  .name = "local",
  .open_read = local_open_read,
  .read_range = local_read_range,
  .create_tmp = local_create_tmp,
  .publish = local_publish,
  .atomic_publish = true,
  .put_replace = local_put_replace,
  .remove = local_remove,
  .list = local_list,
  .lock = local_lock,
  .close = local_close,
  .loose_dir = local_loose_dir,
};

int
ov_backend_local_open (struct ov_store *s, const char *root, bool create, ov_error_t *err)
{
  static const char *const dirs[] = { "objects", "packs", "snapshots", "volumes", "locks", "tmp" };
  const char *failed;
  int fd = ov_open_dir_with (root, create, dirs, ARRAY_SIZE (dirs), &failed);
  if (fd < 0)
    return failed == root ? ov_error (err, errno, "open store %s", root)
                          : ov_error (err, errno, "create %s/%s", root, failed);
  struct local *l = xcalloc (1, sizeof *l);
  l->rootfd = fd;
  cleanup_free char *real = realpath (root, NULL);
  if (real)
    l->objects = xasprintf ("%s/objects", real);
  s->be = &local_backend;
  s->be_data = l;
  return 0;
}
