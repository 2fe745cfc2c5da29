/* The engine side of committed snapshots as trees (ctree.h). */
#include "ctree.h"
#include "changeset.h"
#include "fault.h"
#include "ingest.h"
#include "layer.h"
#include "node.h"
#include "sandbox.h"
#include "snapshot.h"

#include <fcntl.h>
#include <stdio.h>

int
ov_ctree_parse_oid (const uint8_t *p, size_t n, struct ov_oid *out)
{
  char hex[OV_OID_STR];
  if (n < 2 || n > sizeof hex || p[n - 1] != '\n')
    return -1;
  memcpy (hex, p, n - 1);
  hex[n - 1] = '\0';
  if (strlen (hex) != n - 1)
    return -1;
  return oid_parse (hex, out);
}

static void
oid_line (const struct ov_oid *id, struct ov_buf *b)
{
  char hex[OV_OID_STR];
  oid_hex (id, hex);
  buf_put (b, hex, strlen (hex));
  buf_u8 (b, '\n');
}

int
ov_ctree_open (struct ov_ctree **out, const char *node_root, const char *store_url,
               const char *instance, ov_error_t *err)
{
  size_t il = strlen (instance);
  if (il == 0 || il > OV_CTREE_INSTANCE_MAX || strspn (instance, "0123456789abcdef") != il)
    return ov_error_set (err, OV_EUSAGE, 0, "instance id \"%.40s\": not 1-32 hex digits", instance);
  struct ov_ctree *c = xcalloc (1, sizeof *c);
  memcpy (c->instance, instance, il + 1);
  int r;
  if (store_url && store_url[0] == '/')
    {
      /* a local store directory of its own, shared with other nodes */
      struct ov_store *s;
      r = ov_store_open (&s, store_url, OV_STORE_CREATE, err);
      if (r == 0 && (r = ov_node_open (&c->node, node_root, s, err)) < 0)
        ov_store_close (s);
      if (r == 0)
        c->node->owns_store = true;
    }
  else
    r = ov_node_open_store (&c->node, node_root, store_url, OV_STORE_CREATE, err);
  if (r < 0)
    {
      free (c);
      return -1;
    }
  *out = c;
  return 0;
}

void
ov_ctree_close (struct ov_ctree *c)
{
  if (c == NULL)
    return;
  ov_node_close (c->node);
  free (c);
}

/* --- capture ------------------------------------------------------------------------------ */

struct capture_job
{
  struct ov_store *s;
  const struct ov_snapshot *parent; /* NULL: none */
  const char *upper;
};

/* In the sandbox: the upper is what a container wrote. */
static int
capture_worker (void *ctx, struct ov_buf *result, ov_error_t *err)
{
  struct capture_job *j = ctx;
  struct ov_store *s = j->s;
  struct ov_manifest prev = { 0 };
  struct ov_ingest_opts opts = { .upper = true, .prev = &prev };
  struct ov_change ch = { 0 };
  struct ov_snapshot snap = { 0 };
  uint64_t nlinks = 1;
  ov_trace ("ctd worker: started");
  int r = ov_fail_err ("ctree-ingest", err);
  if (r == 0)
    r = ov_ingest (s, AT_FDCWD, j->upper, &opts, &nlinks, &ch, NULL, err);
  nlinks--;
  if (r < 0)
    goto out;
  uint64_t first = j->parent ? j->parent->next_link_id : 1;
  change_renumber_links (&ch, first - 1);
  bool gone = false;
  if (changeset_apply (s, j->parent ? &j->parent->root : NULL, &ch, &snap.root, &gone, err) < 0)
    {
      r = -1;
      goto out;
    }
  ov_trace ("ctd worker: applied");
  if (gone)
    {
      r = ov_error (err, 0, "the upper %s is no directory", j->upper);
      goto out;
    }
  snap.volume = xstrdup ("containerd");
  snap.has_parent = j->parent != NULL;
  if (j->parent)
    snap.parent = j->parent->id;
  snap.time_ns = now_ns ();
  snap.next_link_id = first + nlinks;
  snap.message = xstrdup ("");
  r = ov_store_sync (s, err);
  ov_trace ("ctd worker: synced");
  if (r == 0)
    r = ov_snapshot_store (s, &snap, err);
  ov_trace ("ctd worker: snapshot stored");
  if (r == 0)
    r = ov_store_sync (s, err);
  ov_trace ("ctd worker: synced again");
  if (r == 0)
    {
      oid_line (&snap.id, result);
      ov_sandbox_reply (result);
    }
out:
  change_free (&ch);
  snapshot_free (&snap);
  return r;
}

int
ov_ctree_capture (struct ov_ctree *c, const struct ov_oid *parent, const char *upper,
                  struct ov_oid *out, ov_error_t *err)
{
  struct ov_store *sess = ov_store_session (c->node->store);
  struct ov_snapshot p = { 0 };
  struct ov_buf res = { 0 };
  int r = 0;
  if (parent)
    r = ov_snapshot_load (sess, parent, &p, err);
  ov_trace ("ctd commit: parent loaded");
  if (r == 0)
    {
      struct capture_job job = { sess, parent ? &p : NULL, upper };
      ov_sandbox_allow_network (sess->be->remote); /* the worker writes the store itself */
      r = ov_sandbox_run (upper, capture_worker, &job, &res, err);
      ov_trace ("ctd commit: worker replied");
    }
  if (r == 0 && ov_ctree_parse_oid (res.data, res.len, out) < 0)
    r = ov_error (err, 0, "capture worker: unexpected reply");
  buf_free (&res);
  if (parent)
    snapshot_free (&p);
  ov_store_close (sess);
  if (r < 0)
    return ov_error_prefix (err, "capture %s", upper);
  return 0;
}

int
ov_ctree_info (struct ov_ctree *c, const struct ov_oid *id, struct ov_ctree_info *out,
               ov_error_t *err)
{
  struct ov_snapshot s;
  if (ov_snapshot_load (c->node->store, id, &s, err) < 0)
    return -1;
  out->snap = s.id;
  out->tree = s.root.oid;
  out->has_parent = s.has_parent;
  out->parent = s.parent;
  out->bytes = s.root.size;
  out->inodes = snapshot_inodes (&s);
  snapshot_free (&s);
  return 0;
}

int
ov_ctree_lowers (struct ov_ctree *c, const struct ov_oid *id, char ***dirs, size_t *n,
                 ov_error_t *err)
{
  struct ov_snapshot s, p;
  if (ov_snapshot_load (c->node->store, id, &s, err) < 0)
    return -1;
  struct ov_oid base;
  bool has_base = false;
  if (s.has_parent)
    {
      ov_error_t e = NULL;
      if (ov_snapshot_load (c->node->store, &s.parent, &p, &e) == 0)
        {
          base = p.root.oid;
          has_base = true;
          snapshot_free (&p);
        }
      ov_error_free (&e); /* no base: the layer is built whole */
    }
  struct ov_layers l;
  int r = ov_layers_get (c->node, &s, has_base ? &base : NULL, &l, err);
  snapshot_free (&s);
  if (r < 0)
    return -1;
  *dirs = xcalloc (1, sizeof **dirs);
  r = ov_layers_mount_dir (c->node, &l, &(*dirs)[0], err);
  ov_layers_free (&l);
  if (r < 0)
    {
      free (*dirs);
      return -1;
    }
  *n = 1;
  return 0;
}

/* --- records ------------------------------------------------------------------------------ */

/* Every record here is one line, "<snapshot hex>\n", under a store key. */
static int
line_put (struct ov_ctree *c, const char *key, const struct ov_oid *snap, ov_error_t *err)
{
  struct ov_buf b = { 0 };
  oid_line (snap, &b);
  int r = ov_store_put_named (c->node->store, key, &b, err);
  buf_free (&b);
  return r;
}

/* 1 and *snap if key holds a well-formed line, 0 if it is absent or
 * unreadable (a warning when malformed). */
static int
line_get (struct ov_ctree *c, const char *key, struct ov_oid *snap)
{
  struct ov_buf b = { 0 };
  ov_error_t e = NULL;
  int r = ov_store_get_named (c->node->store, key, &b, &e);
  ov_error_free (&e);
  if (r == 0 && ov_ctree_parse_oid (b.data, b.len, snap) < 0)
    {
      fprintf (stderr, "ovsnap-snapshotter: warning: %s: malformed; ignored\n", key);
      r = -1;
    }
  buf_free (&b);
  return r == 0;
}

static void
root_key (struct ov_ctree *c, uint64_t id, char key[96])
{
  snprintf (key, 96, "containerd/roots/%s/%llu", c->instance, (unsigned long long) id);
}

int
ov_ctree_root_put (struct ov_ctree *c, uint64_t id, const struct ov_oid *snap, ov_error_t *err)
{
  char key[96];
  root_key (c, id, key);
  return line_put (c, key, snap, err);
}

int
ov_ctree_root_drop (struct ov_ctree *c, uint64_t id, ov_error_t *err)
{
  char key[96];
  root_key (c, id, key);
  ov_error_t e = NULL;
  if (ov_store_remove_named (c->node->store, key, &e) < 0)
    {
      if (errno == ENOENT || (e && e->code == OV_ENOTFOUND))
        {
          ov_error_free (&e);
          return 0;
        }
      *err = e;
      return -1;
    }
  return 0;
}

struct roots_ctx
{
  size_t plen;
  int (*cb) (uint64_t id, void *ctx);
  void *ctx;
};

static int
roots_cb (const char *key, uint64_t size UNUSED, void *ctx)
{
  struct roots_ctx *r = ctx;
  const char *name = key + r->plen;
  char *end;
  errno = 0;
  unsigned long long id = strtoull (name, &end, 10);
  if (*end || name[0] < '1' || name[0] > '9' || errno)
    return 0; /* not ours (a temp file) */
  return r->cb (id, r->ctx);
}

int
ov_ctree_roots (struct ov_ctree *c, int (*cb) (uint64_t id, void *ctx), void *ctx,
                ov_error_t *err)
{
  char prefix[96];
  snprintf (prefix, sizeof prefix, "containerd/roots/%s/", c->instance);
  struct stat st;
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/%s", c->node->store->root, prefix);
  if (strcmp (c->node->store->be->name, "local") == 0 && stat (path, &st) < 0 && errno == ENOENT)
    return 0;
  struct roots_ctx r = { strlen (prefix), cb, ctx };
  return ov_store_list_named (c->node->store, prefix, roots_cb, &r, err) < 0 ? -1 : 0;
}

bool
ov_ctree_chainid_ok (const char *s)
{
  size_t a = strspn (s, "abcdefghijklmnopqrstuvwxyz0123456789");
  if (a == 0 || a > 32 || s[a] != ':')
    return false;
  const char *v = s + a + 1;
  size_t n = strlen (v);
  return n >= 1 && n <= 128
         && strspn (v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=_-") == n;
}

int
ov_ctree_ref_put (struct ov_ctree *c, const char *chainid, const struct ov_oid *snap,
                  ov_error_t *err)
{
  if (!ov_ctree_chainid_ok (chainid))
    return ov_error_set (err, OV_EUSAGE, 0, "chain id \"%.80s\": malformed", chainid);
  cleanup_free char *key = xasprintf ("containerd/refs/%s", chainid);
  return line_put (c, key, snap, err);
}

int
ov_ctree_ref_get (struct ov_ctree *c, const char *chainid, struct ov_oid *snap, ov_error_t *err)
{
  (void) err; /* absent, unreadable or collected since: unpack as usual */
  if (!ov_ctree_chainid_ok (chainid))
    return 0;
  cleanup_free char *key = xasprintf ("containerd/refs/%s", chainid);
  if (!line_get (c, key, snap))
    return 0;
  ov_error_t e = NULL;
  struct ov_snapshot s;
  if (ov_snapshot_load (c->node->store, snap, &s, &e) < 0)
    {
      ov_error_free (&e);
      return 0;
    }
  /* the whole tree must be there: its root at least */
  struct ov_tree t;
  int r = tree_load (c->node->store, &s.root.oid, &t, &e);
  snapshot_free (&s);
  ov_error_free (&e);
  if (r < 0)
    return 0;
  tree_free (&t);
  return 1;
}
