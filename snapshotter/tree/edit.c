/* Edits of a volume that read no local data (see edit.h). */
#include "edit.h"
#include "changeset.h"
#include "path.h"

#include <stdio.h>

/* ---- rm ---- */

struct rm_ctx
{
  struct ov_path path;
  const char *arg;
  bool recursive;
};

static int
rm_edit (struct ov_store *s, const struct ov_snapshot *head, struct ov_entry *root,
         uint64_t *next UNUSED, void *ctx, ov_error_t *err)
{
  struct rm_ctx *r = ctx;
  struct ov_entry e;
  if (tree_lookup (s, &head->root, r->path.comps, r->path.n, &e, err) < 0)
    return ov_error_prefix (err, "%s", r->arg);
  bool dir = e.type == OV_DIR;
  entry_free (&e);
  if (dir && !r->recursive)
    return ov_error_set (err, OV_EGENERIC, 0, "%s is a directory (use -r)", r->arg);
  struct ov_change top = { .op = OV_CH_DIR, .keep_meta = true };
  change_at (&top, r->path.comps, r->path.n)->op = OV_CH_DELETE;
  bool gone;
  int ret = changeset_apply (s, &head->root, &top, root, &gone, err);
  change_free (&top);
  return ret;
}

int
ov_rm (struct ov_store *s, const char *volume, const char *path, bool recursive,
       struct ov_snapshot *out, ov_error_t *err)
{
  struct rm_ctx r = { .arg = path, .recursive = recursive };
  if (ov_path_parse (path, &r.path, err) < 0)
    return -1;
  if (r.path.n == 0)
    {
      ov_path_free (&r.path);
      return ov_error_set (err, OV_EUSAGE, 0, "refusing to remove the volume root");
    }
  cleanup_free char *msg = xasprintf ("rm %s", path);
  int ret = ov_volume_update (s, volume, msg, rm_edit, &r, out, err);
  ov_path_free (&r.path);
  return ret < 0 ? ov_error_prefix (err, "volume '%s'", volume) : 0;
}


/* ---- cp ---- */

struct link_map
{
  uint64_t *from, *to;
  size_t n;
};

/* A copy must not join the source's hardlink groups: give every group in
 * the copied subtree a fresh id. Rewrites only trees that hold links. */
static int
fresh_links (struct ov_store *s, struct ov_entry *e, struct link_map *m, uint64_t *next,
             ov_error_t *err)
{
  if (e->type == OV_REG)
    {
      if (e->link_id == 0)
        return 0;
      for (size_t i = 0; i < m->n; i++)
        if (m->from[i] == e->link_id)
          {
            e->link_id = m->to[i];
            return 1;
          }
      m->from = xrealloc (m->from, (m->n + 1) * sizeof *m->from);
      m->to = xrealloc (m->to, (m->n + 1) * sizeof *m->to);
      m->from[m->n] = e->link_id;
      m->to[m->n++] = e->link_id = (*next)++;
      return 1;
    }
  if (e->type != OV_DIR)
    return 0;
  struct ov_tree t;
  if (tree_load (s, &e->oid, &t, err) < 0)
    return -1;
  int changed = 0;
  for (size_t i = 0; i < t.n; i++)
    {
      int r = fresh_links (s, &t.e[i], m, next, err);
      if (r < 0)
        {
          tree_free (&t);
          return -1;
        }
      changed |= r;
    }
  int r = changed ? tree_store (s, &t, e, err) : 0;
  tree_free (&t);
  return r < 0 ? -1 : changed;
}

struct cp_ctx
{
  struct ov_path *srcs;
  size_t nsrc;
  struct ov_path dst;
  const char *dst_arg;
};

static int
cp_edit (struct ov_store *s, const struct ov_snapshot *head, struct ov_entry *root,
         uint64_t *next, void *ctx, ov_error_t *err)
{
  struct cp_ctx *cp = ctx;
  struct ov_entry d = { 0 };
  ov_error_t e2 = NULL;
  bool into = false, missing = false;
  if (tree_lookup (s, &head->root, cp->dst.comps, cp->dst.n, &d, &e2) == 0)
    into = d.type == OV_DIR;
  else if (e2->code == OV_ENOTFOUND)
    missing = true;
  else
    {
      *err = e2;
      return -1;
    }
  entry_free (&d);
  ov_error_free (&e2);
  /* Several sources, or a DST ending in /: into that directory, made if
   * missing (as put's REMOTE/ is). */
  if (!into && (cp->nsrc > 1 || cp->dst.trailing_slash))
    {
      if (!missing)
        return ov_error_set (err, OV_EGENERIC, ENOTDIR, "target %s", cp->dst_arg);
      into = true;
    }
  else if (!into)
    {
      if (cp->dst.n == 0)
        return ov_error_set (err, OV_EUSAGE, 0, "cannot replace the volume root");
      struct ov_entry parent;
      if (tree_lookup (s, &head->root, cp->dst.comps, cp->dst.n - 1, &parent, err) < 0)
        return ov_error_prefix (err, "target %s", cp->dst_arg);
      bool ok = parent.type == OV_DIR;
      entry_free (&parent);
      if (!ok)
        return ov_error_set (err, OV_EGENERIC, ENOTDIR, "target %s", cp->dst_arg);
    }
  struct ov_change top = { .op = OV_CH_DIR, .keep_meta = true };
  int r = 0;
  for (size_t i = 0; r == 0 && i < cp->nsrc; i++)
    {
      struct ov_path *sp = &cp->srcs[i];
      struct ov_entry src;
      if (sp->n == 0)
        {
          r = ov_error_set (err, OV_EUSAGE, 0, "cannot copy the volume root");
          break;
        }
      r = tree_lookup (s, &head->root, sp->comps, sp->n, &src, err);
      if (r < 0)
        {
          char *p = ov_path_join (sp->comps, sp->n);
          ov_error_prefix (err, "%s", p);
          free (p);
          break;
        }
      struct link_map m = { 0 };
      r = fresh_links (s, &src, &m, next, err) < 0 ? -1 : 0;
      free (m.from);
      free (m.to);
      if (r == 0)
        {
          size_t n = cp->dst.n;
          char **comps = xcalloc (n + 1, sizeof *comps);
          memcpy (comps, cp->dst.comps, n * sizeof *comps);
          if (into)
            comps[n++] = sp->comps[sp->n - 1];
          struct ov_change *slot = change_at (&top, comps, n);
          free (comps);
          for (size_t k = 0; k < slot->n; k++)
            change_free (&slot->kids[k]);
          slot->n = 0;
          slot->op = OV_CH_SET;
          entry_free (&slot->entry);
          slot->entry = src;
        }
      else
        entry_free (&src);
    }
  bool gone;
  if (r == 0)
    r = changeset_apply (s, &head->root, &top, root, &gone, err);
  change_free (&top);
  return r;
}

int
ov_cp (struct ov_store *s, const char *volume, char *const *srcs, size_t nsrc, const char *dst,
       struct ov_snapshot *out, ov_error_t *err)
{
  struct cp_ctx cp = { .nsrc = nsrc, .dst_arg = dst };
  cp.srcs = xcalloc (nsrc + 1, sizeof *cp.srcs);
  int r = ov_path_parse (dst, &cp.dst, err);
  for (size_t k = 0; r == 0 && k < nsrc; k++)
    r = ov_path_parse (srcs[k], &cp.srcs[k], err);
  if (r == 0)
    {
      cleanup_free char *msg = xasprintf ("cp to %s", dst);
      r = ov_volume_update (s, volume, msg, cp_edit, &cp, out, err);
      if (r < 0)
        ov_error_prefix (err, "volume '%s'", volume);
    }
  for (size_t k = 0; k < nsrc; k++)
    ov_path_free (&cp.srcs[k]);
  free (cp.srcs);
  ov_path_free (&cp.dst);
  return r;
}

/* ---- rollback ---- */

static int
rollback_edit (struct ov_store *s, const struct ov_snapshot *head, struct ov_entry *root,
               uint64_t *next, void *ctx, ov_error_t *err)
{
  const struct ov_oid *target = ctx;
  struct ov_snapshot old;
  if (ov_snapshot_load (s, target, &old, err) < 0)
    return -1;
  entry_copy (root, &old.root);
  if (old.next_link_id > *next)
    *next = old.next_link_id;
  (void) head;
  snapshot_free (&old);
  return 0;
}

int
ov_rollback (struct ov_store *s, const char *volume, const char *spec, struct ov_snapshot *out,
             ov_error_t *err)
{
  struct ov_volume v;
  if (ov_volume_load (s, volume, &v, err) < 0)
    return -1;
  struct ov_oid target;
  int r = ov_volume_resolve (s, &v, spec, &target, err);
  volume_free (&v);
  if (r < 0)
    return -1;
  char hex[OV_OID_STR];
  oid_hex (&target, hex);
  cleanup_free char *msg = xasprintf ("rollback to %.12s", hex);
  return ov_volume_update (s, volume, msg, rollback_edit, &target, out, err);
}
