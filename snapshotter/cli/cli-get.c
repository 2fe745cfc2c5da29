/* ovsnap get NAME REMOTE [LOCAL] [--at SNAP] [--force] */
#include "cli.h"
#include "materialize.h"
#include "path.h"

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>

static const struct cli_opts get_opts = {
  "NAME REMOTE [LOCAL] [--at SNAP] [--force]",
  "Copies a file or tree out of volume NAME with its metadata.\n"
  "Without LOCAL, it lands in the current directory under REMOTE's base name\n"
  "(the volume's name for the root). An existing LOCAL directory receives it\n"
  "under that name; for REMOTE `.` the contents go into LOCAL. LOCAL `-`\n"
  "writes a file to standard output.\n"
  "  --at SNAP   read an older snapshot (id prefix, head, head~N)\n"
  "  --force     replace existing local files\n",
};

struct get_args
{
  const char *at;
  bool force;
};

static int
get_opt (int opt, const char *arg, void *ctx)
{
  struct get_args *a = ctx;
  if (opt == 'a')
    a->at = arg;
  else if (opt == 'f')
    a->force = true;
  else
    return -1;
  return 0;
}

int
cli_get (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "at", required_argument, NULL, 'a' },
                                      { "force", no_argument, NULL, 'f' },
                                      { 0 } };
  struct get_args a = { 0 };
  int i = cli_parse (c, argc, argv, "get", &get_opts, "f", lo, get_opt, &a, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i < 2 || argc - i > 3)
    return cli_usage_error (&get_opts, "get", err, "expected NAME REMOTE [LOCAL]"), -1;
  const char *name = argv[i];
  const char *local = argc - i == 3 ? argv[i + 2] : NULL;
  struct ov_path remote;
  if (ov_path_parse (argv[i + 1], &remote, err) < 0)
    return -1;
  struct ov_snapshot snap;
  if (cli_load_snapshot (c, name, a.at, &snap, err) < 0)
    {
      ov_path_free (&remote);
      return -1;
    }
  struct ov_entry e = { 0 };
  int r = tree_lookup (c->store, &snap.root, remote.comps, remote.n, &e, err);
  if (r < 0)
    ov_error_prefix (err, "volume '%s': %s", name, argv[i + 1]);
  if (r == 0 && local && strcmp (local, "-") == 0)
    {
      if (e.type != OV_REG)
        r = ov_error_set (err, OV_EUSAGE, 0, "%s is a %s; only files can go to standard output",
                          argv[i + 1], ov_type_name (e.type));
      else
        r = ov_export_content (c->store, &e, STDOUT_FILENO, err);
      goto out;
    }
  if (r < 0)
    goto out;
  {
    const char *base = remote.n ? remote.comps[remote.n - 1] : name;
    int flags = a.force ? OV_MAT_FORCE : 0;
    cleanup_free char *parent = NULL;
    cleanup_free char *target = NULL;
    struct stat st;
    if (local == NULL)
      {
        parent = xstrdup (".");
        target = xstrdup (base);
      }
    else if (stat (local, &st) == 0 && S_ISDIR (st.st_mode))
      {
        if (remote.n == 0)
          {
            /* contents into LOCAL */
            cleanup_free char *d = xstrdup (local), *b = xstrdup (local);
            parent = xstrdup (dirname (d));
            target = xstrdup (basename (b));
            flags |= OV_MAT_MERGE;
          }
        else
          {
            parent = xstrdup (local);
            target = xstrdup (base);
          }
      }
    else
      {
        cleanup_free char *d = xstrdup (local), *b = xstrdup (local);
        parent = xstrdup (dirname (d));
        target = xstrdup (basename (b));
      }
    cleanup_close int dfd = open (parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
      {
        r = ov_error (err, errno, "open %s", parent);
        goto out;
      }
    struct ov_progress progress = { 0 };
    ov_progress_start (&progress, "get");
    r = ov_materialize (c->store, &e, dfd, target, flags, &progress, err);
    ov_progress_end (&progress);
    if (r < 0)
      ov_error_prefix (err, "get %s from volume '%s'", argv[i + 1], name);
    else if (c->json)
      {
        struct json_object *o = json_object_new_object ();
        json_object_object_add (o, "snapshot", cli_json_id (&snap.id));
        json_object_object_add (o, "files", json_object_new_int64 (entry_inodes (&e)));
        json_object_object_add (o, "bytes", json_object_new_int64 (entry_bytes (&e)));
        cli_json_print (o);
      }
  }
out:
  entry_free (&e);
  snapshot_free (&snap);
  ov_path_free (&remote);
  return r;
}
