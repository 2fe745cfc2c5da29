/* ovsnap ls NAME [PATH] [-l] [-R] [--at SNAP] */
#include "cli.h"
#include "path.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <time.h>

static const struct cli_opts ls_opts = {
  "NAME [PATH] [-l] [-R] [--at SNAP]",
  "Lists a directory of volume NAME (or one file). PATH starts at the volume\n"
  "root, with or without a leading / (default: the root).\n"
  "  -l, --long       mode, owner, group, size, modification time\n"
  "  -R, --recursive  everything below PATH, each entry by its path from the root\n"
  "  --at SNAP        an older snapshot (id prefix, head, head~N)\n"
  "With --json each entry also has its \"path\" from the volume root.\n",
};

struct ls_args
{
  const char *at;
  bool lng, recursive;
  struct json_object *arr; /* --json */
};

static int
ls_opt (int opt, const char *arg, void *ctx)
{
  struct ls_args *a = ctx;
  if (opt == 'a')
    a->at = arg;
  else if (opt == 'l')
    a->lng = true;
  else if (opt == 'R')
    a->recursive = true;
  else
    return -1;
  return 0;
}

static void
mode_string (const struct ov_entry *e, char out[11])
{
  static const char types[] = "?-dlpcbs";
  uint32_t m = e->mode;
  out[0] = types[e->type < sizeof types - 1 ? e->type : 0];
  const char *rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; i++)
    out[1 + i] = m & (0400 >> i) ? rwx[i] : '-';
  if (m & S_ISUID)
    out[3] = m & 0100 ? 's' : 'S';
  if (m & S_ISGID)
    out[6] = m & 0010 ? 's' : 'S';
  if (m & S_ISVTX)
    out[9] = m & 0001 ? 't' : 'T';
  out[10] = '\0';
}

static struct json_object *
entry_json (const struct ov_entry *e, const char *name, const char *path)
{
  struct json_object *o = json_object_new_object ();
  char mode[8];
  snprintf (mode, sizeof mode, "%04o", e->mode & 07777);
  json_object_object_add (o, "name", cli_json_str (name));
  json_object_object_add (o, "path", cli_json_str (path));
  json_object_object_add (o, "type", json_object_new_string (ov_type_name (e->type)));
  json_object_object_add (o, "mode", json_object_new_string (mode));
  json_object_object_add (o, "uid", json_object_new_int64 (e->uid));
  json_object_object_add (o, "gid", json_object_new_int64 (e->gid));
  json_object_object_add (o, "size", json_object_new_int64 (e->size));
  json_object_object_add (o, "mtime_ns",
                          json_object_new_int64 (e->mtime_sec * 1000000000 + e->mtime_nsec));
  if (e->type == OV_LNK)
    json_object_object_add (o, "target", cli_json_str (e->target));
  if (e->type == OV_REG)
    json_object_object_add (o, "object", cli_json_id (&e->oid));
  if (e->type == OV_DIR)
    json_object_object_add (o, "entries", json_object_new_int64 (e->inodes));
  if (e->type == OV_CHR || e->type == OV_BLK)
    {
      json_object_object_add (o, "major", json_object_new_int64 (major (e->rdev)));
      json_object_object_add (o, "minor", json_object_new_int64 (minor (e->rdev)));
    }
  return o;
}

static void
entry_line (const struct ov_entry *e, const char *name, bool lng)
{
  if (!lng)
    {
      printf ("%s%s\n", name, e->type == OV_DIR ? "/" : "");
      return;
    }
  char mode[11], when[32];
  mode_string (e, mode);
  time_t t = e->mtime_sec;
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (when, sizeof when, "%Y-%m-%d %H:%M", &tm);
  char size[32];
  if (e->type == OV_CHR || e->type == OV_BLK)
    snprintf (size, sizeof size, "%u, %u", major (e->rdev), minor (e->rdev));
  else
    snprintf (size, sizeof size, "%" PRIu64, e->size);
  printf ("%s %6u %6u %12s %s %s", mode, e->uid, e->gid, size, when, name);
  if (e->type == OV_LNK)
    printf (" -> %s", e->target);
  putchar ('\n');
}

static void
ls_one (struct ls_args *a, const struct ov_entry *e, const char *name, const char *path)
{
  if (a->arr)
    json_object_array_add (a->arr, entry_json (e, name, path));
  else
    entry_line (e, a->recursive ? path : name, a->lng);
}

/* The entries of directory tree `id`, whose path from the root is prefix
 * ("" for the root); below each subdirectory too with -R. */
static int
ls_dir (struct ov_store *s, const struct ov_oid *id, const char *prefix, struct ls_args *a,
        ov_error_t *err)
{
  struct ov_tree t;
  if (tree_load (s, id, &t, err) < 0)
    return -1;
  int r = 0;
  for (size_t k = 0; r == 0 && k < t.n; k++)
    {
      cleanup_free char *path = prefix[0] ? xasprintf ("%s/%s", prefix, t.e[k].name)
                                          : xstrdup (t.e[k].name);
      ls_one (a, &t.e[k], t.e[k].name, path);
      if (a->recursive && t.e[k].type == OV_DIR)
        r = ls_dir (s, &t.e[k].oid, path, a, err);
    }
  tree_free (&t);
  return r;
}

int
cli_ls (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "at", required_argument, NULL, 'a' },
                                      { "long", no_argument, NULL, 'l' },
                                      { "recursive", no_argument, NULL, 'R' },
                                      { 0 } };
  struct ls_args a = { 0 };
  int i = cli_parse (c, argc, argv, "ls", &ls_opts, "lR", lo, ls_opt, &a, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i < 1 || argc - i > 2)
    return cli_usage_error (&ls_opts, "ls", err, "expected NAME [PATH]"), -1;
  struct ov_path path;
  if (ov_path_parse (argc - i == 2 ? argv[i + 1] : ".", &path, err) < 0)
    return -1;
  struct ov_snapshot snap;
  if (cli_load_snapshot (c, argv[i], a.at, &snap, err) < 0)
    {
      ov_path_free (&path);
      return -1;
    }
  struct ov_entry e = { 0 };
  int r = tree_lookup (c->store, &snap.root, path.comps, path.n, &e, err);
  if (r < 0)
    ov_error_prefix (err, "volume '%s': %s", argv[i], argc - i == 2 ? argv[i + 1] : ".");
  a.arr = c->json ? json_object_new_array () : NULL;
  struct json_object *arr = a.arr;
  if (r == 0 && e.type == OV_DIR)
    {
      cleanup_free char *prefix = path.n ? ov_path_join (path.comps, path.n) : xstrdup ("");
      r = ls_dir (c->store, &e.oid, prefix, &a, err);
    }
  else if (r == 0)
    {
      const char *name = path.comps[path.n - 1];
      cleanup_free char *full = ov_path_join (path.comps, path.n);
      ls_one (&a, &e, name, full);
    }
  if (arr)
    {
      if (r == 0)
        cli_json_print (arr);
      else
        json_object_put (arr);
    }
  entry_free (&e);
  snapshot_free (&snap);
  ov_path_free (&path);
  return r;
}
