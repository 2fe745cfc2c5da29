#include "dir.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>

int
ov_dir_each (int dirfd, int (*cb) (int dirfd, const char *name, unsigned char type, void *ctx),
             void *ctx)
{
  int fd = fcntl (dirfd, F_DUPFD_CLOEXEC, 0);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (d == NULL)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      errno = e;
      return -1;
    }
  rewinddir (d); /* a duplicate shares the offset of an fd read before */
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir (d)))
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      r = cb (dirfd, de->d_name, de->d_type, ctx);
  int e = errno;
  closedir (d);
  errno = e;
  return r;
}

int
ov_dir_each_at (int dirfd, const char *path, bool missing_ok,
                int (*cb) (int dirfd, const char *name, unsigned char type, void *ctx), void *ctx)
{
  cleanup_close int fd = openat (dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return missing_ok && errno == ENOENT ? 0 : -1;
  return ov_dir_each (fd, cb, ctx);
}

static int
remove_entry (int dirfd, const char *name, unsigned char type, void *ctx UNUSED)
{
  if (type == DT_DIR || (unlinkat (dirfd, name, 0) < 0 && errno == EISDIR))
    ov_remove_tree (dirfd, name);
  return 0;
}

int
ov_remove_tree (int parent, const char *name)
{
  int r = ov_dir_each_at (parent, name, true, remove_entry, NULL);
  if (r < 0 && (errno == ENOTDIR || errno == ELOOP))
    return unlinkat (parent, name, 0) == 0 || errno == ENOENT ? 0 : -1;
  return unlinkat (parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}
