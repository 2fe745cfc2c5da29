/* ovsnap diff NAME [A [B]] */
#include "cli.h"
#include "diff.h"

#include <stdio.h>

static const struct cli_opts diff_opts = {
  "NAME [A [B]]",
  "Paths added (A), modified (M) and deleted (D) from snapshot A to snapshot B.\n"
  "Defaults: A is the parent of the head, B is the head. With A alone, B is\n"
  "the head. Snapshots: id prefix, head, head~N.\n",
};

static int
diff_line (enum ov_diff_kind kind, const char *path, const struct ov_entry *a UNUSED,
           const struct ov_entry *b UNUSED, void *ctx)
{
  struct json_object *arr = ctx;
  char k[2] = { (char) kind, 0 };
  if (arr)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "change", json_object_new_string (k));
      json_object_object_add (o, "path", cli_json_str (path));
      json_object_array_add (arr, o);
    }
  else
    printf ("%s %s\n", k, path);
  return 0;
}

int
cli_diff (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "diff", &diff_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i < 1 || argc - i > 3)
    return cli_usage_error (&diff_opts, "diff", err, "expected NAME [A [B]]"), -1;
  if (cli_open_store (c, err) < 0)
    return -1;
  struct ov_volume v;
  if (ov_volume_load (c->store, argv[i], &v, err) < 0)
    return -1;
  struct ov_snapshot head, a = { 0 }, b = { 0 };
  int r = ov_snapshot_load (c->store, &v.head, &head, err);
  struct ov_oid ida, idb = v.head;
  if (r == 0)
    {
      if (argc - i >= 2)
        r = ov_volume_resolve (c->store, &v, argv[i + 1], &ida, err);
      else if (head.has_parent)
        ida = head.parent;
      else
        ida = head.id;
      if (r == 0 && argc - i == 3)
        r = ov_volume_resolve (c->store, &v, argv[i + 2], &idb, err);
      snapshot_free (&head);
    }
  if (r == 0)
    r = ov_snapshot_load (c->store, &ida, &a, err);
  if (r == 0)
    r = ov_snapshot_load (c->store, &idb, &b, err);
  struct json_object *arr = c->json ? json_object_new_array () : NULL;
  if (r == 0)
    r = ov_diff (c->store, &a.root, &b.root, diff_line, arr, err);
  if (arr)
    {
      if (r == 0)
        cli_json_print (arr);
      else
        json_object_put (arr);
    }
  snapshot_free (&a);
  snapshot_free (&b);
  volume_free (&v);
  return r;
}
