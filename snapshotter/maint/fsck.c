#include "maint.h"
#include "changeset.h"
#include "pack.h"
#include "pool.h"
#include "reach.h"
#include "snapshot.h"

#include <pthread.h>
#include <stdio.h>

struct found
{
  struct ov_oid id;
  uint64_t size;
};

struct listing
{
  struct found *v;
  size_t n, cap;
};

static int
collect (const struct ov_oid *id, uint64_t size, void *ctx)
{
  struct listing *l = ctx;
  if (l->n == l->cap)
    {
      l->cap = l->cap ? l->cap * 2 : 1024;
      l->v = xrealloc (l->v, l->cap * sizeof *l->v);
    }
  l->v[l->n++] = (struct found){ *id, size };
  return 0;
}

struct check
{
  struct ov_store *s;
  enum ov_kind kind;
  struct listing *l;
  uint8_t *bad; /* per listing entry */
  char **msgs;
};

static int
check_one (size_t i, void *ctx, ov_error_t *err UNUSED)
{
  struct check *c = ctx;
  const struct ov_oid *id = &c->l->v[i].id;
  char key[PATH_MAX];
  ov_key (c->kind, id, key, sizeof key);
  ov_error_t e = NULL;
  if (c->kind == OV_BLOB)
    {
      int r = ov_store_verify (c->s, OV_BLOB, id, c->l->v[i].size, &e);
      if (r == 1)
        return 0;
      c->msgs[i] = xstrdup (e->msg);
    }
  else
    {
      struct ov_buf b = { 0 };
      int r = ov_store_get_record (c->s, c->kind, id, &b, &e);
      if (r == 0 && c->kind == OV_TREE_OBJ)
        {
          struct ov_tree t;
          r = tree_decode (b.data, b.len, &t, key, &e);
          if (r == 0)
            tree_free (&t);
        }
      else if (r == 0)
        {
          struct ov_snapshot snap;
          r = snapshot_decode (b.data, b.len, &snap, key, &e);
          if (r == 0)
            snapshot_free (&snap);
        }
      buf_free (&b);
      if (r == 0)
        return 0;
      c->msgs[i] = xstrdup (e->msg);
    }
  ov_error_free (&e);
  c->bad[i] = 1;
  return 0;
}

struct problems
{
  void (*fn) (const char *msg, void *ctx);
  void *ctx;
  uint64_t n;
};

static void
count_problem (const char *msg, void *ctx)
{
  struct problems *p = ctx;
  p->n++;
  p->fn (msg, p->ctx);
}

/* A remote store's objects come in parallel batches rather than one
 * request per check. Only a speed-up: after a damaged object fails the
 * batch, the checks fetch one by one and report each problem. */
static void
prefetch (struct ov_store *s, enum ov_kind kind, const struct listing *l)
{
  if (kind == OV_SNAPSHOT_REC)
    return;
  struct ov_obj_ref *refs = xmalloc ((l->n + 1) * sizeof *refs);
  for (size_t i = 0; i < l->n; i++)
    refs[i] = (struct ov_obj_ref){ kind, l->v[i].id, kind == OV_BLOB ? l->v[i].size : 0 };
  ov_error_t e = NULL;
  ov_store_prefetch (s, refs, l->n, &e);
  ov_error_free (&e);
  free (refs);
}

/* Verify every stored object of a kind; returns the listing for later. */
static int
check_kind (struct ov_store *s, enum ov_kind kind, struct listing *l, struct ov_oidset *badset,
            struct problems *p, ov_error_t *err)
{
  if (ov_store_each (s, kind, collect, l, err) < 0)
    return -1;
  prefetch (s, kind, l);
  struct check c = { s, kind, l, xcalloc (l->n + 1, 1), xcalloc (l->n + 1, sizeof (char *)) };
  int r = ov_pool_run (l->n, check_one, &c, err);
  for (size_t i = 0; i < l->n; i++)
    if (c.bad[i])
      {
        count_problem (c.msgs[i], p);
        oidset_add (badset, &l->v[i].id);
        free (c.msgs[i]);
      }
  free (c.bad);
  free (c.msgs);
  return r;
}

static void
missing (struct problems *p, enum ov_kind kind, const struct ov_oidset *referenced,
         const struct listing *stored)
{
  struct ov_oidset have = { 0 };
  for (size_t i = 0; i < stored->n; i++)
    oidset_add (&have, &stored->v[i].id);
  for (size_t i = 0; i < referenced->cap; i++)
    if (referenced->used[i] && !oidset_has (&have, &referenced->slots[i]))
      {
        char hex[OV_OID_STR];
        oid_hex (&referenced->slots[i], hex);
        char *msg = xasprintf ("%s %s: referenced but missing",
                               kind == OV_BLOB ? "object" : kind == OV_TREE_OBJ ? "tree" : "snapshot",
                               hex);
        count_problem (msg, p);
        free (msg);
      }
  oidset_free (&have);
}

int
ov_fsck (struct ov_store *s, void (*problem) (const char *msg, void *ctx), void *ctx,
         struct ov_fsck_result *res, ov_error_t *err)
{
  memset (res, 0, sizeof *res);
  struct problems p = { problem, ctx, 0 };
  struct listing blobs = { 0 }, trees = { 0 }, snaps = { 0 };
  struct ov_oidset bad = { 0 };
  int r = ov_packs_damaged (s, count_problem, &p, err);
  if (r == 0)
    r = check_kind (s, OV_BLOB, &blobs, &bad, &p, err);
  if (r == 0)
    r = check_kind (s, OV_TREE_OBJ, &trees, &bad, &p, err);
  if (r == 0)
    r = check_kind (s, OV_SNAPSHOT_REC, &snaps, &bad, &p, err);
  /* Trees already reported as bad are not reported again by the walk. */
  struct ov_reach reach = { .problem = count_problem, .ctx = &p, .known_bad = &bad };
  if (r == 0)
    r = ov_reach_mark (s, &reach, err);
  if (r == 0)
    {
      missing (&p, OV_BLOB, &reach.blobs, &blobs);
      missing (&p, OV_TREE_OBJ, &reach.trees, &trees);
      missing (&p, OV_SNAPSHOT_REC, &reach.snapshots, &snaps);
      res->volumes = reach.volumes;
      res->containerd_snapshots = reach.ctr_roots;
      res->snapshots = snaps.n;
      res->trees = trees.n;
      res->objects = blobs.n;
      for (size_t i = 0; i < blobs.n; i++)
        if (!oidset_has (&reach.blobs, &blobs.v[i].id))
          {
            res->garbage_objects++;
            res->garbage_bytes += blobs.v[i].size;
          }
      res->problems = p.n;
    }
  oidset_free (&bad);
  ov_reach_free (&reach);
  free (blobs.v);
  free (trees.v);
  free (snaps.v);
  return r;
}
