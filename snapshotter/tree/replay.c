/* Replaying one writer's edit onto a head it did not see (see replay.h). */
#include "replay.h"
#include "changeset.h"
#include "diff.h"

struct replay
{
  struct ov_change top;
  uint64_t base_next; /* hardlink groups from here on are the writer's new ones, */
  uint64_t shift;     /* moved past the ones `onto` made meanwhile */
};

/* Below a path that is deleted or replaced whole: ov_diff reports every
 * path of a deleted subtree, and the deletion of its top says it all. */
static bool
under_whole (struct ov_change *top, char **comps, size_t n)
{
  struct ov_change *c = top;
  for (size_t i = 0; i + 1 < n; i++)
    {
      c = c->op == OV_CH_DIR ? change_find (c, comps[i]) : NULL;
      if (c == NULL)
        return false;
      if (c->op == OV_CH_DELETE || c->op == OV_CH_SET)
        return true;
    }
  return false;
}

static int
diff_to_change (enum ov_diff_kind kind, const char *path, const struct ov_entry *a UNUSED,
                const struct ov_entry *b, void *ctx)
{
  struct replay *r = ctx;
  cleanup_free char *p = xstrdup (path);
  size_t n = 1;
  for (char *q = p; *q; q++)
    n += *q == '/';
  cleanup_free char **comps = xcalloc (n, sizeof *comps);
  comps[0] = p;
  for (size_t i = 1; i < n; i++)
    {
      comps[i] = strchr (comps[i - 1], '/');
      *comps[i]++ = '\0';
    }
  if (kind == OV_DIFF_DELETED && under_whole (&r->top, comps, n))
    return 0;
  struct ov_change *c = change_at (&r->top, comps, n);
  for (size_t k = 0; k < c->n; k++)
    change_free (&c->kids[k]);
  c->n = 0;
  entry_free (&c->entry);
  c->opaque = c->keep_meta = false;
  if (kind == OV_DIFF_DELETED)
    {
      c->op = OV_CH_DELETE;
      return 0;
    }
  entry_copy (&c->entry, b);
  /* an added or changed directory merges with what is there; its
   * entries come next, each as a change of its own */
  c->op = b->type == OV_DIR ? OV_CH_DIR : OV_CH_SET;
  if (c->entry.link_id && c->entry.link_id >= r->base_next)
    c->entry.link_id += r->shift;
  return 0;
}

/* The directories a change only passes through keep the head's metadata
 * where the head has them; where it has not (another writer removed the
 * directory meanwhile) they come back with the writer's, never with
 * metadata invented here, which would differ from node to node. */
static int
fill_dir_meta (struct ov_store *s, struct ov_change *c, const struct ov_entry *dir, ov_error_t *err)
{
  size_t dirs = 0;
  for (size_t i = 0; i < c->n; i++)
    dirs += c->kids[i].op == OV_CH_DIR;
  if (dirs == 0)
    return 0;
  struct ov_tree t;
  if (tree_load (s, &dir->oid, &t, err) < 0)
    return -1;
  int r = 0;
  for (size_t i = 0; r == 0 && i < c->n; i++)
    {
      struct ov_change *k = &c->kids[i];
      struct ov_entry *e = k->op == OV_CH_DIR ? tree_find (&t, k->name) : NULL;
      if (e == NULL || e->type != OV_DIR)
        continue;
      if (k->keep_meta)
        {
          entry_free (&k->entry);
          entry_copy (&k->entry, e);
        }
      r = fill_dir_meta (s, k, e, err);
    }
  tree_free (&t);
  return r;
}

int
ov_replay (struct ov_store *s, const struct ov_snapshot *onto, const struct ov_snapshot *base,
           const struct ov_snapshot *snap, struct ov_oid *out, ov_error_t *err)
{
  struct replay r = { .top = { .op = OV_CH_DIR, .keep_meta = true } };
  r.base_next = base->next_link_id;
  r.shift = onto->next_link_id > base->next_link_id ? onto->next_link_id - base->next_link_id : 0;
  struct ov_entry root = { 0 };
  bool gone;
  int ret = ov_diff (s, &base->root, &snap->root, diff_to_change, &r, err);
  if (ret == 0)
    ret = fill_dir_meta (s, &r.top, &snap->root, err);
  if (ret == 0)
    ret = changeset_apply (s, &onto->root, &r.top, &root, &gone, err);
  change_free (&r.top);
  if (ret < 0)
    return -1;
  if (oid_eq (&root.oid, &onto->root.oid))
    {
      entry_free (&root);
      *out = onto->id;
      return 0;
    }
  struct ov_snapshot m = { 0 };
  m.volume = xstrdup (onto->volume);
  m.has_parent = true;
  m.parent = onto->id;
  m.time_ns = snap->time_ns > onto->time_ns ? snap->time_ns : onto->time_ns + 1;
  m.next_link_id = snap->next_link_id + r.shift;
  if (m.next_link_id < onto->next_link_id)
    m.next_link_id = onto->next_link_id;
  m.message = xstrdup (snap->message ? snap->message : "");
  m.root = root;
  ret = ov_store_sync (s, err);
  if (ret == 0)
    ret = ov_snapshot_store (s, &m, err);
  if (ret == 0)
    ret = ov_store_sync (s, err);
  if (ret == 0)
    *out = m.id;
  snapshot_free (&m);
  return ret;
}
