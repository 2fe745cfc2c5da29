/* Putting local files and trees into a volume (see put.h). */
#include "put.h"
#include "ingest.h"
#include "path.h"
#include "volume.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>

/* One LOCAL -> REMOTE of a put; a batch has several, applied in order. */
struct item
{
  const char *local;
  struct ov_change change;
  char *base;
  struct ov_path remote;
  bool remote_given;
  bool contents;
  uint64_t nlinks;
  uint64_t link_offset; /* applied to change: put_edit may run again onto a newer head */
};

static void
item_free (struct item *it)
{
  change_free (&it->change);
  free (it->base);
  ov_path_free (&it->remote);
}

struct put_ctx
{
  struct item *items;
  size_t n;
};

/* Where the item lands below root: REMOTE itself, or REMOTE/base. */
static int
put_slot (struct ov_store *s, const struct ov_entry *root, const struct item *it,
          char ***out, size_t *nout, ov_error_t *err)
{
  size_t n = it->remote.n;
  char **comps = xcalloc (n + 2, sizeof *comps);
  for (size_t i = 0; i < n; i++)
    comps[i] = it->remote.comps[i];
  bool into = false;
  if (!it->remote_given)
    into = !it->contents;
  else if (!it->contents)
    {
      if (n == 0 || it->remote.trailing_slash)
        into = true;
      else if (it->change.op != OV_CH_DIR)
        {
          struct ov_entry e;
          ov_error_t e2 = NULL;
          if (tree_lookup (s, root, comps, n, &e, &e2) == 0)
            {
              into = e.type == OV_DIR;
              entry_free (&e);
            }
          else if (e2->code != OV_ENOTFOUND)
            {
              *err = e2;
              free (comps);
              return -1;
            }
          else
            ov_error_free (&e2);
        }
    }
  if (into)
    comps[n++] = it->base;
  if (n == 0 && it->change.op != OV_CH_DIR)
    {
      free (comps);
      return ov_error_set (err, OV_EUSAGE, 0, "cannot replace the volume root with a file");
    }
  *out = comps;
  *nout = n;
  return 0;
}

/* Applies one item on root (the result so far) into *out. */
static int
put_apply (struct ov_store *s, const struct ov_entry *root, struct item *it,
           uint64_t link_offset, struct ov_entry *out, ov_error_t *err)
{
  char **comps = NULL;
  size_t n = 0;
  if (put_slot (s, root, it, &comps, &n, err) < 0)
    return -1;
  change_renumber_links (&it->change, link_offset - it->link_offset);
  it->link_offset = link_offset;
  struct ov_change top = { .op = OV_CH_DIR, .keep_meta = true };
  struct ov_change *slot = n ? change_at (&top, comps, n) : &top;
  /* the item's change is lent to the slot and taken back after: on a store
   * without compare-and-swap the edit may run again onto a newer head */
  char *name = slot->name;
  slot->name = NULL;
  change_free (slot);
  struct ov_change lent = it->change;
  *slot = it->change;
  slot->name = name;
  if (n == 0)
    slot->keep_meta = true; /* the volume root keeps its own metadata */
  free (comps);
  bool gone;
  int r = changeset_apply (s, root, &top, out, &gone, err);
  name = slot->name;
  it->change = *slot;
  it->change.name = lent.name;
  it->change.keep_meta = lent.keep_meta;
  memset (slot, 0, sizeof *slot);
  slot->name = name;
  change_free (&top);
  return r;
}

static int
put_edit (struct ov_store *s, const struct ov_snapshot *head, struct ov_entry *root,
          uint64_t *next_link_id, void *ctx, ov_error_t *err)
{
  struct put_ctx *p = ctx;
  struct ov_entry cur;
  entry_copy (&cur, &head->root);
  uint64_t links = 0;
  for (size_t i = 0; i < p->n; i++)
    {
      struct ov_entry next = { 0 };
      int r = put_apply (s, &cur, &p->items[i], head->next_link_id - 1 + links, &next, err);
      entry_free (&cur);
      if (r < 0)
        return ov_error_prefix (err, "%s", p->items[i].local);
      cur = next;
      links += p->items[i].nlinks;
    }
  *next_link_id = head->next_link_id + links;
  *root = cur;
  return 0;
}

/* Reads LOCAL (a file or tree, or - for standard input) into it->change. */
static int
put_ingest (struct ov_store *s, struct item *it, struct ov_progress *progress, ov_error_t *err)
{
  const char *local = it->local;
  if (strcmp (local, "-") == 0)
    {
      it->change.op = OV_CH_SET;
      it->contents = true; /* REMOTE names the file itself */
      it->base = xstrdup ("-");
      return ov_ingest_stream (s, STDIN_FILENO, &it->change.entry, err);
    }
  size_t len = strlen (local);
  it->contents = len > 1 && local[len - 1] == '/';
  cleanup_free char *tmp = xstrdup (local);
  while (strlen (tmp) > 1 && tmp[strlen (tmp) - 1] == '/')
    tmp[strlen (tmp) - 1] = '\0';
  char *real = realpath (tmp, NULL);
  it->base = xstrdup (real ? basename (real) : basename (tmp));
  free (real);
  if (strcmp (it->base, "/") == 0 || strcmp (it->base, ".") == 0 || strcmp (it->base, "..") == 0)
    it->contents = true;
  it->nlinks = 1;
  int r = ov_ingest (s, AT_FDCWD, local, NULL, &it->nlinks, &it->change, progress, err);
  if (r < 0)
    return -1;
  it->nlinks--; /* ingest counts from 1 */
  if (it->contents && it->change.op != OV_CH_DIR)
    it->contents = false;
  return 0;
}

int
ov_put (struct ov_store *s, const char *volume, const struct ov_put_item *items, size_t n,
        const char *message, struct ov_progress *progress, struct ov_snapshot *out,
        ov_error_t *err)
{
  if (n == 0)
    return ov_error_set (err, OV_EUSAGE, 0, "nothing to put");
  struct put_ctx p = { xcalloc (n, sizeof *p.items), n };
  int r = 0;
  for (size_t k = 0; r == 0 && k < n; k++)
    {
      struct item *it = &p.items[k];
      it->local = items[k].local;
      it->remote_given = items[k].remote != NULL;
      if (it->local[0] == '\0')
        r = ov_error_set (err, OV_EUSAGE, 0, "item %zu: a LOCAL path is needed", k + 1);
      else if (it->remote_given)
        r = ov_path_parse (items[k].remote, &it->remote, err);
      if (r == 0 && strcmp (it->local, "-") == 0 && (!it->remote_given || it->remote.n == 0))
        r = ov_error_set (err, OV_EUSAGE, 0, "put from standard input needs a REMOTE file path");
    }
  /* an unknown volume fails before any data is read */
  struct ov_volume v;
  if (r == 0 && (r = ov_volume_load (s, volume, &v, err)) == 0)
    volume_free (&v);
  for (size_t k = 0; r == 0 && k < n; k++)
    r = put_ingest (s, &p.items[k], progress, err);
  cleanup_free char *msg = message ? xstrdup (message)
                           : n > 1 ? xasprintf ("put %zu items (batch)", n)
                                   : xasprintf ("put %s", items[0].local);
  if (r == 0)
    {
      r = ov_volume_update (s, volume, msg, put_edit, &p, out, err);
      if (r < 0)
        ov_error_prefix (err, "put %s into volume '%s'", n > 1 ? "batch" : items[0].local, volume);
    }
  for (size_t k = 0; k < n; k++)
    item_free (&p.items[k]);
  free (p.items);
  return r;
}
