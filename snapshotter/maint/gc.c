#include "maint.h"
#include "dir.h"
#include "trash.h"
#include "attach.h"
#include "pack.h"
#include "layer.h"
#include "nsexec.h"
#include "reach.h"
#include "fault.h"
#include "volume.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>

struct sweep
{
  struct ov_store *s;
  const struct ov_oidset *keep;
  enum ov_kind kind;
  uint64_t removed, bytes, kept;
  ov_error_t *err;
};

static int
sweep_cb (const struct ov_oid *id, uint64_t size, void *ctx)
{
  struct sweep *w = ctx;
  if (oidset_has (w->keep, id))
    {
      w->kept++;
      return 0;
    }
  int r = ov_store_remove (w->s, w->kind, id, w->err);
  if (r < 0)
    return -1;
  if (r == 1) /* too young to go on a shared store */
    {
      w->kept++;
      return 0;
    }
  if (w->removed == 0)
    ov_fault ("gc-mid-sweep");
  w->removed++;
  w->bytes += size;
  return 0;
}

static int
sweep (struct ov_store *s, enum ov_kind kind, const struct ov_oidset *keep, uint64_t *removed,
       uint64_t *bytes, uint64_t *kept, ov_error_t *err)
{
  struct sweep w = { s, keep, kind, 0, 0, 0, err };
  int r = ov_store_each_loose (s, kind, sweep_cb, &w, err);
  *removed += w.removed;
  *bytes += w.bytes;
  if (kept)
    *kept += w.kept;
  return r < 0 ? -1 : 0;
}

static int
trash_tmp (int dirfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  ov_trash (ctx, dirfd, name, "tmp");
  return 0;
}

/* The trees the node's attachments stand on; *known false (and a
 * warning) when an attachment's state cannot be read. */
static int
attached_trees (struct ov_node *node, struct ov_oid **trees, size_t *n, bool *known,
                ov_error_t *err)
{
  *known = true;
  if (ov_attachment_trees (node, trees, n, err) == 0)
    return 0;
  if ((*err)->code != OV_ECORRUPT)
    return -1;
  fprintf (stderr, "ovsnap gc: warning: %s; no loose object removed, no cache layer evicted\n",
           (*err)->msg);
  ov_error_free (err);
  *known = false;
  return 0;
}

/* Node cache: layers no attachment uses (trees, known) nor a containerd
 * snapshot (more), and half-built layers left by a crash, go to the
 * trash; a reaper empties it off gc's path (trash.h), with whatever an
 * earlier gc killed before its reaper left there. */
static int
sweep_cache (struct ov_node *node, const struct ov_oid *trees, size_t n, bool known,
             const struct ov_oid *more, size_t nmore, struct ov_gc_result *res, ov_error_t *err)
{
  int r = 0;
  if (known)
    {
      /* containerd snapshots' mounts are containerd's: keep what they stand on */
      struct ov_oid *keep = xmalloc ((n + nmore + 1) * sizeof *keep);
      if (n)
        memcpy (keep, trees, n * sizeof *keep);
      if (nmore)
        memcpy (keep + n, more, nmore * sizeof *keep);
      ov_trace ("gc: evict layers");
      r = ov_layers_evict (node, keep, n + nmore, &res->layers_evicted, err);
      ov_trace ("gc: layers evicted");
      free (keep);
    }
  /* half-built layers a crash left */
  ov_dir_each_at (node->fd, "cache/tmp", true, trash_tmp, node);
  ov_fault ("gc-after-evict");
  ov_trash_reap_later (node);
  return r;
}

int
ov_gc (struct ov_node *node, struct ov_gc_result *res, ov_error_t *err)
{
  struct ov_store *s = node->store;
  memset (res, 0, sizeof *res);
  if (ov_store_lock (s, true, err) < 0)
    return -1;
  struct ov_oid *attached = NULL;
  size_t nattached = 0;
  bool known;
  if (attached_trees (node, &attached, &nattached, &known, err) < 0)
    return -1;
  struct ov_reach r = { 0 };
  int ret = ov_reach_mark (s, &r, err);
  if (ret < 0)
    ov_error_prefix (err, "gc: nothing removed, the store has a problem (run ovsnap fsck)");
  else
    ov_reach_mark_trees (s, &r, attached, nattached);
  /* Snapshots first, then trees, then blobs: a crash part-way leaves no
   * reachable record pointing at a removed object. */
  if (ret == 0)
    ret = sweep (s, OV_SNAPSHOT_REC, &r.snapshots, &res->snapshots_removed, &res->bytes_freed,
                 NULL, err);
  ov_fault ("gc-after-snapshots");
  /* Packs (trees and small blobs): rewritten without the garbage; the
   * new pack is durable before the old ones go. */
  struct ov_repack_result rp;
  if (ret == 0)
    ret = ov_packs_repack (s, &r.trees, &r.blobs, &rp, err);
  if (ret == 0)
    {
      res->trees_removed += rp.trees_removed;
      res->objects_removed += rp.blobs_removed;
      res->objects_kept += rp.blobs_kept;
      res->bytes_freed += rp.bytes_freed;
    }
  ov_fault ("gc-after-trees");
  if (ret == 0 && known)
    ret = sweep (s, OV_BLOB, &r.blobs, &res->objects_removed, &res->bytes_freed,
                 &res->objects_kept, err);
  if (ret == 0)
    ret = ov_reach_drop_stale_refs (s, &r, err);
  ov_fault ("gc-after-objects");
  if (ret == 0)
    ret = sweep_cache (node, attached, nattached, known, r.ctr_trees, r.ctr_roots, res, err);
  ov_reach_free (&r);
  free (attached);
  return ret;
}
