/* ovsnap volume create|list|delete|history */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

static const struct cli_opts volume_opts = {
  "create NAME [--max-inodes N] | list | delete NAME | history NAME",
  "  create NAME       a new, empty volume\n"
  "    --max-inodes N  files and directories the volume may hold (default 500000)\n"
  "  list              every volume: name, head snapshot, files, bytes, created\n"
  "  delete NAME       forget a volume; its data goes at the next `ovsnap gc`\n"
  "  history NAME      snapshots newest first: id, time, parent, files, bytes, message\n",
};

static int
parse_max (int opt, const char *arg, void *ctx)
{
  if (opt != 'm')
    return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull (arg, &end, 10);
  if (errno || *end || end == arg || v == 0 || arg[0] == '-')
    return -1;
  *(uint64_t *) ctx = v;
  return 0;
}

static int
volume_create (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "max-inodes", required_argument, NULL, 'm' }, { 0 } };
  uint64_t max = OV_DEFAULT_MAX_INODES;
  int i = cli_parse (c, argc, argv, "volume create", &volume_opts, "", lo, parse_max, &max, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 1)
    return cli_usage_error (&volume_opts, "volume", err, "volume create takes one NAME"), -1;
  if (cli_open_store (c, err) < 0)
    return -1;
  struct ov_volume v;
  if (ov_volume_create (c->store, argv[i], max, &v, err) < 0)
    return -1;
  if (c->json)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "name", json_object_new_string (v.name));
      json_object_object_add (o, "head", cli_json_id (&v.head));
      json_object_object_add (o, "max_inodes", json_object_new_int64 (v.max_inodes));
      cli_json_print (o);
    }
  else
    printf ("Created volume '%s'.\n", v.name);
  volume_free (&v);
  return 0;
}

struct list_ctx
{
  struct cli *c;
  struct json_object *arr;
  ov_error_t *err;
};

static int
list_one (const struct ov_volume *v, void *ctx)
{
  struct list_ctx *l = ctx;
  struct ov_snapshot head;
  if (ov_snapshot_load (l->c->store, &v->head, &head, l->err) < 0)
    return ov_error_prefix (l->err, "volume '%s'", v->name);
  cleanup_free char *created = cli_time (v->created_ns);
  if (l->arr)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "name", json_object_new_string (v->name));
      json_object_object_add (o, "head", cli_json_id (&v->head));
      json_object_object_add (o, "files", json_object_new_int64 (head.root.inodes));
      json_object_object_add (o, "bytes", json_object_new_int64 (head.root.size));
      json_object_object_add (o, "max_inodes", json_object_new_int64 (v->max_inodes));
      json_object_object_add (o, "created", json_object_new_string (created));
      json_object_array_add (l->arr, o);
    }
  else
    {
      cleanup_free char *id = cli_short_id (&v->head);
      printf ("%-24s %-12s %10" PRIu64 " %14" PRIu64 "  %s\n", v->name, id, head.root.inodes,
              head.root.size, created);
    }
  snapshot_free (&head);
  return 0;
}

static int
volume_list (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "volume list", &volume_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc != i)
    return cli_usage_error (&volume_opts, "volume", err, "volume list takes no arguments"), -1;
  if (cli_open_store (c, err) < 0)
    return -1;
  struct list_ctx l = { c, c->json ? json_object_new_array () : NULL, err };
  if (!c->json)
    printf ("%-24s %-12s %10s %14s  %s\n", "NAME", "HEAD", "FILES", "BYTES", "CREATED");
  int r = ov_volume_list (c->store, list_one, &l, err);
  if (l.arr)
    {
      if (r == 0)
        cli_json_print (l.arr);
      else
        json_object_put (l.arr);
    }
  return r;
}

static int
volume_delete (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "volume delete", &volume_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 1)
    return cli_usage_error (&volume_opts, "volume", err, "volume delete takes one NAME"), -1;
  if (cli_open_store (c, err) < 0 || ov_volume_delete (c->store, argv[i], err) < 0)
    return -1;
  if (c->json)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "deleted", json_object_new_string (argv[i]));
      cli_json_print (o);
    }
  else
    printf ("Deleted volume '%s'. Run `ovsnap gc` to free its space.\n", argv[i]);
  return 0;
}

static int
history_one (const struct ov_snapshot *s, void *ctx)
{
  struct json_object *arr = ctx;
  cleanup_free char *t = cli_time (s->time_ns);
  if (arr)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "id", cli_json_id (&s->id));
      json_object_object_add (o, "time", json_object_new_string (t));
      json_object_object_add (o, "time_ns", json_object_new_int64 (s->time_ns));
      json_object_object_add (o, "parent", s->has_parent ? cli_json_id (&s->parent) : NULL);
      json_object_object_add (o, "files", json_object_new_int64 (s->root.inodes));
      json_object_object_add (o, "bytes", json_object_new_int64 (s->root.size));
      json_object_object_add (o, "message", cli_json_str (s->message));
      json_object_array_add (arr, o);
    }
  else
    {
      cleanup_free char *id = cli_short_id (&s->id);
      cleanup_free char *parent = s->has_parent ? cli_short_id (&s->parent) : xstrdup ("-");
      printf ("%-12s  %s  %-12s %10" PRIu64 " %14" PRIu64 "  %s\n", id, t, parent, s->root.inodes,
              s->root.size, s->message);
    }
  return 0;
}

static int
volume_history (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "volume history", &volume_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 1)
    return cli_usage_error (&volume_opts, "volume", err, "volume history takes one NAME"), -1;
  if (cli_open_store (c, err) < 0)
    return -1;
  struct ov_volume v;
  if (ov_volume_load (c->store, argv[i], &v, err) < 0)
    return -1;
  struct json_object *arr = c->json ? json_object_new_array () : NULL;
  if (!c->json)
    printf ("%-12s  %-20s  %-12s %10s %14s  %s\n", "ID", "TIME", "PARENT", "FILES", "BYTES",
            "MESSAGE");
  int r = ov_volume_history (c->store, &v, history_one, arr, err);
  volume_free (&v);
  if (arr)
    {
      if (r == 0)
        cli_json_print (arr);
      else
        json_object_put (arr);
    }
  return r;
}

int
cli_volume (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct
  {
    const char *name;
    cli_verb fn;
  } subs[] = {
    { "create", volume_create },
    { "list", volume_list },
    { "delete", volume_delete },
    { "history", volume_history },
  };
  if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
    {
      cli_print_help ("volume", &volume_opts);
      return 0;
    }
  if (argc < 2)
    return cli_usage_error (&volume_opts, "volume", err, "missing subcommand"), -1;
  for (size_t i = 0; i < ARRAY_SIZE (subs); i++)
    if (strcmp (argv[1], subs[i].name) == 0)
      return subs[i].fn (c, argc - 1, argv + 1, err);
  return cli_usage_error (&volume_opts, "volume", err, "unknown subcommand '%s'", argv[1]), -1;
}
