/* Where committed snapshots are kept. Two implementations: layers-tree.c
 * (the default) stores a committed snapshot as an ovsnap tree in the store
 * and mounts it from the node cache; layers-dir.c (--layers dir) keeps it
 * where its active upper was, the plain directory <root>/s/<id>/fs, which
 * becomes a lower in place.
 *
 * The snapshotter (snapshots.c) owns the ids, the metadata and the
 * directories of active snapshots and views; it asks the layers for what
 * only they know. */
#ifndef OVSNAP_LAYERS_H
#define OVSNAP_LAYERS_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ov_usage
{
  int64_t size;   /* bytes of disk (blocks), each inode once */
  int64_t inodes;
};

struct ov_layers;

/* What the snapshotter makes durable during a commit, beside (on another
 * thread, so the fsyncs overlap) the writes that make the layer's content
 * durable: fn runs once the usage is known, and its failure fails the
 * commit. */
struct ov_commit_beside
{
  int (*fn) (const struct ov_usage *u, void *ctx, ov_error_t *err);
  void *ctx;
};

struct ov_layers_ops
{
  /* Active snapshot id, whose upper directory is upper (absolute), is
   * being committed: take its content and measure it. After this the
   * upper is read-only: it may stay in place (dirs) or be dropped once
   * the content is stored (trees). */
  /* parent: the committed parent's id, 0 for none. Returns 1 if the
   * content is stored elsewhere: the upper may go once the commit is
   * recorded (trees); 0 if the upper stays as the lower (dirs). */
  int (*commit) (struct ov_layers *l, uint64_t id, uint64_t parent, const char *upper,
                 const struct ov_commit_beside *beside, struct ov_usage *u, ov_error_t *err);
  /* The directory to use as a lower for committed snapshot id, absolute
   * and short (128 of them must fit a page of mount options). malloc'd. */
  char *(*lower) (struct ov_layers *l, uint64_t id);
  /* Committed snapshot id is gone for good. */
  int (*remove) (struct ov_layers *l, uint64_t id, ov_error_t *err);
  void (*close) (struct ov_layers *l);
  /* The rest may be NULL (layers-dir.c). */
  /* The whole stack of lowers for a snapshot on committed id, top first
   * (malloc'd): 1 if given, 0 if the chain's lower()s are the stack. */
  int (*lowers) (struct ov_layers *l, uint64_t id, char ***dirs, size_t *n, ov_error_t *err);
  /* True if committed id needs no s/<id> directory. */
  bool (*owns) (struct ov_layers *l, uint64_t id);
  /* Committed snapshot id (its record being written, on another thread)
   * carries chain id chainid: remember the layer under it, for other nodes
   * and namespaces. */
  void (*ref) (struct ov_layers *l, uint64_t id, const char *chainid);
  /* The remote-snapshotter shortcut: if the layer chainid names is held,
   * on parent (0: none), make it committed snapshot id (before its record
   * is written) and return 1; 0 if not held. */
  int (*shortcut) (struct ov_layers *l, uint64_t id, uint64_t parent, const char *chainid,
                   struct ov_usage *u, ov_error_t *err);
  /* Drops what interrupted commits and removes left: committed(id) says
   * which ids are committed snapshots now. */
  int (*reconcile) (struct ov_layers *l, bool (*committed) (uint64_t id, void *ctx), void *ctx,
                    ov_error_t *err);
};

struct ov_layers
{
  const struct ov_layers_ops *ops;
  char *root; /* the snapshotter's root */
};

/* Plain overlay directories below root. */
struct ov_layers *ov_layers_dir_new (const char *root);
/* ovsnap trees in a store, lowers from the node cache at node_root
 * (layers-tree.c); committed snapshots from before stay directories. */
int ov_layers_tree_new (struct ov_layers **out, const char *root, const char *node_root,
                        const char *store_url, ov_error_t *err);

/* du of a tree (no symlink followed, each inode once), as containerd's
 * fs.DiskUsage counts it: st_blocks * 512 and the number of inodes. */
int ov_disk_usage (const char *path, struct ov_usage *u, ov_error_t *err);

#endif
