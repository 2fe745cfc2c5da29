/* The commit manifest of an attachment: for every upper-dir path captured
 * by a commit, the signature it had then (inode, ctime, mtime, size). The
 * next commit captures only paths whose signature changed, so an unchanged
 * file is neither re-read nor re-applied over a newer writer; a reload drops
 * exactly the entries committed and unchanged since. */
#ifndef OVSNAP_MANIFEST_H
#define OVSNAP_MANIFEST_H

#include "error.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct ov_sig
{
  uint64_t ino, size;
  int64_t ctime_sec, mtime_sec;
  uint32_t ctime_nsec, mtime_nsec;
  uint32_t mode;
  uint8_t opaque; /* committed as an opaque directory */
};

struct ov_manifest
{
  char **paths;
  struct ov_sig *sigs;
  size_t cap, n; /* open addressing */
};

void sig_from_stat (struct ov_sig *s, const struct stat *st);
bool sig_eq (const struct ov_sig *a, const struct ov_sig *b);

const struct ov_sig *manifest_get (const struct ov_manifest *m, const char *path);
void manifest_put (struct ov_manifest *m, const char *path, const struct ov_sig *sig);
void manifest_free (struct ov_manifest *m);
/* File I/O: a missing file is an empty manifest. */
int manifest_load (int dirfd, const char *name, struct ov_manifest *m, ov_error_t *err);
int manifest_save (int dirfd, const char *name, const struct ov_manifest *m, ov_error_t *err);
/* manifest_save in two steps: write NAME.tmp durably, then rename it over
 * NAME (or discard it). */
int manifest_prepare (int dirfd, const char *name, const struct ov_manifest *m, ov_error_t *err);
int manifest_publish (int dirfd, const char *name, ov_error_t *err);
void manifest_discard (int dirfd, const char *name);

#endif
