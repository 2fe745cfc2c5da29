/* Committed containerd snapshots as ovsnap trees: the engine side of
 * layers-tree.c (kept apart because node/layer.h and layers.h both name a
 * struct ov_layers). A committed snapshot is an ovsnap snapshot record
 * (volume "containerd") whose root is the full snapshot: its parent's tree
 * with the layer's upper applied, as a volume commit applies an upper.
 *
 * Store-level named records (shared by every node of the store):
 *   containerd/roots/<instance>/<id>  "<snapshot hex>\n": a committed snapshot
 *                                     of the daemon <instance>; gc marks from
 *                                     them (maint/reach.c), fsck checks them
 *   containerd/refs/<chain id>        "<snapshot hex>\n": the layer a chain id
 *                                     names (the remote-snapshotter shortcut);
 *                                     not a root: gc drops the stale ones */
#ifndef OVSNAP_CTREE_H
#define OVSNAP_CTREE_H

#include "error.h"
#include "hash.h"

#include <stdbool.h>
#include <stdint.h>

#define OV_CTREE_INSTANCE_MAX 32

struct ov_node;
struct ov_ctree
{
  struct ov_node *node;
  char instance[OV_CTREE_INSTANCE_MAX + 1];
};

struct ov_ctree_info
{
  struct ov_oid snap, tree;
  bool has_parent;
  struct ov_oid parent; /* the parent's snapshot */
  uint64_t bytes, inodes; /* the whole snapshot's totals */
};

/* node_root: the node (cache, trash, locks); store_url NULL: the local
 * store sharing node_root. instance: [0-9a-f]{1,32}. */
int ov_ctree_open (struct ov_ctree **out, const char *node_root, const char *store_url,
                   const char *instance, ov_error_t *err);
void ov_ctree_close (struct ov_ctree *c);

/* Captures the overlay upper (absolute path; read in the sandbox) onto the
 * parent snapshot (NULL: none) into a new snapshot record. */
int ov_ctree_capture (struct ov_ctree *c, const struct ov_oid *parent, const char *upper,
                      struct ov_oid *out, ov_error_t *err);
int ov_ctree_info (struct ov_ctree *c, const struct ov_oid *snap, struct ov_ctree_info *out,
                   ov_error_t *err);
/* The node cache's lower dirs of snap, top first (malloc'd array of
 * malloc'd strings): one, the host mount of its image stack (a delta on
 * its parent's layer when that is cached). */
int ov_ctree_lowers (struct ov_ctree *c, const struct ov_oid *snap, char ***dirs, size_t *n,
                     ov_error_t *err);

int ov_ctree_root_put (struct ov_ctree *c, uint64_t id, const struct ov_oid *snap, ov_error_t *err);
int ov_ctree_root_drop (struct ov_ctree *c, uint64_t id, ov_error_t *err);
/* cb for every root record of this instance. */
int ov_ctree_roots (struct ov_ctree *c, int (*cb) (uint64_t id, void *ctx), void *ctx,
                    ov_error_t *err);

/* A chain id as containerd writes it ("sha256:" and 64 hex digits, or
 * another algorithm: [a-z0-9]+:[a-zA-Z0-9=_-]{1,128}). */
bool ov_ctree_chainid_ok (const char *s);
int ov_ctree_ref_put (struct ov_ctree *c, const char *chainid, const struct ov_oid *snap,
                      ov_error_t *err);
/* 1 and *snap if the store holds a loadable layer under chainid, 0 if not. */
int ov_ctree_ref_get (struct ov_ctree *c, const char *chainid, struct ov_oid *snap,
                      ov_error_t *err);

/* "<hex>\n" records, shared with the CLI. */
int ov_ctree_parse_oid (const uint8_t *p, size_t n, struct ov_oid *out);

#endif
