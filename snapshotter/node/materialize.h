/* The materializer: writes snapshot entries (files or whole trees) into a
 * directory with exact metadata (hardlinks only where the snapshot has
 * them: st_nlink and st_ino are part of the metadata). One engine for `get`
 * and for the node cache of overlay lower dirs.
 *
 * Small files are copied on io_uring, one ring per thread: linked openat ->
 * read -> close -> openat -> write -> close chains on direct descriptors and
 * registered buffers, bounded in flight. Large files are copied by a thread
 * pool. Every copied byte is checked against its object hash. Directory
 * metadata is set last, deepest first, so writing children does not
 * disturb parents' times. */
#ifndef OVSNAP_MATERIALIZE_H
#define OVSNAP_MATERIALIZE_H

#include "changeset.h"
#include "progress.h"

enum
{
  OV_MAT_FORCE = 1, /* replace existing files */
  OV_MAT_MERGE = 2, /* the top directory may already exist */
};

struct ov_mat;

struct ov_mat *ov_mat_new (struct ov_store *s, int flags, struct ov_progress *progress);
/* Queue e (and its subtree) to be created as `name` in dirfd; dirfd must
 * stay open until ov_mat_finish. Directories are created right away. */
int ov_mat_add (struct ov_mat *m, const struct ov_entry *e, int dirfd, const char *name,
                ov_error_t *err);
/* A directory the caller created: the materializer sets e's metadata on it
 * at the end (after its contents) and closes fd. */
void ov_mat_adopt_dir (struct ov_mat *m, int fd, const struct ov_entry *e);
int ov_mat_finish (struct ov_mat *m, ov_error_t *err);
void ov_mat_free (struct ov_mat *m);


/* One call: e as `name` in dirfd. */
int ov_materialize (struct ov_store *s, const struct ov_entry *e, int dirfd, const char *name,
                    int flags, struct ov_progress *progress, ov_error_t *err);
/* A regular file's content to fd (e.g. stdout), verifying its hash. */
int ov_export_content (struct ov_store *s, const struct ov_entry *e, int fd, ov_error_t *err);

#endif
