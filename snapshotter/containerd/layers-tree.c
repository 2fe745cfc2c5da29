/* Committed snapshots as ovsnap trees (layers.h): Commit captures the
 * active snapshot's upper onto its parent's tree (ctree.c), so the store
 * holds every committed snapshot whole, deduplicated with every other
 * layer, image and volume; lowers come from the node cache, shared with
 * volumes, a delta on the parent's cached layer.
 *
 * Records, in the order a Commit writes them (a kill -9 between any two
 * leaves what reconcile settles at the next start):
 *   the snapshot record and its objects   store, content-addressed
 *   <root>/t/<id>     "<snapshot hex>\n"  this daemon's: which tree id is
 *   containerd/roots/<instance>/<id>      store: gc's root (ctree.h)
 *   <root>/meta/<id>  committed           snapdb.c: the commit point
 * Remove goes the other way. <root>/instance names this daemon among
 * those sharing a store (random, made once). Committed snapshots made
 * before (no t/<id>) stay directories, and so do their children. */
#include "layers.h"
#include "ctree.h"
#include "node.h"
#include "dir.h"
#include "fault.h"
#include "file.h"
#include "pool.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

struct entry
{
  uint64_t id;
  struct ov_oid snap;
};

struct tl
{
  struct ov_layers l;
  struct ov_layers *dir; /* committed snapshots from before */
  struct ov_ctree *c;
  int rootfd;
  struct entry *m;
  size_t n;
};

static struct entry *
get (struct tl *t, uint64_t id)
{
  for (size_t i = 0; i < t->n; i++)
    if (t->m[i].id == id)
      return &t->m[i];
  return NULL;
}

static void
forget (struct tl *t, uint64_t id)
{
  struct entry *e = get (t, id);
  if (e)
    *e = t->m[--t->n];
}

struct record_job
{
  struct tl *t;
  uint64_t id;
  const struct ov_oid *snap;
  bool written[2]; /* t/<id>, the store root */
  const struct ov_commit_beside *beside; /* may be NULL */
  const struct ov_usage *u;
};

/* The tree record, the store root and what the caller has beside them,
 * each written durably on a thread of its own: their fsyncs overlap.
 * Neither of the first two needs the other first (reconcile settles either
 * one alone). */
static int
record_part (size_t part, void *ctx, ov_error_t *err)
{
  struct record_job *j = ctx;
  if (part == 2)
    return j->beside->fn (j->u, j->beside->ctx, err);
  if (part == 1)
    {
      if (ov_ctree_root_put (j->t->c, j->id, j->snap, err) < 0)
        return -1;
      j->written[1] = true;
      return 0;
    }
  char name[32], hex[OV_OID_STR + 1];
  snprintf (name, sizeof name, "t/%llu", (unsigned long long) j->id);
  oid_hex (j->snap, hex);
  strcat (hex, "\n");
  if (ov_replace_file (j->t->rootfd, name, "trash", hex, strlen (hex)) < 0)
    return ov_error (err, errno, "write %s/%s", j->t->l.root, name);
  j->written[0] = true;
  ov_fault ("ctree-recorded");
  return 0;
}

static int
record (struct tl *t, uint64_t id, const struct ov_oid *snap, const struct ov_commit_beside *beside,
        const struct ov_usage *u, ov_error_t *err)
{
  struct record_job j = { t, id, snap, { false, false }, beside, u };
  if (ov_pool_run (beside ? 3 : 2, record_part, &j, err) < 0)
    {
      char name[32];
      snprintf (name, sizeof name, "t/%llu", (unsigned long long) id);
      if (j.written[0])
        unlinkat (t->rootfd, name, 0);
      ov_error_t e = NULL;
      if (j.written[1] && ov_ctree_root_drop (t->c, id, &e) < 0)
        ov_error_free (&e); /* reconcile drops it */
      return -1;
    }
  ov_trace ("ctd commit: recorded");
  ov_fault ("ctree-rooted");
  forget (t, id);
  t->m = xrealloc (t->m, (t->n + 1) * sizeof *t->m);
  t->m[t->n++] = (struct entry){ id, *snap };
  return 0;
}

static void
usage_of (const struct ov_ctree_info *s, const struct ov_ctree_info *p, struct ov_usage *u)
{
  /* the layer's own share, as containerd counts a committed layer: what
   * its tree holds beyond its parent's */
  uint64_t pb = p ? p->bytes : 0, pi = p ? p->inodes : 0;
  u->size = s->bytes > pb ? (int64_t) (s->bytes - pb) : 0;
  u->inodes = s->inodes > pi ? (int64_t) (s->inodes - pi) : 0;
}

static int
tree_commit (struct ov_layers *l, uint64_t id, uint64_t parent, const char *upper,
             const struct ov_commit_beside *beside, struct ov_usage *u, ov_error_t *err)
{
  struct tl *t = (struct tl *) l;
  struct entry *pe = parent ? get (t, parent) : NULL;
  if (parent && pe == NULL)
    return t->dir->ops->commit (t->dir, id, parent, upper, beside, u, err);
  struct ov_oid snap;
  struct ov_ctree_info si, pi;
  /* the store lock, shared, from the capture until the snapshot is a gc
   * root: a gc in between would take its objects for garbage */
  struct ov_store *held = ov_store_session (t->c->node->store);
  ov_trace ("ctd commit: start");
  int r = ov_store_lock (held, false, err);
  ov_trace ("ctd commit: store locked");
  if (r == 0)
    r = ov_ctree_capture (t->c, pe ? &pe->snap : NULL, upper, &snap, err);
  ov_trace ("ctd commit: captured");
  if (r == 0)
    ov_fault ("ctree-captured");
  if (r == 0
      && (ov_ctree_info (t->c, &snap, &si, err) < 0 || (pe && ov_ctree_info (t->c, &pe->snap, &pi, err) < 0)))
    r = -1;
  if (r == 0)
    {
      usage_of (&si, pe ? &pi : NULL, u);
      r = record (t, id, &snap, beside, u, err);
    }
  ov_trace ("ctd commit: info+recorded");
  ov_store_close (held);
  return r < 0 ? -1 : 1;
}

static char *
tree_lower (struct ov_layers *l, uint64_t id)
{
  struct tl *t = (struct tl *) l;
  return t->dir->ops->lower (t->dir, id);
}

static int
tree_lowers (struct ov_layers *l, uint64_t id, char ***dirs, size_t *n, ov_error_t *err)
{
  struct tl *t = (struct tl *) l;
  struct entry *e = get (t, id);
  if (e == NULL)
    return 0;
  if (ov_ctree_lowers (t->c, &e->snap, dirs, n, err) < 0)
    return -1;
  return 1;
}

static bool
tree_owns (struct ov_layers *l, uint64_t id)
{
  return get ((struct tl *) l, id) != NULL;
}

static int
unrecord (struct tl *t, uint64_t id, ov_error_t *err)
{
  char name[32];
  snprintf (name, sizeof name, "t/%llu", (unsigned long long) id);
  forget (t, id);
  if (unlinkat (t->rootfd, name, 0) < 0 && errno != ENOENT)
    return ov_error (err, errno, "remove %s/%s", t->l.root, name);
  ov_fault ("ctree-unrecorded");
  return ov_ctree_root_drop (t->c, id, err);
}

static int
tree_remove (struct ov_layers *l, uint64_t id, ov_error_t *err)
{
  struct tl *t = (struct tl *) l;
  if (get (t, id) == NULL)
    return 0;
  return unrecord (t, id, err);
}

static void
tree_ref (struct ov_layers *l, uint64_t id, const char *chainid)
{
  struct tl *t = (struct tl *) l;
  struct entry *e = get (t, id);
  if (e == NULL || !ov_ctree_chainid_ok (chainid))
    return;
  ov_error_t err = NULL;
  if (ov_ctree_ref_put (t->c, chainid, &e->snap, &err) < 0)
    {
      fprintf (stderr, "ovsnap-snapshotter: warning: chain id %s: %s\n", chainid, err->msg);
      ov_error_free (&err);
    }
}

static int
tree_shortcut (struct ov_layers *l, uint64_t id, uint64_t parent, const char *chainid,
               struct ov_usage *u, ov_error_t *err)
{
  struct tl *t = (struct tl *) l;
  struct entry *pe = parent ? get (t, parent) : NULL;
  if (parent && pe == NULL)
    return 0;
  struct ov_oid snap;
  int r = ov_ctree_ref_get (t->c, chainid, &snap, err);
  if (r <= 0)
    return r;
  struct ov_ctree_info si, pi, spi;
  ov_error_t e = NULL;
  if (ov_ctree_info (t->c, &snap, &si, &e) < 0)
    {
      ov_error_free (&e);
      return 0;
    }
  /* the layer must stand on the same tree as the parent asked for */
  if (pe)
    {
      if (!si.has_parent || ov_ctree_info (t->c, &si.parent, &spi, &e) < 0
          || ov_ctree_info (t->c, &pe->snap, &pi, &e) < 0 || !oid_eq (&spi.tree, &pi.tree))
        {
          ov_error_free (&e);
          return 0;
        }
    }
  else if (si.has_parent)
    return 0;
  usage_of (&si, pe ? &pi : NULL, u);
  if (record (t, id, &snap, NULL, NULL, err) < 0)
    return -1;
  return 1;
}

struct rec
{
  struct tl *t;
  bool (*committed) (uint64_t id, void *ctx);
  void *ctx;
  ov_error_t *err;
  int r;
  bool *rooted; /* reconcile: t->m[i] has its store root */
};

static int
load_one (int dirfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct rec *w = ctx;
  char *end;
  errno = 0;
  unsigned long long id = strtoull (name, &end, 10);
  if (*end || name[0] < '1' || name[0] > '9' || errno)
    {
      unlinkat (dirfd, name, 0); /* not a record of ours */
      return 0;
    }
  struct ov_buf b = { 0 };
  cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct ov_oid snap;
  if (fd < 0 || ov_read_fd (fd, &b, 256) < 0)
    w->r = ov_error (w->err, errno, "read %s/t/%s", w->t->l.root, name);
  else if (ov_ctree_parse_oid (b.data, b.len, &snap) < 0)
    w->r = ov_corrupt (w->err, "%s/t/%s: not a snapshot id", w->t->l.root, name);
  else
    {
      w->t->m = xrealloc (w->t->m, (w->t->n + 1) * sizeof *w->t->m);
      w->t->m[w->t->n++] = (struct entry){ id, snap };
    }
  buf_free (&b);
  return w->r < 0 ? -1 : 0;
}

static int
root_one (uint64_t id, void *ctx)
{
  struct rec *w = ctx;
  struct entry *e = get (w->t, id);
  if (e)
    w->rooted[e - w->t->m] = true;
  else if (ov_ctree_root_drop (w->t->c, id, w->err) < 0)
    w->r = -1;
  return 0;
}

static int
tree_reconcile (struct ov_layers *l, bool (*committed) (uint64_t id, void *ctx), void *ctx,
                ov_error_t *err)
{
  struct tl *t = (struct tl *) l;
  struct rec w = { t, committed, ctx, err, 0, NULL };
  /* records of snapshots not committed (an interrupted Commit) or gone (an
   * interrupted Remove) */
  for (size_t i = 0; i < t->n;)
    {
      if (committed (t->m[i].id, ctx))
        i++;
      else if (unrecord (t, t->m[i].id, err) < 0)
        return -1;
    }
  /* store roots of ours with no record; records whose root was lost (only
   * those: containerd calls Cleanup after every gc, and each root written
   * costs two fsyncs) */
  cleanup_free bool *rooted = xcalloc (t->n + 1, sizeof *rooted);
  w.rooted = rooted;
  if (ov_ctree_roots (t->c, root_one, &w, err) < 0 || w.r < 0)
    return -1;
  for (size_t i = 0; i < t->n; i++)
    if (!rooted[i] && ov_ctree_root_put (t->c, t->m[i].id, &t->m[i].snap, err) < 0)
      return -1;
  return 0;
}

static void
tree_close (struct ov_layers *l)
{
  struct tl *t = (struct tl *) l;
  if (t->dir)
    t->dir->ops->close (t->dir);
  ov_ctree_close (t->c);
  if (t->rootfd >= 0)
    close (t->rootfd);
  free (t->m);
  free (l->root);
  free (t);
}

static const struct ov_layers_ops tree_ops = {
  tree_commit, tree_lower, tree_remove, tree_close, tree_lowers, tree_owns, tree_ref,
  tree_shortcut, tree_reconcile,
};

/* <root>/instance: made once, random */
static int
instance (int rootfd, const char *root, char out[OV_CTREE_INSTANCE_MAX + 1], ov_error_t *err)
{
  cleanup_close int fd = openat (rootfd, "instance", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0)
    {
      struct ov_buf b = { 0 };
      int r = ov_read_fd (fd, &b, 64);
      size_t n = b.len;
      if (r == 0 && n >= 2 && n <= OV_CTREE_INSTANCE_MAX + 1 && b.data[n - 1] == '\n'
          && strspn ((char *) b.data, "0123456789abcdef") == n - 1)
        {
          memcpy (out, b.data, n - 1);
          out[n - 1] = '\0';
          buf_free (&b);
          return 0;
        }
      buf_free (&b);
      return ov_corrupt (err, "%s/instance: not 1-32 hex digits", root);
    }
  if (errno != ENOENT)
    return ov_error (err, errno, "open %s/instance", root);
  uint8_t rnd[8];
  if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd)
    return ov_error (err, errno, "getrandom");
  for (size_t i = 0; i < sizeof rnd; i++)
    snprintf (out + 2 * i, 3, "%02x", rnd[i]);
  char line[OV_CTREE_INSTANCE_MAX + 2];
  snprintf (line, sizeof line, "%s\n", out);
  if (ov_replace_file (rootfd, "instance", "trash", line, strlen (line)) < 0)
    return ov_error (err, errno, "write %s/instance", root);
  return 0;
}

int
ov_layers_tree_new (struct ov_layers **out, const char *root, const char *node_root,
                    const char *store_url, ov_error_t *err)
{
  struct tl *t = xcalloc (1, sizeof *t);
  t->l.ops = &tree_ops;
  t->l.root = xstrdup (root);
  t->dir = ov_layers_dir_new (root);
  t->rootfd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char inst[OV_CTREE_INSTANCE_MAX + 1];
  struct rec w = { t, NULL, NULL, err, 0, NULL };
  if (t->rootfd < 0)
    ov_error (err, errno, "open %s", root);
  else if ((mkdirat (t->rootfd, "t", 0700) < 0 && errno != EEXIST))
    ov_error (err, errno, "create %s/t", root);
  else if (instance (t->rootfd, root, inst, err) < 0)
    ;
  else if (ov_ctree_open (&t->c, node_root, store_url, inst, err) < 0)
    ov_error_prefix (err, "node %s", node_root);
  else if (ov_dir_each_at (t->rootfd, "t", false, load_one, &w) < 0 && w.r == 0)
    ov_error (err, errno, "read %s/t", root);
  else if (w.r == 0)
    {
      *out = &t->l;
      return 0;
    }
  tree_close (&t->l);
  return -1;
}
