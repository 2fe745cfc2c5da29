/* Attachments: a volume snapshot mounted at a directory as
 * overlay(lower = cached snapshot layers, upper, work). State lives in
 * <root>/attach/<id>/: `state` (JSON), `manifest.N` (what the last commit
 * captured from upper.N), upper.N and work.N (N grows at each reload),
 * `lock`.
 *
 * commit: capture what changed in the upper since the last commit, merge it
 * onto the newest snapshot. reload: refuse while anything holds the mount;
 * else freeze the old mount (read-only: its upper cannot change), build a
 * new upper holding only what is not committed (or changed since), mount
 * overlay(newest snapshot, new upper) beneath the old mount and remove the
 * old one. A reload that fails or is killed at any step leaves the old
 * overlay on top, writable, and the state pointing at it (or, past the
 * switch, at the new one). The CLI and the OCI hook both call these. */
#ifndef OVSNAP_ATTACH_H
#define OVSNAP_ATTACH_H

#include "snapshot.h"
#include "node.h"

struct ov_attachment
{
  char *id;
  char *volume;
  char *dir; /* absolute path of the mount point (inside the container, for one) */
  char *container; /* container id, NULL for a host directory */
  int pid;         /* container: its init process, whose mount namespace holds the mount */
  uint64_t pid_start; /* ... and that process's start time (pids get reused) */
  uint64_t dev;       /* the overlay's device number: who holds it, for reload */
  uint64_t lower_dev; /* its joined lower's (metacopy stacks: its files show it), or 0 */
  struct ov_oid snapshot; /* what the lower shows */
  struct ov_oid tree;     /* its root tree: the top cache layer */
  bool readonly;
  int64_t created_ns;
  int gen; /* upper.<gen>, work.<gen> */
  struct ov_oid *layers; /* the cache layers the live mount stands on (gc keeps them) */
  size_t nlayers;
  /* A reload under way (saved before it switches mounts): the generation,
   * snapshot, tree and device it is switching to. Whichever overlay is on
   * top at dir afterwards tells whether it got there. 0: none. */
  int next_gen;
  struct ov_oid next_snapshot, next_tree;
  uint64_t next_dev, next_lower_dev;
};

void attachment_free (struct ov_attachment *a);
void attachment_copy (struct ov_attachment *dst, const struct ov_attachment *src);

struct ov_attach_req
{
  const char *volume;
  const char *at; /* snapshot, NULL: head */
  bool readonly;
  bool create_if_missing; /* an absent volume is created empty */
  const char *dir;        /* host: mount point; container: path inside it */
  const char *container;  /* NULL: a host directory */
  int pid;                /* container init pid (host pid namespace) */
  const char *rootfs;     /* container rootfs as seen before pivot_root */
};

int ov_attach (struct ov_node *n, const struct ov_attach_req *req, struct ov_attachment *out,
               ov_error_t *err);
/* The attachment mounted at dir; OV_ENOTFOUND if none. */
int ov_attachment_find (struct ov_node *n, const char *dir, struct ov_attachment *out,
                        ov_error_t *err);
int ov_attachment_each (struct ov_node *n, int (*cb) (const struct ov_attachment *a, void *ctx),
                        void *ctx, ov_error_t *err);
/* The same, each attachment first settled from what is mounted (after a
 * killed reload or commit), unless a command holds it: what status shows.
 * Commit and reload settle their own attachment under its lock;
 * the state a killed reload leaves names the layers of both generations,
 * so gc needs no settling. */
int ov_attachment_each_settled (struct ov_node *n,
                                int (*cb) (const struct ov_attachment *a, void *ctx), void *ctx,
                                ov_error_t *err);

/* Is the attachment's container still the one that was started? */
bool ov_attachment_alive (const struct ov_attachment *a);

/* *changed is false (and *out the unchanged head) when there was nothing to commit. */
int ov_commit (struct ov_node *n, struct ov_attachment *a, const char *message,
               struct ov_snapshot *out, bool *changed, ov_error_t *err);
int ov_reload (struct ov_node *n, struct ov_attachment *a, struct ov_snapshot *out,
               ov_error_t *err);
/* rootfs: for a container still being created (before pivot_root), where
 * its mount points are; NULL otherwise. */
int ov_detach (struct ov_node *n, struct ov_attachment *a, const char *rootfs, ov_error_t *err);
/* Commit, then detach, with the mount frozen in between so that nothing
 * written after the commit is thrown away (a busy mount is left as it was,
 * writable). *out: the snapshot committed (or the head); unset when
 * read-only. */
int ov_commit_detach (struct ov_node *n, struct ov_attachment *a, const char *message,
                      struct ov_snapshot *out, bool *changed, ov_error_t *err);

struct ov_attach_status
{
  bool mounted, dirty;
  uint64_t upper_bytes, upper_entries;
};
int ov_attachment_status (struct ov_node *n, const struct ov_attachment *a,
                          struct ov_attach_status *st, ov_error_t *err);

/* Cache layers attachments use (for gc; an attachment whose state cannot
 * be read fails it with OV_ECORRUPT, naming the state). */
int ov_attachment_trees (struct ov_node *n, struct ov_oid **trees, size_t *count,
                         ov_error_t *err);

#endif
