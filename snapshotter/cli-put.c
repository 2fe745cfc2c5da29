/* ovsnap put NAME LOCAL [REMOTE] */
#include "cli.h"
#include "maint.h"
#include "ingest.h"
#include "path.h"

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>

static const struct cli_opts put_opts = {
  "NAME LOCAL [REMOTE] [-m MESSAGE]",
  "Copies a local file or directory tree into volume NAME as one new snapshot.\n"
  "LOCAL `-` reads standard input (REMOTE is then required).\n"
  "Without REMOTE, LOCAL lands at the root under its base name; a REMOTE that\n"
  "ends in / or names an existing directory receives LOCAL under its base name.\n"
  "A LOCAL directory ending in / puts its contents (rsync style).\n"
  "Directories merge with what the volume has; files replace.\n"
  "  -m, --message MSG  snapshot message\n",
};

struct put_ctx
{
  struct ov_change *change;
  const char *base;
  struct ov_path remote;
  bool remote_given;
  bool contents;
  uint64_t nlinks;
};

static int
put_edit (struct ov_store *s, const struct ov_snapshot *head, struct ov_entry *root,
          uint64_t *next_link_id, void *ctx, ov_error_t *err)
{
  struct put_ctx *p = ctx;
  size_t n = p->remote.n;
  char **comps = xcalloc (n + 2, sizeof *comps);
  for (size_t i = 0; i < n; i++)
    comps[i] = p->remote.comps[i];
  bool into = false;
  if (!p->remote_given)
    into = !p->contents;
  else if (!p->contents)
    {
      if (n == 0 || p->remote.trailing_slash)
        into = true;
      else
        {
          struct ov_entry e;
          ov_error_t e2 = NULL;
          if (tree_lookup (s, &head->root, comps, n, &e, &e2) == 0)
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
    comps[n++] = (char *) p->base;
  if (n == 0 && p->change->op != OV_CH_DIR)
    {
      free (comps);
      return ov_error_set (err, OV_EUSAGE, 0, "cannot replace the volume root with a file");
    }

  change_renumber_links (p->change, head->next_link_id - 1);
  *next_link_id = head->next_link_id + p->nlinks;

  struct ov_change top = { .op = OV_CH_DIR, .keep_meta = true };
  struct ov_change *slot = n ? change_at (&top, comps, n) : &top;
  char *name = slot->name;
  slot->name = NULL;
  change_free (slot);
  *slot = *p->change;
  free (slot->name);
  slot->name = name;
  memset (p->change, 0, sizeof *p->change);
  if (n == 0)
    slot->keep_meta = true; /* the volume root keeps its own metadata */
  free (comps);
  bool gone;
  int r = changeset_apply (s, &head->root, &top, root, &gone, err);
  change_free (&top);
  return r;
}

int
cli_put (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "message", required_argument, NULL, 'm' }, { 0 } };
  const char *message = NULL;
  int i = cli_parse (c, argc, argv, "put", &put_opts, "m:", lo, cli_opt_string, &message, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i < 2 || argc - i > 3)
    return cli_usage_error (&put_opts, "put", err, "expected NAME LOCAL [REMOTE]"), -1;
  const char *name = argv[i], *local = argv[i + 1];
  struct put_ctx p = { .remote_given = argc - i == 3 };
  if (p.remote_given && ov_path_parse (argv[i + 2], &p.remote, err) < 0)
    return -1;
  bool from_stdin = strcmp (local, "-") == 0;
  if (from_stdin && (!p.remote_given || p.remote.n == 0))
    {
      ov_path_free (&p.remote);
      return cli_usage_error (&put_opts, "put", err, "put from standard input needs a REMOTE file path"), -1;
    }
  if (cli_open_store (c, err) < 0)
    return -1;
  /* Fail early on an unknown volume, before reading any data. */
  struct ov_volume v;
  if (ov_volume_load (c->store, name, &v, err) < 0)
    {
      ov_path_free (&p.remote);
      return -1;
    }
  volume_free (&v);

  struct ov_change change = { 0 };
  cleanup_free char *base = NULL;
  struct ov_progress progress = { 0 };
  int r;
  if (from_stdin)
    {
      change.op = OV_CH_SET;
      r = ov_ingest_stream (c->store, STDIN_FILENO, &change.entry, err);
      /* REMOTE names the file itself. */
      p.contents = true;
    }
  else
    {
      size_t len = strlen (local);
      p.contents = len > 1 && local[len - 1] == '/';
      cleanup_free char *tmp = xstrdup (local);
      while (strlen (tmp) > 1 && tmp[strlen (tmp) - 1] == '/')
        tmp[strlen (tmp) - 1] = '\0';
      char *real = realpath (tmp, NULL);
      base = xstrdup (real ? basename (real) : basename (tmp));
      free (real);
      if (strcmp (base, "/") == 0 || strcmp (base, ".") == 0 || strcmp (base, "..") == 0)
        p.contents = true;
      p.nlinks = 1;
      ov_progress_start (&progress, "put");
      r = ov_ingest (c->store, AT_FDCWD, local, NULL, &p.nlinks, &change, &progress, err);
      ov_progress_end (&progress);
      if (r == 0)
        p.nlinks--; /* ingest counts from 1 */
    }
  if (r == 0 && p.contents && change.op != OV_CH_DIR && !from_stdin)
    p.contents = false;
  if (r < 0)
    {
      ov_path_free (&p.remote);
      return -1;
    }
  p.change = &change;
  p.base = base;
  cleanup_free char *msg = message ? xstrdup (message) : xasprintf ("put %s", local);
  struct ov_snapshot snap;
  r = ov_volume_update (c->store, name, msg, put_edit, &p, &snap, err);
  change_free (&change);
  ov_path_free (&p.remote);
  if (r < 0)
    return ov_error_prefix (err, "put %s into volume '%s'", local, name);
  ov_consolidate_later (c->store);
  cli_print_snapshot (c, &snap);
  snapshot_free (&snap);
  return 0;
}
