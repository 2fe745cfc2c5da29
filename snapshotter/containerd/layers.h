/* Where committed snapshots are kept: the one place to switch when they
 * become ovsnap trees in the store (issue 13). Today's implementation
 * (layers-dir.c) keeps a committed snapshot where its active upper was:
 * the plain directory <root>/s/<id>/fs, which becomes a lower in place.
 *
 * The snapshotter (snapshots.c) owns the ids, the metadata and the
 * directories of active snapshots and views; it asks the layers for what
 * only they know. */
#ifndef OVSNAP_LAYERS_H
#define OVSNAP_LAYERS_H

#include "error.h"

#include <stdint.h>

struct ov_usage
{
  int64_t size;   /* bytes of disk (blocks), each inode once */
  int64_t inodes;
};

struct ov_layers;

struct ov_layers_ops
{
  /* Active snapshot id, whose upper directory is upper (absolute), is
   * being committed: take its content and measure it. After this the
   * upper is read-only: it may stay in place (dirs) or be dropped once
   * the content is stored (trees). */
  int (*commit) (struct ov_layers *l, uint64_t id, const char *upper, struct ov_usage *u,
                 ov_error_t *err);
  /* The directory to use as a lower for committed snapshot id, absolute
   * and short (128 of them must fit a page of mount options). malloc'd. */
  char *(*lower) (struct ov_layers *l, uint64_t id);
  /* Committed snapshot id is gone for good. */
  int (*remove) (struct ov_layers *l, uint64_t id, ov_error_t *err);
  void (*close) (struct ov_layers *l);
};

struct ov_layers
{
  const struct ov_layers_ops *ops;
  char *root; /* the snapshotter's root */
};

/* Plain overlay directories below root. */
struct ov_layers *ov_layers_dir_new (const char *root);

/* du of a tree (no symlink followed, each inode once), as containerd's
 * fs.DiskUsage counts it: st_blocks * 512 and the number of inodes. */
int ov_disk_usage (const char *path, struct ov_usage *u, ov_error_t *err);

#endif
