#include "diff.h"

#include <stdio.h>

struct diff
{
  struct ov_store *s;
  ov_diff_cb cb;
  void *ctx;
};

static char *
child_path (const char *dir, const char *name)
{
  return dir[0] ? xasprintf ("%s/%s", dir, name) : xstrdup (name);
}

/* Report every path of a subtree as added (a == NULL side) or deleted. */
static int
report_all (struct diff *d, enum ov_diff_kind kind, const char *path, const struct ov_entry *e,
            ov_error_t *err)
{
  if (d->cb (kind, path, kind == OV_DIFF_DELETED ? e : NULL, kind == OV_DIFF_ADDED ? e : NULL,
             d->ctx))
    return 1;
  if (e->type != OV_DIR)
    return 0;
  struct ov_tree t;
  if (tree_load (d->s, &e->oid, &t, err) < 0)
    return -1;
  int r = 0;
  for (size_t i = 0; r == 0 && i < t.n; i++)
    {
      cleanup_free char *p = child_path (path, t.e[i].name);
      r = report_all (d, kind, p, &t.e[i], err);
    }
  tree_free (&t);
  return r;
}

int
ov_tree_pair_open (struct ov_store *s, const struct ov_oid *a, const struct ov_oid *b,
                   struct ov_tree_pair *p, ov_error_t *err)
{
  memset (p, 0, sizeof *p);
  if (tree_load (s, a, &p->a, err) < 0)
    return -1;
  if (tree_load (s, b, &p->b, err) < 0)
    {
      tree_free (&p->a);
      return -1;
    }
  return 0;
}

bool
ov_tree_pair_next (struct ov_tree_pair *p, const struct ov_entry **a, const struct ov_entry **b)
{
  if (p->i == p->a.n && p->j == p->b.n)
    return false;
  int c = p->i == p->a.n ? 1 : p->j == p->b.n ? -1 : strcmp (p->a.e[p->i].name, p->b.e[p->j].name);
  *a = c <= 0 ? &p->a.e[p->i++] : NULL;
  *b = c >= 0 ? &p->b.e[p->j++] : NULL;
  return true;
}

void
ov_tree_pair_close (struct ov_tree_pair *p)
{
  tree_free (&p->a);
  tree_free (&p->b);
}

bool
entry_same_but_link (const struct ov_entry *a, const struct ov_entry *b)
{
  struct ov_entry aa = *a;
  aa.link_id = b->link_id;
  return entry_same (&aa, b);
}

static int
diff_trees (struct diff *d, const char *path, const struct ov_entry *a, const struct ov_entry *b,
            ov_error_t *err)
{
  struct ov_tree_pair tp;
  if (ov_tree_pair_open (d->s, &a->oid, &b->oid, &tp, err) < 0)
    return -1;
  int r = 0;
  const struct ov_entry *x, *y;
  while (r == 0 && ov_tree_pair_next (&tp, &x, &y))
    {
      cleanup_free char *p = child_path (path, x ? x->name : y->name);
      if (y == NULL)
        r = report_all (d, OV_DIFF_DELETED, p, x, err);
      else if (x == NULL)
        r = report_all (d, OV_DIFF_ADDED, p, y, err);
      else if (x->type == OV_DIR && y->type == OV_DIR)
        {
          if (!entry_meta_same (x, y))
            r = d->cb (OV_DIFF_MODIFIED, p, x, y, d->ctx);
          if (r == 0 && !oid_eq (&x->oid, &y->oid))
            r = diff_trees (d, p, x, y, err);
        }
      else if (x->type == OV_DIR || y->type == OV_DIR)
        {
          r = report_all (d, OV_DIFF_DELETED, p, x, err);
          if (r == 0)
            r = report_all (d, OV_DIFF_ADDED, p, y, err);
        }
      else if (!entry_same_but_link (x, y))
        r = d->cb (OV_DIFF_MODIFIED, p, x, y, d->ctx);
    }
  ov_tree_pair_close (&tp);
  return r;
}

int
ov_diff (struct ov_store *s, const struct ov_entry *a, const struct ov_entry *b, ov_diff_cb cb,
         void *ctx, ov_error_t *err)
{
  struct diff d = { s, cb, ctx };
  if (oid_eq (&a->oid, &b->oid))
    return 0;
  int r = diff_trees (&d, "", a, b, err);
  return r < 0 ? -1 : 0;
}
