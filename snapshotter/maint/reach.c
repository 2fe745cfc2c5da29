#include "reach.h"
#include "changeset.h"
#include "heads.h"
#include "volume.h"

#include <string.h>

#include <stdio.h>

/* In fsck mode a failure is reported and swallowed; in gc mode it stops. */
static int
fail (struct ov_reach *r, ov_error_t *e, ov_error_t *err)
{
  if (r->problem)
    {
      r->problem ((*e)->msg, r->ctx);
      ov_error_free (e);
      return 0;
    }
  *err = *e;
  *e = NULL;
  return -1;
}

static int
mark_tree (struct ov_store *s, struct ov_reach *r, const struct ov_oid *id, ov_error_t *err)
{
  if (!oidset_add (&r->trees, id) || (r->known_bad && oidset_has (r->known_bad, id)))
    return 0;
  struct ov_tree t;
  ov_error_t e = NULL;
  if (tree_load (s, id, &t, &e) < 0)
    return fail (r, &e, err);
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < t.n; i++)
    {
      if (t.e[i].type == OV_REG)
        oidset_add (&r->blobs, &t.e[i].oid);
      else if (t.e[i].type == OV_DIR)
        ret = mark_tree (s, r, &t.e[i].oid, err);
    }
  tree_free (&t);
  return ret;
}

static void
skip_problem (const char *msg UNUSED, void *ctx UNUSED)
{
}

void
ov_reach_mark_trees (struct ov_store *s, struct ov_reach *r, const struct ov_oid *trees, size_t n)
{
  void (*problem) (const char *, void *) = r->problem;
  r->problem = skip_problem;
  for (size_t i = 0; i < n; i++)
    mark_tree (s, r, &trees[i], NULL);
  r->problem = problem;
}

static int
mark_snapshot (const struct ov_snapshot *snap, void *ctx)
{
  void **a = ctx;
  struct ov_store *s = a[0];
  struct ov_reach *r = a[1];
  ov_error_t *err = a[2];
  oidset_add (&r->snapshots, &snap->id);
  return mark_tree (s, r, &snap->root.oid, err) < 0 ? -1 : 0;
}

/* A snapshot a revision names: a fold may replay it (tree/heads.h). */
static int
mark_rev_snapshot (const struct ov_oid *id, void *ctx)
{
  void **a = ctx;
  struct ov_store *s = a[0];
  struct ov_reach *r = a[1];
  if (oidset_has (&r->snapshots, id))
    return 0;
  struct ov_snapshot snap;
  if (ov_snapshot_load (s, id, &snap, a[2]) < 0)
    return -1;
  int ret = mark_snapshot (&snap, ctx);
  snapshot_free (&snap);
  return ret;
}

static int
mark_volume (const struct ov_volume *v, void *ctx)
{
  void **a = ctx;
  struct ov_store *s = a[0];
  struct ov_reach *r = a[1];
  r->volumes++;
  ov_error_t e = NULL;
  void *args[3] = { s, r, &e };
  if (ov_volume_history (s, v, mark_snapshot, args, &e) < 0)
    return fail (r, &e, a[2]);
  if (ov_store_has_revs (s) && ov_heads_each_snapshot (s, v->name, mark_rev_snapshot, args, &e) < 0)
    return fail (r, &e, a[2]);
  return 0;
}

struct names
{
  char **v;
  size_t n;
};

static int
name_cb (const char *key, uint64_t size UNUSED, void *ctx)
{
  struct names *n = ctx;
  n->v = xrealloc (n->v, (n->n + 1) * sizeof *n->v);
  n->v[n->n++] = xstrdup (key + strlen ("volumes/"));
  return 0;
}

int
ov_reach_parse_oid_line (const uint8_t *p, size_t n, struct ov_oid *out)
{
  char hex[OV_OID_STR];
  if (n < 2 || n > sizeof hex || p[n - 1] != '\n' || memchr (p, '\0', n))
    return -1;
  memcpy (hex, p, n - 1);
  hex[n - 1] = '\0';
  return oid_parse (hex, out);
}

struct keys
{
  char **v;
  size_t n;
};

static int
key_cb (const char *key, uint64_t size UNUSED, void *ctx)
{
  struct keys *k = ctx;
  const char *base = strrchr (key, '/');
  if (base && base[1] == '.')
    return 0;
  k->v = xrealloc (k->v, (k->n + 1) * sizeof *k->v);
  k->v[k->n++] = xstrdup (key);
  return 0;
}

static void
keys_free (struct keys *k)
{
  for (size_t i = 0; i < k->n; i++)
    free (k->v[i]);
  free (k->v);
}

/* a record naming a snapshot: 0 and *id, or -1 with e set */
static int
read_oid_record (struct ov_store *s, const char *key, struct ov_oid *id, ov_error_t *e)
{
  struct ov_buf b = { 0 };
  int ret = ov_store_get_named (s, key, &b, e);
  if (ret == 0 && ov_reach_parse_oid_line (b.data, b.len, id) < 0)
    ret = ov_corrupt (e, "%s: not a snapshot id", key);
  buf_free (&b);
  return ret;
}

/* The committed snapshots of containerd's snapshotter daemons. */
static int
mark_containerd (struct ov_store *s, struct ov_reach *r, ov_error_t *err)
{
  struct keys k = { 0 };
  if (ov_store_list_named (s, "containerd/roots/", key_cb, &k, err) < 0)
    return -1;
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < k.n; i++)
    {
      ov_error_t e = NULL;
      struct ov_oid id;
      struct ov_snapshot snap;
      if (read_oid_record (s, k.v[i], &id, &e) < 0 || ov_snapshot_load (s, &id, &snap, &e) < 0)
        {
          ov_error_prefix (&e, "%s", k.v[i]);
          ret = fail (r, &e, err);
          continue;
        }
      r->ctr_roots++;
      r->ctr_trees = xrealloc (r->ctr_trees, r->ctr_roots * sizeof *r->ctr_trees);
      r->ctr_trees[r->ctr_roots - 1] = snap.root.oid;
      void *args[3] = { s, r, &e };
      if (mark_snapshot (&snap, args) < 0)
        ret = fail (r, &e, err);
      snapshot_free (&snap);
    }
  keys_free (&k);
  return ret;
}

int
ov_reach_drop_stale_refs (struct ov_store *s, const struct ov_reach *r, ov_error_t *err)
{
  struct keys k = { 0 };
  if (ov_store_list_named (s, "containerd/refs/", key_cb, &k, err) < 0)
    return -1;
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < k.n; i++)
    {
      ov_error_t e = NULL;
      struct ov_oid id;
      if (read_oid_record (s, k.v[i], &id, &e) < 0 || !oidset_has (&r->snapshots, &id))
        {
          ov_error_free (&e);
          ret = ov_store_remove_named (s, k.v[i], err);
        }
    }
  keys_free (&k);
  return ret;
}

static int mark_volumes (struct ov_store *s, struct ov_reach *r, ov_error_t *err);

int
ov_reach_mark (struct ov_store *s, struct ov_reach *r, ov_error_t *err)
{
  if (mark_volumes (s, r, err) < 0)
    return -1;
  return mark_containerd (s, r, err);
}

static int
mark_volumes (struct ov_store *s, struct ov_reach *r, ov_error_t *err)
{
  struct names names = { 0 };
  if (ov_store_list_named (s, "volumes/", name_cb, &names, err) < 0)
    return -1;
  int ret = 0;
  for (size_t i = 0; i < names.n; i++)
    {
      struct ov_volume v;
      ov_error_t e = NULL;
      if (ret == 0)
        {
          if (ov_volume_load (s, names.v[i], &v, &e) < 0)
            {
              /* a listed name whose head folds to deleted (an edit raced
               * the delete) references nothing */
              if (e->code == OV_ENOTFOUND)
                ov_error_free (&e);
              else
                ret = fail (r, &e, err);
            }
          else
            {
              void *args[3] = { s, r, err };
              ret = mark_volume (&v, args);
              volume_free (&v);
            }
        }
      free (names.v[i]);
    }
  free (names.v);
  return ret;
}

void
ov_reach_free (struct ov_reach *r)
{
  oidset_free (&r->snapshots);
  oidset_free (&r->trees);
  oidset_free (&r->blobs);
  free (r->ctr_trees);
  r->ctr_trees = NULL;
}
