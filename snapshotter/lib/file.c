#include "file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

int
ov_mkdir_parents (int dirfd, const char *path)
{
  char p[PATH_MAX];
  if (snprintf (p, sizeof p, "%s", path) >= (int) sizeof p)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  for (char *s = strchr (p, '/'); s; s = strchr (s + 1, '/'))
    {
      *s = '\0';
      if (mkdirat (dirfd, p, 0700) < 0 && errno != EEXIST)
        return -1;
      *s = '/';
    }
  return 0;
}

int
ov_fsync_dir_of (int dirfd, const char *path)
{
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s", path);
  char *slash = strrchr (dir, '/');
  if (slash)
    *slash = '\0';
  else
    strcpy (dir, ".");
  cleanup_close int dfd = openat (dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync (dfd) < 0)
    return -1;
  return 0;
}

int
ov_replace_file (int dirfd, const char *path, const char *tmpdir, const void *p, size_t n)
{
  char tmp[PATH_MAX];
  const char *base = strrchr (path, '/');
  snprintf (tmp, sizeof tmp, "%s/%s.%d.%lld", tmpdir, base ? base + 1 : path, getpid (),
            (long long) now_ns ());
  cleanup_close int fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  if (write_all (fd, p, n) < 0 || fsync (fd) < 0)
    goto fail;
  if (renameat (dirfd, tmp, dirfd, path) < 0)
    {
      if (errno != ENOENT || ov_mkdir_parents (dirfd, path) < 0
          || renameat (dirfd, tmp, dirfd, path) < 0)
        goto fail;
    }
  return ov_fsync_dir_of (dirfd, path);
fail:;
  int saved = errno;
  unlinkat (dirfd, tmp, 0);
  errno = saved;
  return -1;
}

int
ov_open_dir_with (const char *root, bool create, const char *const *dirs, size_t n,
                  const char **failed)
{
  *failed = root;
  if (create && mkdir (root, 0700) < 0 && errno != EEXIST)
    return -1;
  int fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (mkdirat (fd, dirs[i], 0700) < 0 && errno != EEXIST)
      {
        int e = errno;
        close (fd);
        *failed = dirs[i];
        errno = e;
        return -1;
      }
  return fd;
}

int
ov_read_fd (int fd, struct ov_buf *out, size_t limit)
{
  struct stat st;
  if (fstat (fd, &st) < 0)
    return -1;
  if ((uint64_t) st.st_size > limit)
    {
      errno = EFBIG;
      return -1;
    }
  buf_reserve (out, st.st_size + 1);
  for (;;)
    {
      buf_reserve (out, 4096);
      ssize_t r = read (fd, out->data + out->len, out->cap - out->len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      if (r == 0)
        return 0;
      out->len += r;
      if (out->len > limit)
        {
          errno = EFBIG;
          return -1;
        }
    }
}

int
ov_read_file_at (int dirfd, const char *path, struct ov_buf *out, size_t limit)
{
  cleanup_close int fd = openat (dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -1;
  struct stat st;
  if (fstat (fd, &st) < 0)
    return -1;
  if (!S_ISREG (st.st_mode))
    {
      errno = EINVAL;
      return -1;
    }
  return ov_read_fd (fd, out, limit);
}

int
ov_lock_at (int dirfd, const char *name, bool exclusive)
{
  char path[PATH_MAX];
  if (snprintf (path, sizeof path, "locks/%s", name) >= (int) sizeof path)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  int fd = openat (dirfd, path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  while (flock (fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
    if (errno != EINTR)
      {
        int e = errno;
        close (fd);
        errno = e;
        return -1;
      }
  return fd;
}
