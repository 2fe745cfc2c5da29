#include "snapshots.h"
#include "dir.h"
#include "fault.h"
#include "grpc-msg.h"
#include "pool.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#define FAIL(err, code, ...) ov_error_set (err, OV_GRPC_ERR (OV_GRPC_##code), 0, __VA_ARGS__)

void
ov_mount_free (struct ov_mount *m)
{
  free (m->type);
  free (m->source);
  for (size_t i = 0; i < m->n_options; i++)
    free (m->options[i]);
  *m = (struct ov_mount){ 0 };
}

int
ov_sn_check_key (const char *what, const char *key, ov_error_t *err)
{
  size_t n = strlen (key);
  if (n == 0)
    return FAIL (err, INVALID_ARGUMENT, "%s is empty", what);
  if (n > OV_SNAP_KEY_MAX)
    return FAIL (err, INVALID_ARGUMENT, "%s of %zu bytes (at most %d)", what, n, OV_SNAP_KEY_MAX);
  return 0;
}

static int
check_labels (const char *key, const struct ov_label_in *l, size_t n, ov_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      size_t kl = strlen (l[i].key), vl = strlen (l[i].value);
      if (kl == 0)
        return FAIL (err, INVALID_ARGUMENT, "snapshot \"%s\": a label with an empty key", key);
      if (kl + vl > OV_SNAP_LABEL_MAX)
        return FAIL (err, INVALID_ARGUMENT,
                     "snapshot \"%s\": label \"%.64s...\": key and value of %zu bytes (at most %d)",
                     key, l[i].key, kl + vl, OV_SNAP_LABEL_MAX);
    }
  return 0;
}

static void
set_labels (struct ov_snap *s, const struct ov_label_in *l, size_t n)
{
  ov_snap_clear_labels (s);
  for (size_t i = 0; i < n; i++)
    ov_snap_set_label (s, l[i].key, l[i].value);
}

const char *
ov_sn_parent_key (struct ov_snapshotter *sn, const struct ov_snap *s)
{
  struct ov_snap *p = s->parent ? ov_snapdb_get (&sn->db, s->parent) : NULL;
  return p ? p->key : "";
}

static struct ov_snap *
find (struct ov_snapshotter *sn, const char *key, ov_error_t *err)
{
  if (ov_sn_check_key ("key", key, err) < 0)
    return NULL;
  struct ov_snap *s = ov_snapdb_find (&sn->db, key);
  if (s == NULL)
    FAIL (err, NOT_FOUND, "snapshot \"%s\": not found", key);
  return s;
}

/* --- directories -------------------------------------------------------------------------- */

/* Moves s/<id> into the trash, which the reaper empties later. */
static int
remove_dir (struct ov_snapshotter *sn, const char *name, ov_error_t *err)
{
  char from[64];
  snprintf (from, sizeof from, "s/%s", name);
  if (ov_reaper_trash (sn->reaper, from, name, err) < 0)
    return -1;
  ov_fault ("snapshot-trashed");
  return 0;
}

static char *
fs_path (struct ov_snapshotter *sn, uint64_t id, const char *what)
{
  return xasprintf ("%s/s/%llu/%s", sn->root, (unsigned long long) id, what);
}

static void
free_lowers (char **dirs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (dirs[i]);
  free (dirs);
}

/* s/<id> with fs (0755, owned like the parent's root) and, for an active
 * snapshot, work; sync_dir makes it durable, before the record that names
 * it is. */
static int
make_dir (struct ov_snapshotter *sn, uint64_t id, enum ov_snap_kind kind, uint64_t parent,
          ov_error_t *err)
{
  char d[32];
  snprintf (d, sizeof d, "s/%llu", (unsigned long long) id);
  if (mkdirat (sn->rootfd, d, 0700) < 0)
    return ov_error (err, errno, "create %s/%s", sn->root, d);
  cleanup_close int dfd = openat (sn->rootfd, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (dfd < 0)
    return ov_error (err, errno, "open %s/%s", sn->root, d);
  if (mkdirat (dfd, "fs", 0755) < 0 || fchmodat (dfd, "fs", 0755, 0) < 0)
    return ov_error (err, errno, "create %s/%s/fs", sn->root, d);
  if (kind == OV_SNAP_ACTIVE && (mkdirat (dfd, "work", 0711) < 0 || fchmodat (dfd, "work", 0711, 0) < 0))
    return ov_error (err, errno, "create %s/%s/work", sn->root, d);
  ov_trace ("ctd prepare: dirs made");
  if (parent)
    {
      char **dirs = NULL;
      size_t nd = 0;
      int r = sn->layers->ops->lowers ? sn->layers->ops->lowers (sn->layers, parent, &dirs, &nd, err) : 0;
      if (r < 0)
        return -1;
      cleanup_free char *lower = r && nd ? xstrdup (dirs[0]) : sn->layers->ops->lower (sn->layers, parent);
      free_lowers (dirs, nd);
      struct stat st;
      if (stat (lower, &st) < 0)
        return ov_error (err, errno, "stat the parent's root %s", lower);
      if (fchownat (dfd, "fs", st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ov_error (err, errno, "chown %s/%s/fs", sn->root, d);
      ov_trace ("ctd prepare: lowers, chowned");
    }
  return 0;
}

static int
sync_dir (struct ov_snapshotter *sn, uint64_t id, ov_error_t *err)
{
  char d[32];
  snprintf (d, sizeof d, "s/%llu", (unsigned long long) id);
  cleanup_close int dfd = openat (sn->rootfd, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  cleanup_close int sfd = openat (sn->rootfd, "s", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync (dfd) < 0 || sfd < 0 || fsync (sfd) < 0)
    return ov_error (err, errno, "sync %s/%s", sn->root, d);
  return 0;
}

struct prepare_job
{
  struct ov_snapshotter *sn;
  const struct ov_snap *s;
};

/* The new directory and the record's temp file are made durable side by
 * side (their fsyncs overlap); the record is renamed in place after both. */
static int
prepare_part (size_t part, void *ctx, ov_error_t *err)
{
  struct prepare_job *j = ctx;
  if (part == 0)
    return sync_dir (j->sn, j->s->id, err);
  return ov_snapdb_stage (&j->sn->db, j->s, err);
}

/* --- mounts ------------------------------------------------------------------------------- */

static void
opt (struct ov_mount *m, char *o)
{
  if (m->n_options >= ARRAY_SIZE (m->options))
    abort ();
  m->options[m->n_options++] = o;
}

static int
mounts_of (struct ov_snapshotter *sn, const struct ov_snap *s, struct ov_mount *m, ov_error_t *err)
{
  *m = (struct ov_mount){ 0 };
  char **dirs = NULL;
  size_t nd = 0;
  int given = 0;
  if (s->parent && sn->layers->ops->lowers)
    {
      given = sn->layers->ops->lowers (sn->layers, s->parent, &dirs, &nd, err);
      if (given < 0)
        return ov_error_prefix (err, "snapshot \"%s\": the parent's layers", s->key);
      if (given && nd == 0)
        {
          free_lowers (dirs, nd);
          return ov_error (err, 0, "snapshot \"%s\": the parent has no layer", s->key);
        }
    }
  if (s->parent == 0)
    {
      m->type = xstrdup ("bind");
      m->source = fs_path (sn, s->id, "fs");
      opt (m, xstrdup (s->kind == OV_SNAP_VIEW ? "ro" : "rw"));
      opt (m, xstrdup ("rbind"));
      return 0;
    }
  if (s->kind != OV_SNAP_ACTIVE
      && (given ? nd == 1 : ov_snapdb_get (&sn->db, s->parent)->parent == 0))
    {
      m->type = xstrdup ("bind");
      m->source = given ? xstrdup (dirs[0]) : sn->layers->ops->lower (sn->layers, s->parent);
      opt (m, xstrdup ("ro"));
      opt (m, xstrdup ("rbind"));
      free_lowers (dirs, nd);
      return 0;
    }
  m->type = xstrdup ("overlay");
  m->source = xstrdup ("overlay");
  opt (m, xstrdup ("index=off"));
  if (s->kind == OV_SNAP_ACTIVE)
    {
      cleanup_free char *work = fs_path (sn, s->id, "work");
      cleanup_free char *upper = fs_path (sn, s->id, "fs");
      opt (m, xasprintf ("workdir=%s", work));
      opt (m, xasprintf ("upperdir=%s", upper));
    }
  struct ov_buf b = { 0 };
  buf_put (&b, "lowerdir=", 9);
  for (size_t i = 0; i < nd; i++)
    {
      if (i)
        buf_u8 (&b, ':');
      buf_put (&b, dirs[i], strlen (dirs[i]));
    }
  free_lowers (dirs, nd);
  for (uint64_t p = given ? 0 : s->parent; p; p = ov_snapdb_get (&sn->db, p)->parent)
    {
      cleanup_free char *lower = sn->layers->ops->lower (sn->layers, p);
      if (p != s->parent)
        buf_u8 (&b, ':');
      buf_put (&b, lower, strlen (lower));
    }
  buf_u8 (&b, '\0');
  opt (m, (char *) b.data);
  return 0;
}

/* --- the operations ----------------------------------------------------------------------- */

/* The remote-snapshotter protocol: the layer chainid names is in the store
 * already: it becomes a committed snapshot at once, named chainid (or
 * "chainid@ID" when another namespace took that name), with the Prepare's
 * labels (containerd finds it by its label and parent), and the Prepare
 * answers AlreadyExists. 0 if the layer is not held: unpack as usual. */
static int
shortcut (struct ov_snapshotter *sn, const char *key, const struct ov_snap *p, const char *chainid,
          const struct ov_label_in *labels, size_t n_labels, ov_error_t *err)
{
  uint64_t id = sn->db.max_id + 1;
  struct ov_usage u;
  int r = sn->layers->ops->shortcut (sn->layers, id, p ? p->id : 0, chainid, &u, err);
  if (r <= 0)
    return r < 0 ? ov_error_prefix (err, "snapshot \"%s\"", key) : 0;
  ov_fault ("shortcut-stored");
  struct ov_snap *c = xcalloc (1, sizeof *c);
  c->id = id;
  c->kind = OV_SNAP_COMMITTED;
  c->key = ov_snapdb_find (&sn->db, chainid)
               ? xasprintf ("%s@%llu", chainid, (unsigned long long) id)
               : xstrdup (chainid);
  c->parent = p ? p->id : 0;
  c->created = c->updated = now_ns ();
  c->size = u.size;
  c->inodes = u.inodes;
  set_labels (c, labels, n_labels);
  if (ov_snapdb_put (&sn->db, c, err) < 0)
    {
      sn->layers->ops->remove (sn->layers, id, NULL);
      ov_snap_free (c);
      return ov_error_prefix (err, "snapshot \"%s\"", key);
    }
  return FAIL (err, ALREADY_EXISTS,
               "snapshot \"%s\": layer %s is in the store: committed as \"%s\"", key, chainid,
               c->key);
}

/* The chain id a committed snapshot stands for: its snapshot.ref label, or
 * the last component of its name when that is a chain id (what containerd
 * names the layers it unpacks). */
static const char *
chain_id_of (const struct ov_snap *s)
{
  const char *ref = ov_snap_label (s, OV_SNAP_REF_LABEL);
  if (ref)
    return ref;
  const char *slash = strrchr (s->key, '/');
  return slash ? slash + 1 : s->key;
}

int
ov_sn_create (struct ov_snapshotter *sn, enum ov_snap_kind kind, const char *key,
              const char *parent, const struct ov_label_in *labels, size_t n_labels,
              struct ov_mount *m, ov_error_t *err)
{
  if (ov_sn_check_key ("key", key, err) < 0 || check_labels (key, labels, n_labels, err) < 0)
    return -1;
  if (ov_snapdb_find (&sn->db, key))
    return FAIL (err, ALREADY_EXISTS, "snapshot \"%s\": already exists", key);
  ov_reaper_busy (sn->reaper);
  struct ov_snap *p = NULL;
  if (parent && *parent)
    {
      if (ov_sn_check_key ("parent", parent, err) < 0)
        return -1;
      p = ov_snapdb_find (&sn->db, parent);
      if (p == NULL)
        return FAIL (err, NOT_FOUND, "snapshot \"%s\": parent \"%s\" not found", key, parent);
      if (p->kind != OV_SNAP_COMMITTED)
        return FAIL (err, INVALID_ARGUMENT,
                     "snapshot \"%s\": parent \"%s\" is %s, not a committed snapshot", key, parent,
                     ov_snap_kind_name (p->kind));
    }
  const char *ref = NULL;
  for (size_t i = 0; i < n_labels; i++)
    if (strcmp (labels[i].key, OV_SNAP_REF_LABEL) == 0)
      ref = labels[i].value;
  if (kind == OV_SNAP_ACTIVE && ref && sn->layers->ops->shortcut)
    {
      int r = shortcut (sn, key, p, ref, labels, n_labels, err);
      if (r != 0)
        return -1;
    }
  struct ov_snap *s = xcalloc (1, sizeof *s);
  s->id = sn->db.max_id + 1;
  s->kind = kind;
  s->key = xstrdup (key);
  s->parent = p ? p->id : 0;
  s->created = s->updated = now_ns ();
  set_labels (s, labels, n_labels);
  char name[24];
  snprintf (name, sizeof name, "%llu", (unsigned long long) s->id);
  ov_trace ("ctd prepare: start");
  if (make_dir (sn, s->id, kind, s->parent, err) < 0)
    goto fail;
  ov_fault ("prepare-dir-made");
  struct prepare_job pj = { sn, s };
  if (ov_pool_run (2, prepare_part, &pj, err) < 0)
    {
      ov_snapdb_unstage (&sn->db, s);
      goto fail;
    }
  if (ov_snapdb_publish (&sn->db, s, err) < 0)
    goto fail;
  ov_trace ("ctd prepare: recorded");
  ov_fault ("prepare-recorded");
  if (mounts_of (sn, s, m, err) < 0)
    {
      /* recorded: containerd may ask Mounts again, or Remove it */
      ov_mount_free (m);
      return -1;
    }
  ov_trace ("ctd prepare: mounts");
  return 0;
fail:
  ov_error_prefix (err, "snapshot \"%s\"", key);
  remove_dir (sn, name, NULL);
  ov_snap_free (s);
  return -1;
}

int
ov_sn_mounts (struct ov_snapshotter *sn, const char *key, struct ov_mount *m, ov_error_t *err)
{
  struct ov_snap *s = find (sn, key, err);
  if (s == NULL)
    return -1;
  if (s->kind == OV_SNAP_COMMITTED)
    return FAIL (err, FAILED_PRECONDITION,
                 "snapshot \"%s\": committed: only an active snapshot or a view has mounts", key);
  if (mounts_of (sn, s, m, err) < 0)
    {
      ov_mount_free (m);
      return -1;
    }
  return 0;
}

struct commit_job
{
  struct ov_snapshotter *sn;
  struct ov_snap *c;
};

/* Beside the layers' own writes: the committed record's temp file, once
 * its usage is known. */
static int
stage_committed (const struct ov_usage *u, void *ctx, ov_error_t *err)
{
  struct commit_job *j = ctx;
  j->c->size = u->size;
  j->c->inodes = u->inodes;
  return ov_snapdb_stage (&j->sn->db, j->c, err);
}

/* The commit point, the record renamed in place, and beside it (its fsync
 * overlapping) the layer's chain id for other nodes: a hint, checked when
 * used, so it may land even if the record does not. */
static int
commit_part (size_t part, void *ctx, ov_error_t *err)
{
  struct commit_job *j = ctx;
  struct ov_layers *l = j->sn->layers;
  if (part == 0)
    return ov_snapdb_publish (&j->sn->db, j->c, err);
  if (l->ops->ref)
    l->ops->ref (l, j->c->id, chain_id_of (j->c));
  return 0;
}

int
ov_sn_commit (struct ov_snapshotter *sn, const char *name, const char *key,
              const struct ov_label_in *labels, size_t n_labels, ov_error_t *err)
{
  if (ov_sn_check_key ("name", name, err) < 0 || check_labels (name, labels, n_labels, err) < 0)
    return -1;
  if (ov_snapdb_find (&sn->db, name))
    return FAIL (err, ALREADY_EXISTS, "commit \"%s\" as \"%s\": \"%s\" already exists", key, name,
                 name);
  struct ov_snap *a = find (sn, key, err);
  if (a == NULL)
    return -1;
  if (a->kind != OV_SNAP_ACTIVE)
    return FAIL (err, FAILED_PRECONDITION, "commit \"%s\": snapshot is %s, not active", key,
                 ov_snap_kind_name (a->kind));
  ov_reaper_busy (sn->reaper);
  cleanup_free char *upper = fs_path (sn, a->id, "fs");
  struct ov_snap *c = ov_snap_dup (a);
  free (c->key);
  c->key = xstrdup (name);
  c->kind = OV_SNAP_COMMITTED;
  c->created = c->updated = now_ns ();
  set_labels (c, labels, n_labels);
  struct commit_job cj = { sn, c };
  struct ov_commit_beside beside = { stage_committed, &cj };
  struct ov_usage u;
  int stored = sn->layers->ops->commit (sn->layers, a->id, a->parent, upper, &beside, &u, err);
  if (stored >= 0)
    {
      ov_trace ("ctd commit: layers done");
      ov_fault ("commit-stored");
    }
  if (stored < 0 || ov_pool_run (2, commit_part, &cj, err) < 0)
    {
      ov_snapdb_unstage (&sn->db, c);
      ov_snap_free (c);
      return ov_error_prefix (err, "commit \"%s\"", key);
    }
  ov_trace ("ctd commit: recorded");
  ov_fault ("commit-recorded");
  if (stored > 0)
    {
      /* the content is in the store: the upper goes (or Cleanup takes it) */
      char d[24];
      snprintf (d, sizeof d, "%llu", (unsigned long long) c->id);
      remove_dir (sn, d, NULL);
    }
  ov_trace ("ctd commit: upper removed");
  return 0;
}

int
ov_sn_remove (struct ov_snapshotter *sn, const char *key, ov_error_t *err)
{
  struct ov_snap *s = find (sn, key, err);
  if (s == NULL)
    return -1;
  size_t children = ov_snapdb_children (&sn->db, s->id);
  if (children)
    return FAIL (err, FAILED_PRECONDITION, "remove \"%s\": snapshot has %zu child%s", key,
                 children, children == 1 ? "" : "ren");
  uint64_t id = s->id;
  bool committed = s->kind == OV_SNAP_COMMITTED;
  if (ov_snapdb_drop (&sn->db, id, err) < 0)
    return ov_error_prefix (err, "remove \"%s\"", key);
  ov_fault ("remove-unrecorded");
  char name[24];
  snprintf (name, sizeof name, "%llu", (unsigned long long) id);
  /* the snapshot is gone; what is left of its directory, Cleanup finds */
  if (committed)
    sn->layers->ops->remove (sn->layers, id, NULL);
  remove_dir (sn, name, NULL);
  return 0;
}

const struct ov_snap *
ov_sn_stat (struct ov_snapshotter *sn, const char *key, ov_error_t *err)
{
  return find (sn, key, err);
}

const struct ov_snap *
ov_sn_update (struct ov_snapshotter *sn, const char *key, const struct ov_label_in *labels,
              size_t n_labels, char *const *paths, size_t n_paths, ov_error_t *err)
{
  struct ov_snap *s = find (sn, key, err);
  if (s == NULL || check_labels (key, labels, n_labels, err) < 0)
    return NULL;
  struct ov_snap *u = ov_snap_dup (s);
  if (n_paths == 0)
    set_labels (u, labels, n_labels);
  for (size_t i = 0; i < n_paths; i++)
    {
      const char *p = paths[i];
      if (strcmp (p, "labels") == 0)
        set_labels (u, labels, n_labels);
      else if (strncmp (p, "labels.", 7) == 0)
        {
          const char *v = NULL;
          for (size_t k = 0; k < n_labels; k++)
            if (strcmp (labels[k].key, p + 7) == 0)
              v = labels[k].value;
          ov_snap_set_label (u, p + 7, v);
        }
      else
        {
          ov_snap_free (u);
          FAIL (err, INVALID_ARGUMENT, "update \"%s\": cannot update field \"%s\"", key, p);
          return NULL;
        }
    }
  u->updated = now_ns ();
  if (ov_snapdb_put (&sn->db, u, err) < 0)
    {
      ov_snap_free (u);
      ov_error_prefix (err, "update \"%s\"", key);
      return NULL;
    }
  return u;
}

int
ov_sn_usage (struct ov_snapshotter *sn, const char *key, struct ov_usage *u, ov_error_t *err)
{
  struct ov_snap *s = find (sn, key, err);
  if (s == NULL)
    return -1;
  if (s->kind != OV_SNAP_ACTIVE)
    {
      *u = (struct ov_usage){ s->size, s->inodes };
      return 0;
    }
  cleanup_free char *upper = fs_path (sn, s->id, "fs");
  if (ov_disk_usage (upper, u, err) < 0)
    return ov_error_prefix (err, "usage \"%s\"", key);
  return 0;
}

/* --- cleanup ------------------------------------------------------------------------------ */

struct sweep
{
  struct ov_snapshotter *sn;
  ov_error_t *err;
  int r;
};

static int
sweep_one (int dirfd, const char *name, unsigned char type, void *ctx)
{
  (void) dirfd;
  (void) type;
  struct sweep *w = ctx;
  char *end;
  unsigned long long id = strtoull (name, &end, 10);
  struct ov_snap *s = *end == '\0' && name[0] >= '1' && name[0] <= '9'
                         ? ov_snapdb_get (&w->sn->db, id) : NULL;
  if (s && !(s->kind == OV_SNAP_COMMITTED && w->sn->layers->ops->owns
             && w->sn->layers->ops->owns (w->sn->layers, id)))
    return 0;
  if (remove_dir (w->sn, name, w->err) < 0)
    w->r = -1;
  return 0;
}

static bool
is_committed (uint64_t id, void *ctx)
{
  struct ov_snap *s = ov_snapdb_get (ctx, id);
  return s && s->kind == OV_SNAP_COMMITTED;
}

int
ov_sn_cleanup (struct ov_snapshotter *sn, ov_error_t *err)
{
  struct sweep w = { sn, err, 0 };
  if (sn->layers->ops->reconcile && sn->layers->ops->reconcile (sn->layers, is_committed, &sn->db, err) < 0)
    return -1;
  if (ov_dir_each_at (sn->rootfd, "s", false, sweep_one, &w) < 0)
    return ov_error (err, errno, "read %s/s", sn->root);
  if (w.r == 0 && ov_reaper_empty (sn->reaper, err) < 0)
    return -1;
  return w.r;
}

/* --- open --------------------------------------------------------------------------------- */

static int
mkdir_p (const char *path)
{
  cleanup_free char *p = xstrdup (path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/')
      {
        *s = '\0';
        if (mkdir (p, 0755) < 0 && errno != EEXIST)
          return -1;
        *s = '/';
      }
  return mkdir (p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

int
ov_snapshotter_open (struct ov_snapshotter **out, const char *root, ov_error_t *err)
{
  return ov_snapshotter_open_ex (out, root, NULL, err);
}

int
ov_snapshotter_open_ex (struct ov_snapshotter **out, const char *root,
                        const struct ov_sn_opts *o, ov_error_t *err)
{
  if (root[0] != '/')
    return ov_error_set (err, OV_EUSAGE, 0, "root %s: not an absolute path", root);
  if (mkdir_p (root) < 0)
    return ov_error (err, errno, "create root %s", root);
  struct ov_snapshotter *sn = xcalloc (1, sizeof *sn);
  sn->rootfd = sn->lockfd = -1;
  sn->db.metafd = -1;
  sn->root = realpath (root, NULL);
  if (sn->root == NULL)
    {
      ov_error (err, errno, "root %s", root);
      goto fail;
    }
  sn->rootfd = open (sn->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sn->rootfd < 0)
    {
      ov_error (err, errno, "open root %s", sn->root);
      goto fail;
    }
  sn->lockfd = openat (sn->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (sn->lockfd < 0)
    {
      ov_error (err, errno, "open %s/lock", sn->root);
      goto fail;
    }
  if (flock (sn->lockfd, LOCK_EX | LOCK_NB) < 0)
    {
      if (errno == EWOULDBLOCK)
        ov_error_set (err, OV_EBUSY, 0, "root %s: another ovsnap-snapshotter serves it", sn->root);
      else
        ov_error (err, errno, "lock %s/lock", sn->root);
      goto fail;
    }
  if ((mkdirat (sn->rootfd, "s", 0700) < 0 && errno != EEXIST)
      || (mkdirat (sn->rootfd, "trash", 0700) < 0 && errno != EEXIST))
    {
      ov_error (err, errno, "create the directories of %s", sn->root);
      goto fail;
    }
  if (ov_snapdb_open (&sn->db, sn->rootfd, sn->root, err) < 0)
    goto fail;
  sn->reaper = ov_reaper_start (sn->rootfd, sn->root);
  if (o && o->trees)
    {
      cleanup_free char *node = o->node_root ? xstrdup (o->node_root) : xasprintf ("%s/node", sn->root);
      if (ov_layers_tree_new (&sn->layers, sn->root, node, o->store_url, err) < 0)
        goto fail;
    }
  else
    sn->layers = ov_layers_dir_new (sn->root);
  if (ov_sn_cleanup (sn, err) < 0)
    goto fail;
  *out = sn;
  return 0;
fail:
  ov_snapshotter_close (sn);
  return -1;
}

void
ov_snapshotter_close (struct ov_snapshotter *sn)
{
  if (sn == NULL)
    return;
  ov_reaper_stop (sn->reaper);
  ov_snapdb_close (&sn->db);
  if (sn->layers)
    sn->layers->ops->close (sn->layers);
  if (sn->rootfd >= 0)
    close (sn->rootfd);
  if (sn->lockfd >= 0)
    close (sn->lockfd);
  free (sn->root);
  free (sn);
}
