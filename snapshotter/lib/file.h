/* Small files written durably: the one place that does write-temp, fsync,
 * rename, fsync-dir (the store's mutable records, a node's attachment
 * state). */
#ifndef OVSNAP_FILE_H
#define OVSNAP_FILE_H

#include "util.h"

#include <stdbool.h>

/* Creates the missing parent directories of path beneath dirfd. */
int ov_mkdir_parents (int dirfd, const char *path);
/* fsync of the directory holding path (beneath dirfd). */
int ov_fsync_dir_of (int dirfd, const char *path);
/* Atomic, durable replace of path (beneath dirfd) with p[0..n); the
 * temporary file goes in tmpdir (beneath dirfd, on the same file system).
 * Missing parents are created. -1 with errno, nothing left behind. */
int ov_replace_file (int dirfd, const char *path, const char *tmpdir, const void *p, size_t n);
/* A directory (created if missing and create) with the named folders in
 * it (always created): its fd, or -1 with errno and *failed naming the
 * path that failed. */
int ov_open_dir_with (const char *root, bool create, const char *const *dirs, size_t n,
                      const char **failed);
/* An advisory lock (flock) on dirfd/locks/NAME, created if missing, held
 * until the returned fd is closed; -1 with errno. */
int ov_lock_at (int dirfd, const char *name, bool exclusive);
/* A whole file descriptor into out (at most limit bytes, else EFBIG). */
int ov_read_fd (int fd, struct ov_buf *out, size_t limit);
/* A whole regular file beneath dirfd (no symlink followed). */
int ov_read_file_at (int dirfd, const char *path, struct ov_buf *out, size_t limit);

#endif
