/* ovsnap put NAME LOCAL [REMOTE] | NAME --batch FILE */
#include "cli.h"
#include "maint.h"
#include "ingest.h"
#include "path.h"

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>

static const struct cli_opts put_opts = {
  "NAME LOCAL [REMOTE] [-m MESSAGE] | NAME --batch FILE",
  "Copies a local file or directory tree into volume NAME as one new snapshot.\n"
  "LOCAL `-` reads standard input (REMOTE is then required).\n"
  "Paths in the volume start at its root, with or without a leading /.\n"
  "Without REMOTE, LOCAL lands at the root under its base name; a REMOTE that\n"
  "ends in / receives LOCAL under its base name (so does an existing directory,\n"
  "for a file). A LOCAL directory puts its contents at REMOTE (as modal volume\n"
  "put does), and so does one ending in / (rsync style) anywhere.\n"
  "Directories merge with what the volume has; files replace.\n"
  "  -m, --message MSG  snapshot message\n"
  "  --batch FILE       put every LOCAL, REMOTE pair in FILE (- for standard\n"
  "                     input; each path ends in a NUL byte), in order, as one\n"
  "                     snapshot\n",
};

struct put_args
{
  const char *message, *batch;
};

static int
put_opt (int opt, const char *arg, void *ctx)
{
  struct put_args *a = ctx;
  if (opt == 'm')
    a->message = arg;
  else if (opt == 'b')
    a->batch = arg;
  else
    return -1;
  return 0;
}

/* One LOCAL -> REMOTE of a put; a batch has several, applied in order. */
struct put_item
{
  const char *local;
  struct ov_change change;
  char *base;
  struct ov_path remote;
  bool remote_given;
  bool contents;
  uint64_t nlinks;
};

static void
put_item_free (struct put_item *it)
{
  change_free (&it->change);
  free (it->base);
  ov_path_free (&it->remote);
}

struct put_ctx
{
  struct put_item *items;
  size_t n;
};

/* Where the item lands below root: REMOTE itself, or REMOTE/base. */
static int
put_slot (struct ov_store *s, const struct ov_entry *root, const struct put_item *it,
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
put_apply (struct ov_store *s, const struct ov_entry *root, struct put_item *it,
           uint64_t link_offset, struct ov_entry *out, ov_error_t *err)
{
  char **comps = NULL;
  size_t n = 0;
  if (put_slot (s, root, it, &comps, &n, err) < 0)
    return -1;
  change_renumber_links (&it->change, link_offset);
  struct ov_change top = { .op = OV_CH_DIR, .keep_meta = true };
  struct ov_change *slot = n ? change_at (&top, comps, n) : &top;
  char *name = slot->name;
  slot->name = NULL;
  change_free (slot);
  *slot = it->change;
  free (slot->name);
  slot->name = name;
  memset (&it->change, 0, sizeof it->change);
  if (n == 0)
    slot->keep_meta = true; /* the volume root keeps its own metadata */
  free (comps);
  bool gone;
  int r = changeset_apply (s, root, &top, out, &gone, err);
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
put_ingest (struct ov_store *s, struct put_item *it, ov_error_t *err)
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
  struct ov_progress progress = { 0 };
  ov_progress_start (&progress, "put");
  int r = ov_ingest (s, AT_FDCWD, local, NULL, &it->nlinks, &it->change, &progress, err);
  ov_progress_end (&progress);
  if (r < 0)
    return -1;
  it->nlinks--; /* ingest counts from 1 */
  if (it->contents && it->change.op != OV_CH_DIR)
    it->contents = false;
  return 0;
}

/* --batch FILE: NUL-separated LOCAL, REMOTE pairs. */
static int
read_batch (const char *file, struct ov_buf *buf, struct put_ctx *p, ov_error_t *err)
{
  int fd = strcmp (file, "-") == 0 ? STDIN_FILENO : open (file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "%s", file);
  int r = ov_read_fd (fd, buf, 64u << 20);
  if (fd != STDIN_FILENO)
    close (fd);
  if (r < 0)
    return ov_error (err, errno, "read %s", file);
  buf_put (buf, "", 1);
  const char *end = (const char *) buf->data + buf->len - 1;
  size_t k = 0;
  for (const char *q = (const char *) buf->data; q < end; q += strlen (q) + 1)
    {
      if (k % 2 == 0)
        {
          p->items = xrealloc (p->items, (p->n + 1) * sizeof *p->items);
          memset (&p->items[p->n], 0, sizeof *p->items);
          p->items[p->n].local = q;
          p->items[p->n].remote_given = true;
          p->n++;
        }
      else if (ov_path_parse (q, &p->items[p->n - 1].remote, err) < 0)
        return -1;
      if (k % 2 == 0 && (q[0] == '\0' || strcmp (q, "-") == 0))
        return ov_error_set (err, OV_EUSAGE, 0, "%s: entry %zu: a LOCAL path is needed", file, p->n);
      k++;
    }
  if (k % 2)
    return ov_error_set (err, OV_EUSAGE, 0, "%s: LOCAL '%s' has no REMOTE", file, p->items[p->n - 1].local);
  if (p->n == 0)
    return ov_error_set (err, OV_EUSAGE, 0, "%s: nothing to put", file);
  return 0;
}

static void
put_ctx_free (struct put_ctx *p)
{
  for (size_t i = 0; i < p->n; i++)
    put_item_free (&p->items[i]);
  free (p->items);
}

int
cli_put (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "message", required_argument, NULL, 'm' },
                                      { "batch", required_argument, NULL, 'b' },
                                      { 0 } };
  struct put_args a = { 0 };
  int i = cli_parse (c, argc, argv, "put", &put_opts, "m:", lo, put_opt, &a, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (a.batch ? argc - i != 1 : (argc - i < 2 || argc - i > 3))
    return cli_usage_error (&put_opts, "put", err,
                            a.batch ? "expected NAME with --batch" : "expected NAME LOCAL [REMOTE]"), -1;
  const char *name = argv[i];
  struct put_ctx p = { 0 };
  struct ov_buf batch = { 0 };
  int r = 0;
  if (a.batch)
    r = read_batch (a.batch, &batch, &p, err);
  else
    {
      p.items = xcalloc (1, sizeof *p.items);
      p.n = 1;
      p.items[0].local = argv[i + 1];
      p.items[0].remote_given = argc - i == 3;
      if (p.items[0].remote_given)
        r = ov_path_parse (argv[i + 2], &p.items[0].remote, err);
      if (r == 0 && strcmp (argv[i + 1], "-") == 0 && (!p.items[0].remote_given || p.items[0].remote.n == 0))
        r = cli_usage_error (&put_opts, "put", err, "put from standard input needs a REMOTE file path");
    }
  if (r == 0)
    r = cli_open_store (c, err);
  /* Fail early on an unknown volume, before reading any data. */
  struct ov_volume v;
  if (r == 0 && (r = ov_volume_load (c->store, name, &v, err)) == 0)
    volume_free (&v);
  for (size_t k = 0; r == 0 && k < p.n; k++)
    r = put_ingest (c->store, &p.items[k], err);
  cleanup_free char *msg = a.message ? xstrdup (a.message)
                           : a.batch ? xasprintf ("put %zu items (batch)", p.n)
                                     : xasprintf ("put %s", p.items[0].local);
  struct ov_snapshot snap;
  if (r == 0)
    {
      r = ov_volume_update (c->store, name, msg, put_edit, &p, &snap, err);
      if (r < 0)
        ov_error_prefix (err, "put %s into volume '%s'", a.batch ? "batch" : p.items[0].local, name);
    }
  put_ctx_free (&p);
  buf_free (&batch);
  if (r < 0)
    return -1;
  ov_consolidate_later (c->store);
  cli_print_snapshot (c, &snap);
  snapshot_free (&snap);
  return 0;
}
