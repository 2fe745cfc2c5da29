#include "changeset.h"
#include "pool.h"

#include <stdio.h>
#include <time.h>

void
change_free (struct ov_change *c)
{
  for (size_t i = 0; i < c->n; i++)
    change_free (&c->kids[i]);
  free (c->kids);
  free (c->name);
  entry_free (&c->entry);
  memset (c, 0, sizeof *c);
}

/* The kid named name, or NULL with *at where it would go. */
static struct ov_change *
change_search (struct ov_change *dir, const char *name, size_t *at)
{
  size_t lo = 0, hi = dir->n;
  while (lo < hi)
    {
      size_t mid = (lo + hi) / 2;
      int c = strcmp (name, dir->kids[mid].name);
      if (c == 0)
        return &dir->kids[mid];
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  *at = lo;
  return NULL;
}

struct ov_change *
change_find (struct ov_change *dir, const char *name)
{
  size_t at;
  return change_search (dir, name, &at);
}

struct ov_change *
change_child (struct ov_change *dir, const char *name)
{
  size_t lo;
  struct ov_change *found = change_search (dir, name, &lo);
  if (found)
    return found;
  if (dir->n == dir->cap)
    {
      dir->cap = dir->cap ? dir->cap * 2 : 8;
      dir->kids = xrealloc (dir->kids, dir->cap * sizeof *dir->kids);
    }
  memmove (&dir->kids[lo + 1], &dir->kids[lo], (dir->n - lo) * sizeof *dir->kids);
  dir->n++;
  struct ov_change *c = &dir->kids[lo];
  memset (c, 0, sizeof *c);
  c->name = xstrdup (name);
  c->op = OV_CH_DIR;
  c->keep_meta = true;
  return c;
}

struct ov_change *
change_at (struct ov_change *root, char **comps, size_t n)
{
  struct ov_change *c = root;
  for (size_t i = 0; i < n; i++)
    {
      if (c->op != OV_CH_DIR)
        {
          /* A deeper change under a SET/DELETE: turn it into a directory. */
          entry_free (&c->entry);
          c->op = OV_CH_DIR;
          c->opaque = true;
          c->keep_meta = true;
        }
      c = change_child (c, comps[i]);
    }
  return c;
}

void
default_dir_meta (struct ov_entry *e)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  e->type = OV_DIR;
  e->mode = S_IFDIR | 0755;
  e->uid = geteuid ();
  e->gid = getegid ();
  e->mtime_sec = ts.tv_sec;
  e->mtime_nsec = ts.tv_nsec;
}

void
change_renumber_links (struct ov_change *c, uint64_t offset)
{
  if (c->entry.link_id)
    c->entry.link_id += offset;
  for (size_t i = 0; i < c->n; i++)
    change_renumber_links (&c->kids[i], offset);
}

void
change_prune (struct ov_change *c)
{
  if (c->op != OV_CH_DIR)
    return;
  bool all_keep = true;
  for (size_t i = 0; i < c->n; i++)
    {
      change_prune (&c->kids[i]);
      all_keep &= c->kids[i].op == OV_CH_KEEP;
    }
  if (all_keep && c->keep_meta && !c->opaque)
    {
      for (size_t i = 0; i < c->n; i++)
        change_free (&c->kids[i]);
      c->n = 0;
      c->op = OV_CH_KEEP;
    }
}

bool
change_is_noop (const struct ov_change *c)
{
  if (c->op == OV_CH_KEEP)
    return true;
  if (c->op != OV_CH_DIR || !c->keep_meta || c->opaque)
    return false;
  for (size_t i = 0; i < c->n; i++)
    if (!change_is_noop (&c->kids[i]))
      return false;
  return true;
}

int
tree_load (struct ov_store *s, const struct ov_oid *id, struct ov_tree *t, ov_error_t *err)
{
  struct ov_buf b = { 0 };
  char key[PATH_MAX];
  ov_key (OV_TREE_OBJ, id, key, sizeof key);
  int r = ov_store_get_record (s, OV_TREE_OBJ, id, &b, err);
  if (r == 0)
    r = tree_decode (b.data, b.len, t, key, err);
  buf_free (&b);
  return r;
}

int
tree_prefetch_subtrees (struct ov_store *s, const struct ov_tree *t, ov_error_t *err)
{
  struct ov_obj_ref *refs = xmalloc ((t->n + 1) * sizeof *refs);
  size_t m = 0;
  for (size_t i = 0; i < t->n; i++)
    if (t->e[i].type == OV_DIR)
      refs[m++] = (struct ov_obj_ref){ OV_TREE_OBJ, t->e[i].oid, 0 };
  int r = m > 1 ? ov_store_prefetch (s, refs, m, err) : 0;
  free (refs);
  return r;
}

int
tree_store (struct ov_store *s, const struct ov_tree *t, struct ov_entry *dir, ov_error_t *err)
{
  struct ov_buf b = { 0 };
  tree_encode (t, &b);
  int r = ov_store_put_record (s, OV_TREE_OBJ, &b, &dir->oid, err);
  buf_free (&b);
  tree_totals (t, &dir->inodes, &dir->size);
  return r;
}

static int apply (struct ov_store *s, const struct ov_entry *base, struct ov_change *ch,
                  struct ov_entry *out, bool *gone, bool parallel, ov_error_t *err);

/* Subdirectories a merge applies side by side, each on a pool thread. */
struct sub_merge
{
  struct ov_store *s;
  struct ov_change *k;
  struct ov_entry base, out;
  bool has_base, gone;
};

struct sub_merges
{
  struct sub_merge *m;
  size_t n;
};

static int
sub_merge_run (size_t i, void *ctx, ov_error_t *err)
{
  struct sub_merge *m = &((struct sub_merges *) ctx)->m[i];
  return apply (m->s, m->has_base ? &m->base : NULL, m->k, &m->out, &m->gone, false, err);
}

static void
sub_merges_free (struct sub_merges *sm)
{
  for (size_t i = 0; i < sm->n; i++)
    {
      entry_free (&sm->m[i].base);
      entry_free (&sm->m[i].out);
    }
  free (sm->m);
}

/* The first directory with two or more subdirectories to merge merges
 * them on the pool (below it all is sequential): the trees of a commit
 * spread over many directories are read, merged and hashed on every core. */
static int
merge_subdirs (struct ov_store *s, const struct ov_buf *base, const char *what,
               struct ov_change *ch, struct sub_merges *sm, ov_error_t *err)
{
  size_t n = 0;
  for (size_t j = 0; j < ch->n; j++)
    n += ch->kids[j].op == OV_CH_DIR;
  if (n < 2)
    return 0;
  sm->m = xcalloc (n, sizeof *sm->m);
  for (size_t j = 0; j < ch->n; j++)
    if (ch->kids[j].op == OV_CH_DIR)
      sm->m[sm->n++] = (struct sub_merge){ .s = s, .k = &ch->kids[j] };
  if (base)
    {
      /* their base entries: one pass over the base tree, both sides sorted */
      struct ov_tree_scan ts;
      struct ov_entry_raw x;
      int more;
      if (tree_scan_open (base->data, base->len, &ts, what, err) < 0)
        return -1;
      size_t i = 0;
      while ((more = tree_scan_next (&ts, &x, err)) > 0 && i < sm->n)
        {
          int c;
          while (i < sm->n
                 && (c = name_cmp (x.name, x.name_len, sm->m[i].k->name, strlen (sm->m[i].k->name))) > 0)
            i++;
          if (i < sm->n && c == 0)
            {
              entry_from_raw (&x, &sm->m[i].base);
              sm->m[i].has_base = true;
            }
        }
      if (more < 0)
        return -1;
    }
  return ov_pool_run (sm->n, sub_merge_run, sm, err);
}

/* One entry written to the merged tree: its part of the tree's totals. */
static void
tally (const struct ov_entry *e, uint32_t *count, uint64_t *inodes, uint64_t *bytes)
{
  (*count)++;
  *inodes += entry_inodes (e);
  *bytes += entry_bytes (e);
}

/* Merge the kids of a DIR change into the base tree's bytes (none: no
 * base), writing the new tree into out. Entries that no change touches,
 * or that a KEEP keeps, are copied as encoded: a commit that changes a few
 * files in a big directory decodes and encodes only those. */
static int
merge_dir (struct ov_store *s, const struct ov_buf *base, const char *what, struct ov_change *ch,
           struct ov_buf *out, uint64_t *inodes, uint64_t *bytes, bool parallel, ov_error_t *err)
{
  struct sub_merges sm = { 0 };
  if (parallel && merge_subdirs (s, base, what, ch, &sm, err) < 0)
    {
      sub_merges_free (&sm);
      return -1;
    }
  int r = -1;
  struct ov_tree_scan ts = { 0 };
  struct ov_entry_raw x;
  int more = 0;
  size_t next_sub = 0;
  if (base && (tree_scan_open (base->data, base->len, &ts, what, err) < 0
               || (more = tree_scan_next (&ts, &x, err)) < 0))
    goto out;
  tree_begin (out, ts.count + ch->n);
  uint32_t count = 0;
  *inodes = *bytes = 0;
  size_t j = 0;
  while (more || j < ch->n)
    {
      struct ov_change *k = j < ch->n ? &ch->kids[j] : NULL;
      int c = !more ? 1 : k == NULL ? -1 : name_cmp (x.name, x.name_len, k->name, strlen (k->name));
      if (c < 0 || (c == 0 && k->op == OV_CH_KEEP))
        {
          buf_put (out, x.start, x.len);
          tally (&x.e, &count, inodes, bytes);
          j += c == 0;
          if ((more = tree_scan_next (&ts, &x, err)) < 0)
            goto out;
          continue;
        }
      if (k->op == OV_CH_SET || k->op == OV_CH_DELETE || k->op == OV_CH_KEEP)
        {
          /* the base entry does not matter: nothing to decode */
          if (k->op == OV_CH_SET)
            {
              struct ov_entry ne = k->entry;
              ne.name = k->name;
              entry_encode (&ne, out);
              tally (&ne, &count, inodes, bytes);
            }
          if (c == 0 && (more = tree_scan_next (&ts, &x, err)) < 0)
            goto out;
          j++;
          continue;
        }
      struct ov_entry be, ne = { 0 };
      bool gone = false;
      if (next_sub < sm.n && sm.m[next_sub].k == k)
        {
          /* merged on the pool already */
          struct sub_merge *m = &sm.m[next_sub++];
          ne = m->out;
          memset (&m->out, 0, sizeof m->out);
          gone = m->gone;
        }
      else
        {
          if (c == 0)
            entry_from_raw (&x, &be);
          int ar = apply (s, c == 0 ? &be : NULL, k, &ne, &gone, parallel, err);
          if (c == 0)
            entry_free (&be);
          if (ar < 0)
            goto out;
        }
      if (!gone)
        {
          free (ne.name);
          ne.name = k->name; /* borrowed while encoding */
          entry_encode (&ne, out);
          ne.name = NULL;
          tally (&ne, &count, inodes, bytes);
          entry_free (&ne);
        }
      if (c == 0 && (more = tree_scan_next (&ts, &x, err)) < 0)
        goto out;
      j++;
    }
  tree_finish (out, count, *inodes, *bytes);
  r = 0;
out:
  sub_merges_free (&sm);
  return r;
}

int
changeset_apply (struct ov_store *s, const struct ov_entry *base, struct ov_change *ch,
                 struct ov_entry *out, bool *gone, ov_error_t *err)
{
  return apply (s, base, ch, out, gone, true, err);
}

static int
apply (struct ov_store *s, const struct ov_entry *base, struct ov_change *ch, struct ov_entry *out,
       bool *gone, bool parallel, ov_error_t *err)
{
  *gone = false;
  switch (ch->op)
    {
    case OV_CH_DELETE:
      *gone = true;
      return 0;
    case OV_CH_SET:
      entry_copy (out, &ch->entry);
      return 0;
    case OV_CH_KEEP:
      if (base)
        entry_copy (out, base);
      else
        *gone = true;
      return 0;
    case OV_CH_DIR:
      break;
    }
  struct ov_buf bb = { 0 }, nb = { 0 };
  char what[PATH_MAX];
  bool base_dir = base && base->type == OV_DIR;
  bool merge = base_dir && !ch->opaque;
  if (merge)
    {
      ov_key (OV_TREE_OBJ, &base->oid, what, sizeof what);
      if (ov_store_get_record (s, OV_TREE_OBJ, &base->oid, &bb, err) < 0)
        return -1;
    }
  uint64_t inodes, bytes;
  int r = merge_dir (s, merge ? &bb : NULL, what, ch, &nb, &inodes, &bytes, parallel, err);
  buf_free (&bb);
  if (r == 0)
    {
      if (ch->keep_meta && base_dir)
        entry_copy (out, base);
      else if (ch->keep_meta && ch->entry.type != OV_DIR)
        default_dir_meta (out);
      else
        entry_copy (out, &ch->entry);
      r = ov_store_put_record (s, OV_TREE_OBJ, &nb, &out->oid, err);
      out->inodes = inodes;
      out->size = bytes;
      if (r < 0)
        entry_free (out);
    }
  buf_free (&nb);
  return r;
}

int
tree_lookup (struct ov_store *s, const struct ov_entry *root, char **comps, size_t n,
             struct ov_entry *out, ov_error_t *err)
{
  struct ov_entry cur;
  entry_copy (&cur, root);
  for (size_t i = 0; i < n; i++)
    {
      if (cur.type != OV_DIR)
        {
          entry_free (&cur);
          return ov_error_set (err, OV_ENOTFOUND, 0, "not a directory: %s", comps[i - 1]);
        }
      struct ov_tree t;
      if (tree_load (s, &cur.oid, &t, err) < 0)
        {
          entry_free (&cur);
          return -1;
        }
      entry_free (&cur);
      struct ov_entry *e = tree_find (&t, comps[i]);
      if (e == NULL)
        {
          tree_free (&t);
          return ov_error_set (err, OV_ENOTFOUND, 0, "no such file or directory: %s", comps[i]);
        }
      cur = *e;
      memset (e, 0, sizeof *e);
      tree_free (&t);
    }
  *out = cur;
  return 0;
}
