/* ovsnap snapshots ls: the snapshots of an ovsnap-snapshotter daemon, read
 * from its --root offline (no RPC): key, kind, parent, the ovsnap snapshot
 * a committed one is stored as (none: a plain directory), size. */
#include "cli.h"
#include "ctree.h"
#include "dir.h"
#include "file.h"
#include "snapdb.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

static const struct cli_opts snapshots_opts = {
  "ls [--dir DIR]",
  "  --dir DIR   the daemon's --root (default /var/lib/ovsnap-snapshotter)\n"
  "Lists the containerd snapshots (NAMESPACE/N/KEY), their kind, parent, the ovsnap\n"
  "snapshot a committed one is stored as, and its size (bytes: measured at commit).\n",
};

struct list
{
  struct ov_snap **v;
  size_t n;
  int dfd;
  const char *dir;
  ov_error_t *err;
};

static int
load_one (int dirfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct list *l = ctx;
  if (name[0] < '1' || name[0] > '9' || strspn (name, "0123456789") != strlen (name))
    return 0; /* a temp file of a write under way */
  cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct ov_buf b = { 0 };
  if (fd < 0 || ov_read_fd (fd, &b, 1 << 20) < 0)
    {
      if (errno == ENOENT)
        return 0; /* removed meanwhile */
      ov_error (l->err, errno, "read %s/meta/%s", l->dir, name);
      buf_free (&b);
      return -1;
    }
  cleanup_free char *what = xasprintf ("%s/meta/%s", l->dir, name);
  struct ov_snap *s;
  int r = ov_snap_decode (b.data, b.len, what, &s, l->err);
  buf_free (&b);
  if (r < 0)
    return -1;
  l->v = xrealloc (l->v, (l->n + 1) * sizeof *l->v);
  l->v[l->n++] = s;
  return 0;
}

static const struct ov_snap *
by_id (struct list *l, uint64_t id)
{
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i]->id == id)
      return l->v[i];
  return NULL;
}

/* the ovsnap snapshot a committed one is stored as; false: none */
static bool
tree_of (struct list *l, uint64_t id, struct ov_oid *out)
{
  char name[32];
  snprintf (name, sizeof name, "t/%" PRIu64, id);
  cleanup_close int fd = openat (l->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct ov_buf b = { 0 };
  bool ok = fd >= 0 && ov_read_fd (fd, &b, 256) == 0
            && ov_ctree_parse_oid (b.data, b.len, out) == 0;
  buf_free (&b);
  return ok;
}

static int
cmp_id (const void *a, const void *b)
{
  const struct ov_snap *x = *(struct ov_snap *const *) a, *y = *(struct ov_snap *const *) b;
  return x->id < y->id ? -1 : x->id > y->id;
}

int
cli_snapshots (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "dir", required_argument, NULL, 'd' }, { 0 } };
  const char *dir = "/var/lib/ovsnap-snapshotter";
  if (argc < 2 || strcmp (argv[1], "ls") != 0)
    {
      if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
        {
          cli_print_help ("snapshots", &snapshots_opts);
          return 0;
        }
      return cli_usage_error (&snapshots_opts, "snapshots", err, "snapshots: the one subcommand is ls");
    }
  int i = cli_parse (c, argc - 1, argv + 1, "snapshots ls", &snapshots_opts, "", lo, cli_opt_string,
                     &dir, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (i != argc - 1)
    return cli_usage_error (&snapshots_opts, "snapshots", err, "snapshots ls takes no arguments");
  struct list l = { NULL, 0, -1, dir, err };
  l.dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (l.dfd < 0)
    return ov_error (err, errno, "open %s", dir);
  int r = ov_dir_each_at (l.dfd, "meta", true, load_one, &l);
  if (r < 0 && *err == NULL)
    ov_error (err, errno, "read %s/meta", dir);
  if (r == 0)
    {
      qsort (l.v, l.n, sizeof *l.v, cmp_id);
      struct json_object *arr = c->json ? json_object_new_array () : NULL;
      if (!c->json)
        printf ("%-8s %-9s %-40s %-10s %-24s %s\n", "ID", "KIND", "SNAPSHOT", "SIZE", "PARENT",
                "KEY");
      for (size_t k = 0; k < l.n; k++)
        {
          const struct ov_snap *s = l.v[k];
          const struct ov_snap *p = s->parent ? by_id (&l, s->parent) : NULL;
          struct ov_oid t;
          bool has_tree = s->kind == OV_SNAP_COMMITTED && tree_of (&l, s->id, &t);
          char hex[OV_OID_STR] = "-";
          if (has_tree)
            oid_hex (&t, hex);
          if (c->json)
            {
              struct json_object *o = json_object_new_object ();
              json_object_object_add (o, "id", json_object_new_int64 ((int64_t) s->id));
              json_object_object_add (o, "key", cli_json_str (s->key));
              json_object_object_add (o, "kind", json_object_new_string (ov_snap_kind_name (s->kind)));
              json_object_object_add (o, "parent", p ? cli_json_str (p->key) : NULL);
              json_object_object_add (o, "snapshot", has_tree ? cli_json_id (&t) : NULL);
              if (s->kind == OV_SNAP_COMMITTED)
                {
                  json_object_object_add (o, "size", json_object_new_int64 (s->size));
                  json_object_object_add (o, "inodes", json_object_new_int64 (s->inodes));
                }
              json_object_array_add (arr, o);
            }
          else
            {
              char size[24] = "-";
              if (s->kind == OV_SNAP_COMMITTED)
                snprintf (size, sizeof size, "%" PRId64, s->size);
              struct ov_buf kb = { 0 };
              /* keys are containerd's, any bytes: printed escaped */
              for (const char *q = s->key; *q; q++)
                {
                  char e[8];
                  unsigned char ch = *q;
                  int n = ch >= 0x20 && ch < 0x7f ? snprintf (e, sizeof e, "%c", ch)
                                                  : snprintf (e, sizeof e, "\\x%02x", ch);
                  buf_put (&kb, e, n);
                }
              buf_u8 (&kb, 0);
              printf ("%-8" PRIu64 " %-9s %-40s %-10s %-24" PRIu64 " %s\n", s->id,
                      ov_snap_kind_name (s->kind), hex, size, p ? p->id : 0, (char *) kb.data);
              buf_free (&kb);
            }
        }
      if (c->json)
        cli_json_print (arr);
    }
  for (size_t k = 0; k < l.n; k++)
    ov_snap_free (l.v[k]);
  free (l.v);
  close (l.dfd);
  return r < 0 ? -1 : 0;
}
