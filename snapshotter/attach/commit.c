/* Commit: what changed in the upper since the last commit becomes a
 * new snapshot, merged onto the newest one. */
#include "attach-int.h"
#include "busy.h"
#include "changeset.h"
#include "dir.h"
#include "fault.h"
#include "ingest.h"
#include "layer.h"
#include "manifest.h"
#include "mount.h"
#include "nsexec.h"
#include "pack.h"
#include "path.h"
#include "sandbox.h"
#include "trash.h"
#include "volume.h"
#include "xattr.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

/* ---- commit ---- */

struct manifest_job;

struct commit_ctx
{
  struct ov_change *change;
  uint64_t nlinks;
  struct manifest_job *mj;
  uint64_t link_offset; /* applied to change: commit_edit may run again onto a newer head */
};

static int
commit_edit (struct ov_store *s, const struct ov_snapshot *head, struct ov_entry *root,
             uint64_t *next_link_id, void *ctx, ov_error_t *err)
{
  struct commit_ctx *c = ctx;
  change_renumber_links (c->change, head->next_link_id - 1 - c->link_offset);
  c->link_offset = head->next_link_id - 1;
  *next_link_id = head->next_link_id + c->nlinks;
  bool gone;
  ov_trace ("commit: head loaded");
  if (changeset_apply (s, &head->root, c->change, root, &gone, err) < 0)
    return -1;
  ov_trace ("commit: merged");
  if (entry_same (root, &head->root))
    {
      /* e.g. a file copied up and put back as it was: nothing to record */
      entry_free (root);
      return 1;
    }
  return 0;
}

/* A path the last commit captured that is now gone from the upper, with
 * no whiteout in its place, was created and deleted above the lower (which
 * never had it): overlay leaves no trace, so the manifest is what tells.
 * Deleting the topmost vanished path covers what was below it. */
static void
add_vanished (struct ov_change *root, const struct ov_manifest *prev, const struct ov_manifest *next)
{
  for (size_t i = 0; i < prev->cap; i++)
    {
      const char *path = prev->paths[i];
      if (path == NULL || path[0] == '\0' || manifest_get (next, path))
        continue;
      cleanup_free char *parent = xstrdup (path);
      char *slash = strrchr (parent, '/');
      if (slash)
        *slash = '\0';
      const struct ov_sig *ps = slash ? manifest_get (next, parent) : NULL;
      if (slash && (ps == NULL || !S_ISDIR (ps->mode)))
        continue; /* its parent vanished too, or is no directory now */
      struct ov_path p;
      ov_error_t e = NULL;
      if (ov_path_parse (path, &p, &e) < 0)
        {
          ov_error_free (&e);
          continue;
        }
      struct ov_change *c = change_at (root, p.comps, p.n);
      for (size_t k = 0; k < c->n; k++)
        change_free (&c->kids[k]);
      c->n = 0;
      entry_free (&c->entry);
      c->op = OV_CH_DELETE;
      ov_path_free (&p);
    }
}

/* What a commit builds; freed after the worker has replied. */
struct commit_mem
{
  struct ov_change change;
  struct ov_manifest prev, next;
  struct ov_ingest_fds dirfds;
};

static void
commit_mem_free (struct commit_mem *m)
{
  change_free (&m->change);
  manifest_free (&m->prev);
  manifest_free (&m->next);
  ov_ingest_fds_close (&m->dirfds);
}

/* The new manifest is written (and synced) to a side file on a thread
 * while the volume is updated. Before the head moves, the side file takes
 * the name manifest.N.<snapshot> (and the directory is synced): after a
 * crash the next command keeps it as manifest.N if that snapshot made it
 * into the volume's history, and drops it if not (manifest_settle). So a
 * commit neither re-applies changes it already committed, over newer
 * writers, nor takes changes it never committed for committed. */
struct manifest_job
{
  int afd;
  const char *name;
  const struct ov_manifest *m;
  ov_error_t err;
  int r;
  pthread_t th;
  bool threaded, joined;
  char pending[64]; /* manifest.N.<snapshot>, once named */
};

static void *
manifest_job_run (void *arg)
{
  struct manifest_job *j = arg;
  j->r = manifest_prepare (j->afd, j->name, j->m, &j->err);
  return NULL;
}

static void
manifest_job_join (struct manifest_job *j)
{
  if (j->threaded && !j->joined)
    pthread_join (j->th, NULL);
  j->joined = true;
}

static int
commit_before_head (const struct ov_snapshot *snap, void *ctx, ov_error_t *err)
{
  struct manifest_job *j = ((struct commit_ctx *) ctx)->mj;
  manifest_job_join (j);
  if (j->r < 0)
    {
      *err = j->err;
      j->err = NULL;
      return ov_error_prefix (err, "manifest");
    }
  if (ov_fail_err ("commit-manifest", err) < 0)
    return -1;
  char hex[OV_OID_STR];
  oid_hex (&snap->id, hex);
  /* a second call (the head merged again onto a newer one) renames the first's */
  cleanup_free char *tmp = j->pending[0] ? xstrdup (j->pending) : xasprintf ("%s.tmp", j->name);
  snprintf (j->pending, sizeof j->pending, "%s.%s", j->name, hex);
  if (renameat (j->afd, tmp, j->afd, j->pending) < 0 || fsync (j->afd) < 0)
    {
      j->pending[0] = '\0';
      return ov_error (err, errno, "save manifest");
    }
  return 0;
}

static int
commit_locked (struct ov_store *s, struct ov_attachment *a, int afd, const char *up,
               const char *message, struct commit_mem *m, struct ov_snapshot *out, bool *changed,
               ov_error_t *err)
{
  *changed = false;
  char mname[32];
  att_manifest_name (a->gen, mname);
  ov_trace ("commit: worker started");
  if (manifest_load (afd, mname, &m->prev, err) < 0)
    return -1;
  ov_trace ("commit: manifest loaded");
  struct ov_ingest_opts opts = { .upper = true, .prev = &m->prev, .next = &m->next,
                                 .dirfds = &m->dirfds };
  struct commit_ctx c = { &m->change, 1, NULL, 0 };
  int r = ov_fail_err ("commit-ingest", err);
  if (r == 0)
    r = ov_ingest (s, AT_FDCWD, up, &opts, &c.nlinks, &m->change, NULL, err);
  c.nlinks--;
  if (r < 0)
    return -1;
  add_vanished (&m->change, &m->prev, &m->next);
  change_prune (&m->change);
  ov_trace ("commit: changes known");
  if (change_is_noop (&m->change))
    {
      struct ov_volume v;
      if (ov_volume_load (s, a->volume, &v, err) < 0)
        return -1;
      r = ov_snapshot_load (s, &v.head, out, err);
      volume_free (&v);
      return r;
    }
  struct manifest_job mj = { .afd = afd, .name = mname, .m = &m->next };
  c.mj = &mj;
  mj.threaded = pthread_create (&mj.th, NULL, manifest_job_run, &mj) == 0;
  if (!mj.threaded)
    manifest_job_run (&mj);
  ov_fault ("commit-before-update");
  r = ov_fail_err ("commit-update", err);
  if (r == 0)
    r = ov_volume_update_ex (s, a->volume, message, commit_edit, commit_before_head, &c, out, err);
  *changed = r == 0;
  ov_trace ("commit: volume updated");
  manifest_job_join (&mj);
  ov_fault ("commit-manifest-pending");
  /* The head has moved: the pending manifest takes its place. A crash
   * before this rename is settled by manifest_settle. */
  if (r == 0 && mj.pending[0] && renameat (afd, mj.pending, afd, mname) < 0)
    r = ov_error (err, errno, "commit %s: save manifest", a->dir);
  if (r < 0 && mj.pending[0] && !*changed)
    unlinkat (afd, mj.pending, 0); /* the head never moved to it */
  if (r < 0 || mj.r < 0)
    manifest_discard (afd, mname);
  ov_error_free (&mj.err);
  ov_trace ("commit: manifest saved");
  return r;
}

struct commit_job
{
  struct ov_store *s;
  struct ov_attachment *a;
  int afd;
  int lock; /* the caller holds it; the worker's copy is closed at once */
  const char *upper; /* absolute: the worker sees it read-only and nodev */
  const char *message;
};

/* Runs in the sandbox: reads the container's upper, writes the store. */
static int
commit_worker (void *ctx, struct ov_buf *result, ov_error_t *err)
{
  struct commit_job *j = ctx;
  /* a worker still freeing memory after its reply must not keep the
   * attachment locked (flock belongs to the open file, shared by fork) */
  close (j->lock);
  struct ov_snapshot snap;
  struct commit_mem m = { 0 };
  bool changed;
  int r = commit_locked (j->s, j->a, j->afd, j->upper, j->message, &m, &snap, &changed, err);
  if (r == 0)
    {
      char hex[OV_OID_STR];
      oid_hex (&snap.id, hex);
      cleanup_free char *line = xasprintf ("%d %s", changed, hex);
      buf_put (result, line, strlen (line));
      snapshot_free (&snap);
      /* freeing what the commit built takes a while: not on the caller's time */
      ov_sandbox_reply (result);
    }
  commit_mem_free (&m);
  return r;
}

int
att_commit_held (struct ov_node *n, struct ov_attachment *a, int afd, int lock, const char *message,
             struct ov_snapshot *out, bool *changed, ov_error_t *err)
{
  struct ov_store *s = n->store;
  cleanup_free char *rel = xasprintf ("%s/attach/%s/upper.%d", n->root, a->id, a->gen);
  cleanup_free char *upper = realpath (rel, NULL);
  if (upper == NULL)
    return ov_error (err, errno, "commit %s: open %s", a->dir, rel);
  struct commit_job job = { s, a, afd, lock, upper, message };
  struct ov_buf res = { 0 };
  ov_trace ("commit: locked");
  ov_sandbox_allow_network (s->be->remote); /* the worker writes the store itself */
  int r = ov_sandbox_run (upper, commit_worker, &job, &res, err);
  ov_trace ("commit: worker done");
  buf_put (&res, "", 1);
  int ch = 0;
  char hex[OV_OID_STR + 8];
  struct ov_oid id;
  if (r == 0 && (sscanf ((const char *) res.data, "%d %44s", &ch, hex) != 2 || oid_parse (hex, &id) < 0))
    r = ov_error (err, 0, "commit worker: unexpected reply");
  buf_free (&res);
  if (r == 0)
    r = ov_snapshot_load (s, &id, out, err);
  if (r < 0)
    return ov_error_prefix (err, "commit %s", a->dir);
  *changed = ch;
  return 0;
}

/* Releases the attachment before any background work starts: a detached
 * process inherits open files, and with them the lock. */
void
att_close (int *afd, int *lock)
{
  if (*lock >= 0)
    close (*lock);
  if (*afd >= 0)
    close (*afd);
  *lock = *afd = -1;
}

int
ov_commit (struct ov_node *n, struct ov_attachment *a, const char *message,
           struct ov_snapshot *out, bool *changed, ov_error_t *err)
{
  struct ov_store *s = n->store;
  if (a->readonly)
    return ov_error_set (err, OV_EUSAGE, 0, "%s is mounted read-only: nothing to commit", a->dir);
  cleanup_close int afd = -1, lock = -1;
  if (att_open_locked (n, a, &afd, &lock, err) < 0 || att_reconcile (n, afd, a, err) < 0)
    return -1;
  int r = att_commit_held (n, a, afd, lock, message, out, changed, err);
  att_close (&afd, &lock);
  if (r == 0 && *changed)
    ov_packs_consolidate_later (s);
  return r;
}
