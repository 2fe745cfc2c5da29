/* Ingest: read a local file or directory tree into the store as a
 * changeset (directories merge into what the volume has; files replace).
 * File contents are hashed and stored on a thread pool; a file that changes
 * while it is read is read again, never stored torn. */
#ifndef OVSNAP_INGEST_H
#define OVSNAP_INGEST_H

#include "changeset.h"
#include "manifest.h"
#include "progress.h"

/* The directories a walk opened (closing a few hundred takes a
 * millisecond: a caller in a hurry may do it later). */
struct ov_ingest_fds
{
  int *fd;
  size_t n;
};

void ov_ingest_fds_close (struct ov_ingest_fds *f);

struct ov_ingest_opts
{
  bool upper;                     /* an overlay upper dir: whiteouts, opaque dirs */
  const struct ov_manifest *prev; /* paths unchanged since then become KEEP */
  struct ov_manifest *next;       /* receives every path's signature */
  struct ov_ingest_fds *dirfds;   /* if set: receives the open directories */
};

/* `path` is opened relative to dirfd; a symlink given here is followed,
 * those inside a tree are stored as symlinks. On success *out is a SET
 * change (a file) or a DIR change (a tree, to merge). Hardlink groups found
 * get ids from *next_link_id. */
int ov_ingest (struct ov_store *s, int dirfd, const char *path, const struct ov_ingest_opts *opts,
               uint64_t *next_link_id, struct ov_change *out, struct ov_progress *progress,
               ov_error_t *err);

/* A regular file from a stream (stdin): mode 0644, owned by the caller, mtime now. */
int ov_ingest_stream (struct ov_store *s, int fd, struct ov_entry *out, ov_error_t *err);

/* Store one open regular file (stable read); fills oid, size and metadata.
 * `seen`, if not NULL, is an lstat of the file taken before it was opened. */
int ov_ingest_file (struct ov_store *s, int fd, const char *what, const struct stat *seen,
                    struct ov_entry *e, struct ov_put_stats *stats, ov_error_t *err);

#endif
