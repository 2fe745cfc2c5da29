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

static int
diff_trees (struct diff *d, const char *path, const struct ov_entry *a, const struct ov_entry *b,
            ov_error_t *err)
{
  struct ov_tree ta, tb;
  if (tree_load (d->s, &a->oid, &ta, err) < 0)
    return -1;
  if (tree_load (d->s, &b->oid, &tb, err) < 0)
    {
      tree_free (&ta);
      return -1;
    }
  int r = 0;
  size_t i = 0, j = 0;
  while (r == 0 && (i < ta.n || j < tb.n))
    {
      int c = i == ta.n ? 1 : j == tb.n ? -1 : strcmp (ta.e[i].name, tb.e[j].name);
      const char *name = c <= 0 ? ta.e[i].name : tb.e[j].name;
      cleanup_free char *p = child_path (path, name);
      if (c < 0)
        r = report_all (d, OV_DIFF_DELETED, p, &ta.e[i++], err);
      else if (c > 0)
        r = report_all (d, OV_DIFF_ADDED, p, &tb.e[j++], err);
      else
        {
          const struct ov_entry *x = &ta.e[i++], *y = &tb.e[j++];
          if (x->type == OV_DIR && y->type == OV_DIR)
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
          else
            {
              /* hardlink renumbering alone is not a change a user sees */
              struct ov_entry xx = *x;
              xx.link_id = y->link_id;
              if (!entry_same (&xx, y))
                r = d->cb (OV_DIFF_MODIFIED, p, x, y, d->ctx);
            }
        }
    }
  tree_free (&ta);
  tree_free (&tb);
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
