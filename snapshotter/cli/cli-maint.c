/* ovsnap gc and fsck */
#include "cli.h"
#include "maint.h"

#include <inttypes.h>
#include <stdio.h>

static const struct cli_opts gc_opts = {
  "",
  "Removes objects, trees and snapshot records that no volume references\n"
  "(deleted volumes, failed operations) and reports the bytes freed. Waits for\n"
  "running commands to finish and holds new ones back while it sweeps.\n",
};
static const struct cli_opts fsck_opts = {
  "",
  "Verifies every record and object in the store: hashes, formats, and that\n"
  "everything a volume references exists. Prints each problem; exits 6 if any.\n"
  "Unreferenced objects are reported as garbage (removed by `ovsnap gc`), not\n"
  "as problems.\n",
};

int
cli_gc (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "gc", &gc_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc != i)
    return cli_usage_error (&gc_opts, "gc", err, "gc takes no arguments"), -1;
  if (ov_node_open_store (&c->node, c->root, c->store_url, OV_STORE_CREATE, err) < 0)
    return -1;
  c->store = c->node->store;
  struct ov_gc_result res;
  if (ov_gc (c->node, &res, err) < 0)
    return -1;
  if (c->json)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "objects_removed", json_object_new_int64 (res.objects_removed));
      json_object_object_add (o, "trees_removed", json_object_new_int64 (res.trees_removed));
      json_object_object_add (o, "snapshots_removed",
                              json_object_new_int64 (res.snapshots_removed));
      json_object_object_add (o, "bytes_freed", json_object_new_int64 (res.bytes_freed));
      json_object_object_add (o, "objects_kept", json_object_new_int64 (res.objects_kept));
      json_object_object_add (o, "cache_layers_evicted", json_object_new_int64 (res.layers_evicted));
      cli_json_print (o);
    }
  else
    printf ("removed %" PRIu64 " objects, %" PRIu64 " trees, %" PRIu64
            " snapshots; freed %" PRIu64 " bytes; kept %" PRIu64 " objects; evicted %" PRIu64
            " cached layers\n",
            res.objects_removed, res.trees_removed, res.snapshots_removed, res.bytes_freed,
            res.objects_kept, res.layers_evicted);
  return 0;
}

struct fsck_out
{
  struct json_object *arr;
};

static void
fsck_problem (const char *msg, void *ctx)
{
  struct fsck_out *o = ctx;
  if (o->arr)
    json_object_array_add (o->arr, cli_json_str (msg));
  else
    printf ("problem: %s\n", msg);
}

int
cli_fsck (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "fsck", &fsck_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc != i)
    return cli_usage_error (&fsck_opts, "fsck", err, "fsck takes no arguments"), -1;
  if (cli_open_store (c, err) < 0)
    return -1;
  struct fsck_out out = { c->json ? json_object_new_array () : NULL };
  struct ov_fsck_result res;
  if (ov_fsck (c->store, fsck_problem, &out, &res, err) < 0)
    {
      if (out.arr)
        json_object_put (out.arr);
      return -1;
    }
  if (c->json)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "volumes", json_object_new_int64 (res.volumes));
      json_object_object_add (o, "containerd_snapshots",
                              json_object_new_int64 (res.containerd_snapshots));
      json_object_object_add (o, "snapshots", json_object_new_int64 (res.snapshots));
      json_object_object_add (o, "trees", json_object_new_int64 (res.trees));
      json_object_object_add (o, "objects", json_object_new_int64 (res.objects));
      json_object_object_add (o, "garbage_objects", json_object_new_int64 (res.garbage_objects));
      json_object_object_add (o, "garbage_bytes", json_object_new_int64 (res.garbage_bytes));
      json_object_object_add (o, "problems", out.arr);
      cli_json_print (o);
    }
  else
    printf ("checked %" PRIu64 " volumes, %" PRIu64 " snapshots, %" PRIu64 " trees, %" PRIu64
            " objects: %" PRIu64 " problems; %" PRIu64 " unreferenced objects (%" PRIu64
            " bytes) for gc\n",
            res.volumes, res.snapshots, res.trees, res.objects, res.problems,
            res.garbage_objects, res.garbage_bytes);
  if (res.problems)
    return ov_error_set (err, OV_ECORRUPT, 0, "%" PRIu64 " problems found", res.problems);
  return 0;
}
