/* ovsnap mount, commit, reload, umount, status: volumes attached to host
 * directories. */
#include "agent.h"
#include "attach.h"
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

static const struct cli_opts mount_opts = {
  "NAME DIR [--at SNAP] [--ro]",
  "Mounts volume NAME at directory DIR: overlay(lower = the snapshot, cached\n"
  "once per node and shared; upper = this attachment's own changes).\n"
  "  --at SNAP  an older snapshot (id prefix, head, head~N)\n"
  "  --ro       read-only: no upper, nothing to commit\n",
};
static const struct cli_opts commit_opts = {
  "DIR|CONTAINER [-m MSG]",
  "Captures what changed under DIR (or in every volume of a container) since the last commit (new and changed\n"
  "files, deletions, opaque directories, metadata) and merges it onto the\n"
  "volume's newest snapshot, per path, last writer wins. Prints the new\n"
  "snapshot id; with nothing to commit, prints the current one.\n"
  "  -m, --message MSG  snapshot message\n",
};
static const struct cli_opts reload_opts = {
  "DIR|CONTAINER",
  "Remounts DIR (or every volume of a running container) on the volume's newest snapshot. Changes not yet committed\n"
  "stay (and shadow other writers); committed ones give way to newer commits.\n"
  "Refused (exit 4, \"volume busy\") while a process has a file open in DIR,\n"
  "its cwd or root inside it, or one of its files mapped.\n",
};
static const struct cli_opts umount_opts = {
  "DIR [--commit]",
  "Unmounts DIR and discards its attachment (uncommitted changes are lost).\n"
  "  --commit  commit first\n",
};
static const struct cli_opts status_opts = {
  "",
  "Lists attachments: volume, directory, snapshot, dirty or clean (changes\n"
  "not yet committed), size of the upper.\n",
};

struct mount_args
{
  const char *at;
  bool ro;
};

static int
mount_opt (int opt, const char *arg, void *ctx)
{
  struct mount_args *a = ctx;
  if (opt == 'a')
    a->at = arg;
  else if (opt == 'r')
    a->ro = true;
  else
    return -1;
  return 0;
}

int
cli_mount (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "at", required_argument, NULL, 'a' },
                                      { "ro", no_argument, NULL, 'r' },
                                      { 0 } };
  struct mount_args a = { 0 };
  int i = cli_parse (c, argc, argv, "mount", &mount_opts, "", lo, mount_opt, &a, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 2)
    return cli_usage_error (&mount_opts, "mount", err, "expected NAME DIR"), -1;
  if (cli_open_store (c, err) < 0)
    return -1;
  struct ov_attachment att;
  struct ov_attach_req req = { .volume = argv[i], .at = a.at, .readonly = a.ro, .dir = argv[i + 1] };
  if (ov_attach (c->node, &req, &att, err) < 0)
    return ov_error_prefix (err, "mount volume '%s' on %s", argv[i], argv[i + 1]);
  if (c->json)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "id", json_object_new_string (att.id));
      json_object_object_add (o, "volume", json_object_new_string (att.volume));
      json_object_object_add (o, "dir", cli_json_str (att.dir));
      json_object_object_add (o, "snapshot", cli_json_id (&att.snapshot));
      cli_json_print (o);
    }
  else
    {
      cleanup_free char *id = cli_short_id (&att.snapshot);
      printf ("mounted volume '%s' (snapshot %s) on %s\n", att.volume, id, att.dir);
    }
  attachment_free (&att);
  return 0;
}

/* commit and reload act on the attachment at DIR */
static int
find (struct cli *c, const char *dir, struct ov_attachment *att, ov_error_t *err)
{
  if (cli_open_store (c, err) < 0)
    return -1;
  return ov_attachment_find (c->node, dir, att, err);
}

/* ... or, when no host directory is attached there, on every volume of the
 * container with that id. Returns 1 if `arg` was not a container either. */
static int
container_op (struct cli *c, const char *arg, bool reload, const char *message, ov_error_t *err)
{
  struct ov_buf ids = { 0 };
  ov_error_t e = NULL;
  int failed = reload ? ov_container_reload_all (c->node, arg, &ids, &e)
                      : ov_container_commit_all (c->node, arg, message, &ids, &e);
  if (failed < 0 && e->code == OV_ENOTFOUND)
    {
      ov_error_free (&e);
      buf_free (&ids);
      return 1;
    }
  buf_put (&ids, "", 1);
  if (ids.len > 1)
    puts ((const char *) ids.data);
  buf_free (&ids);
  if (failed)
    {
      *err = e;
      return -1;
    }
  return 0;
}

static int
find_or_container (struct cli *c, const char *arg, bool reload, const char *message,
                   struct ov_attachment *att, ov_error_t *err)
{
  ov_error_t e = NULL;
  if (find (c, arg, att, &e) == 0)
    return 0;
  if (e->code != OV_ENOTFOUND || c->node == NULL)
    {
      *err = e;
      return -1;
    }
  int r = container_op (c, arg, reload, message ? message : "commit (host)", err);
  if (r == 1)
    {
      *err = e;
      return -1;
    }
  ov_error_free (&e);
  return r < 0 ? -1 : 1;
}

int
cli_commit (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "message", required_argument, NULL, 'm' }, { 0 } };
  const char *message = NULL;
  int i = cli_parse (c, argc, argv, "commit", &commit_opts, "m:", lo, cli_opt_string, &message, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 1)
    return cli_usage_error (&commit_opts, "commit", err, "expected DIR"), -1;
  struct ov_attachment att;
  int f = find_or_container (c, argv[i], false, message, &att, err);
  if (f != 0)
    return f < 0 ? -1 : 0;
  cleanup_free char *msg = message ? xstrdup (message) : xasprintf ("commit %s", att.dir);
  struct ov_snapshot snap;
  bool changed;
  int r = ov_commit (c->node, &att, msg, &snap, &changed, err);
  attachment_free (&att);
  if (r < 0)
    return -1;
  if (c->json)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "snapshot", cli_json_id (&snap.id));
      json_object_object_add (o, "changed", json_object_new_boolean (changed));
      cli_json_print (o);
    }
  else
    {
      cli_print_snapshot (c, &snap);
      if (!changed)
        fprintf (stderr, "ovsnap commit: nothing to commit\n");
    }
  snapshot_free (&snap);
  return 0;
}

int
cli_reload (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "reload", &reload_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 1)
    return cli_usage_error (&reload_opts, "reload", err, "expected DIR"), -1;
  struct ov_attachment att;
  int f = find_or_container (c, argv[i], true, NULL, &att, err);
  if (f != 0)
    return f < 0 ? -1 : 0;
  struct ov_snapshot snap;
  int r = ov_reload (c->node, &att, &snap, err);
  attachment_free (&att);
  if (r < 0)
    return -1;
  cli_print_snapshot (c, &snap);
  snapshot_free (&snap);
  return 0;
}

int
cli_umount (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "commit", no_argument, NULL, 'c' }, { 0 } };
  bool commit = false;
  int i = cli_parse (c, argc, argv, "umount", &umount_opts, "", lo, cli_opt_flag, &commit, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 1)
    return cli_usage_error (&umount_opts, "umount", err, "expected DIR"), -1;
  struct ov_attachment att;
  if (find (c, argv[i], &att, err) < 0)
    return -1;
  int r;
  if (commit && !att.readonly)
    {
      struct ov_snapshot snap;
      bool changed;
      cleanup_free char *msg = xasprintf ("commit %s (umount)", att.dir);
      r = ov_commit_detach (c->node, &att, msg, &snap, &changed, err);
      if (r == 0)
        {
          if (!c->json)
            cli_print_snapshot (c, &snap);
          snapshot_free (&snap);
        }
    }
  else
    r = ov_detach (c->node, &att, NULL, err);
  attachment_free (&att);
  return r;
}

struct status_ctx
{
  struct cli *c;
  struct json_object *arr;
  ov_error_t *err;
};

static int
status_one (const struct ov_attachment *a, void *ctx)
{
  struct status_ctx *s = ctx;
  struct ov_attach_status st;
  if (ov_attachment_status (s->c->node, a, &st, s->err) < 0)
    return -1;
  if (s->arr)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "id", json_object_new_string (a->id));
      json_object_object_add (o, "volume", json_object_new_string (a->volume));
      json_object_object_add (o, "dir", cli_json_str (a->dir));
      json_object_object_add (o, "snapshot", cli_json_id (&a->snapshot));
      json_object_object_add (o, "mounted", json_object_new_boolean (st.mounted));
      json_object_object_add (o, "dirty", json_object_new_boolean (st.dirty));
      json_object_object_add (o, "readonly", json_object_new_boolean (a->readonly));
      json_object_object_add (o, "upper_bytes", json_object_new_int64 (st.upper_bytes));
      json_object_object_add (o, "upper_entries", json_object_new_int64 (st.upper_entries));
      json_object_object_add (o, "container",
                              a->container ? cli_json_str (a->container) : NULL);
      json_object_array_add (s->arr, o);
    }
  else
    {
      cleanup_free char *id = cli_short_id (&a->snapshot);
      cleanup_free char *where = a->container ? xasprintf ("%s (container %.12s)", a->dir, a->container)
                                              : xstrdup (a->dir);
      printf ("%-20s %-12s %-9s %12" PRIu64 "  %s\n", a->volume, id,
              !st.mounted ? "unmounted" : a->readonly ? "ro" : st.dirty ? "dirty" : "clean",
              st.upper_bytes, where);
    }
  return 0;
}

int
cli_status (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "status", &status_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc != i)
    return cli_usage_error (&status_opts, "status", err, "status takes no arguments"), -1;
  if (cli_open_store (c, err) < 0)
    return -1;
  struct status_ctx s = { c, c->json ? json_object_new_array () : NULL, err };
  if (!c->json)
    printf ("%-20s %-12s %-9s %12s  %s\n", "VOLUME", "SNAPSHOT", "STATE", "UPPER-BYTES", "DIR");
  int r = ov_attachment_each_settled (c->node, status_one, &s, err);
  if (s.arr)
    {
      if (r == 0)
        cli_json_print (s.arr);
      else
        json_object_put (s.arr);
    }
  return r;
}
