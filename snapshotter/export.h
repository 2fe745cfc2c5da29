/* Export: write a snapshot entry (a file or a whole tree) out to a local
 * directory with exact metadata, verifying every object's hash on the way.
 * Files are copied on a thread pool; hardlink groups are linked again;
 * directory times are set after their contents. */
#ifndef OVSNAP_EXPORT_H
#define OVSNAP_EXPORT_H

#include "changeset.h"
#include "progress.h"

enum
{
  OV_EXPORT_FORCE = 1, /* replace existing files */
  OV_EXPORT_MERGE = 2, /* the target directory may exist already */
};

/* Creates `name` in dirfd as a copy of e. */
int ov_export (struct ov_store *s, const struct ov_entry *e, int dirfd, const char *name,
               int flags, struct ov_progress *progress, ov_error_t *err);
/* Copies a regular file's content to fd, verifying its hash. */
int ov_export_content (struct ov_store *s, const struct ov_entry *e, int fd, ov_error_t *err);

#endif
