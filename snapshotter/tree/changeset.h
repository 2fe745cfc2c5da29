/* Changesets: what an operation wants to change in a snapshot tree, as a
 * sparse tree of changes keyed by path. Applying one rewrites only the
 * directories on the changed paths (O(changes x depth)) and merges per path,
 * last writer wins: this is the single mutation path for put, rm, cp,
 * rollback and commit. Also: loading trees and looking up paths. */
#ifndef OVSNAP_CHANGESET_H
#define OVSNAP_CHANGESET_H

#include "store.h"
#include "tree.h"

enum ov_change_op
{
  OV_CH_SET,    /* put this entry here (a dir entry brings its stored tree) */
  OV_CH_DELETE, /* remove whatever is here */
  OV_CH_DIR,    /* a directory here, merged with the base one by name */
  OV_CH_KEEP,   /* leave whatever is here (an entry unchanged since the last commit) */
};

struct ov_change
{
  char *name;
  enum ov_change_op op;
  bool opaque;         /* DIR: base contents are dropped, not merged */
  bool keep_meta;      /* DIR: keep the base directory's metadata (entry's, if
                          the base has none and entry is a directory) */
  struct ov_entry entry; /* SET: the entry; DIR: the directory's metadata */
  struct ov_change *kids;
  size_t n, cap;
};

void change_free (struct ov_change *c);
/* The child named `name` of a DIR change, or NULL (nothing is created). */
struct ov_change *change_find (struct ov_change *dir, const char *name);
/* The child named `name` of a DIR change, created (as a keep_meta DIR) if missing. */
struct ov_change *change_child (struct ov_change *dir, const char *name);
/* Walk/create DIR changes down comps[0..n-1] and return the last one's slot. */
struct ov_change *change_at (struct ov_change *root, char **comps, size_t n);

/* Ingest numbers hardlink groups from 1; a snapshot's groups start at its
 * next_link_id: shift them by offset. */
void change_renumber_links (struct ov_change *c, uint64_t offset);
/* Turn DIR changes that change nothing (kept metadata, only KEEP below)
 * into KEEP, so applying them reads and writes no trees. */
void change_prune (struct ov_change *c);
/* True if applying c changes nothing. */
bool change_is_noop (const struct ov_change *c);

/* Apply `ch` on top of `base` (NULL if nothing is there). On return *out
 * is the new entry, or *gone is true if the path ends up empty. */
int changeset_apply (struct ov_store *s, const struct ov_entry *base, struct ov_change *ch,
                     struct ov_entry *out, bool *gone, ov_error_t *err);

int tree_load (struct ov_store *s, const struct ov_oid *id, struct ov_tree *t, ov_error_t *err);
/* A remote store fetches a directory's subtrees in one parallel batch
 * before a walk descends, not one request per directory. */
int tree_prefetch_subtrees (struct ov_store *s, const struct ov_tree *t, ov_error_t *err);
/* Encodes and stores t; fills a directory entry's oid and totals. */
int tree_store (struct ov_store *s, const struct ov_tree *t, struct ov_entry *dir, ov_error_t *err);

/* Copies the entry at comps[0..n-1] below root into *out; not found -> OV_ENOTFOUND. */
int tree_lookup (struct ov_store *s, const struct ov_entry *root, char **comps, size_t n,
                 struct ov_entry *out, ov_error_t *err);

/* Metadata for a directory ovsnap has to invent (a missing parent). */
void default_dir_meta (struct ov_entry *e);

#endif
