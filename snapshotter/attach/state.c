/* Attachment state: the JSON record in <root>/attach/<id>/, what is
 * mounted on top at the mount point, settling the two after a crash,
 * listing, status. */
#include "attach-int.h"
#include "busy.h"
#include "changeset.h"
#include "dir.h"
#include "fault.h"
#include "ingest.h"
#include "layer.h"
#include "manifest.h"
#include "mount.h"
#include "nsexec.h"
#include "pack.h"
#include "path.h"
#include "sandbox.h"
#include "trash.h"
#include "volume.h"
#include "xattr.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

void
attachment_free (struct ov_attachment *a)
{
  free (a->id);
  free (a->volume);
  free (a->dir);
  free (a->container);
  free (a->layers);
  memset (a, 0, sizeof *a);
}

void
attachment_copy (struct ov_attachment *dst, const struct ov_attachment *src)
{
  *dst = *src;
  dst->id = xstrdup (src->id);
  dst->volume = xstrdup (src->volume);
  dst->dir = xstrdup (src->dir);
  dst->container = src->container ? xstrdup (src->container) : NULL;
  dst->layers = NULL;
  if (src->nlayers)
    {
      dst->layers = xmalloc (src->nlayers * sizeof *dst->layers);
      memcpy (dst->layers, src->layers, src->nlayers * sizeof *dst->layers);
    }
}

bool
ov_attachment_alive (const struct ov_attachment *a)
{
  if (a->container == NULL)
    return ov_is_overlay_root (a->dir);
  /* a zombie keeps its /proc/PID/stat but has no namespaces left */
  char ns[64], link[64];
  snprintf (ns, sizeof ns, "/proc/%d/ns/mnt", a->pid);
  return a->pid > 0 && a->pid_start != 0 && ov_pid_start_time (a->pid) == a->pid_start
         && readlink (ns, link, sizeof link) > 0;
}

/* ---- state ---- */

int
att_state_save (struct ov_node *n, const struct ov_attachment *a, ov_error_t *err)
{
  char snap[OV_OID_STR], tree[OV_OID_STR];
  oid_hex (&a->snapshot, snap);
  oid_hex (&a->tree, tree);
  struct json_object *o = json_object_new_object ();
  json_object_object_add (o, "version", json_object_new_int (1));
  json_object_object_add (o, "id", json_object_new_string (a->id));
  json_object_object_add (o, "volume", json_object_new_string (a->volume));
  json_object_object_add (o, "dir", json_object_new_string (a->dir));
  json_object_object_add (o, "snapshot", json_object_new_string (snap));
  json_object_object_add (o, "tree", json_object_new_string (tree));
  json_object_object_add (o, "readonly", json_object_new_boolean (a->readonly));
  json_object_object_add (o, "created_ns", json_object_new_int64 (a->created_ns));
  json_object_object_add (o, "gen", json_object_new_int (a->gen));
  json_object_object_add (o, "dev", json_object_new_int64 (a->dev));
  json_object_object_add (o, "lower_dev", json_object_new_int64 (a->lower_dev));
  struct json_object *layers = json_object_new_array ();
  for (size_t i = 0; i < a->nlayers; i++)
    {
      char hex[OV_OID_STR];
      oid_hex (&a->layers[i], hex);
      json_object_array_add (layers, json_object_new_string (hex));
    }
  json_object_object_add (o, "layers", layers);
  if (a->next_gen)
    {
      char nsnap[OV_OID_STR], ntree[OV_OID_STR];
      oid_hex (&a->next_snapshot, nsnap);
      oid_hex (&a->next_tree, ntree);
      struct json_object *n = json_object_new_object ();
      json_object_object_add (n, "gen", json_object_new_int (a->next_gen));
      json_object_object_add (n, "snapshot", json_object_new_string (nsnap));
      json_object_object_add (n, "tree", json_object_new_string (ntree));
      json_object_object_add (n, "dev", json_object_new_int64 (a->next_dev));
      json_object_object_add (n, "lower_dev", json_object_new_int64 (a->next_lower_dev));
      json_object_object_add (o, "next", n);
    }
  if (a->container)
    {
      json_object_object_add (o, "container", json_object_new_string (a->container));
      json_object_object_add (o, "pid", json_object_new_int (a->pid));
      json_object_object_add (o, "pid_start", json_object_new_int64 (a->pid_start));
    }
  const char *text = json_object_to_json_string_ext (o, JSON_C_TO_STRING_PLAIN);
  struct ov_buf b = { 0 };
  buf_put (&b, text, strlen (text));
  json_object_put (o);
  cleanup_free char *key = xasprintf ("attach/%s/state", a->id);
  int r = ov_node_write (n, key, &b, err);
  buf_free (&b);
  return r;
}

static const char *
jstr (struct json_object *o, const char *k)
{
  struct json_object *v;
  if (!json_object_object_get_ex (o, k, &v) || !json_object_is_type (v, json_type_string))
    return NULL;
  return json_object_get_string (v);
}

static int
state_load (struct ov_node *n, const char *id, struct ov_attachment *a, ov_error_t *err)
{
  memset (a, 0, sizeof *a);
  cleanup_free char *key = xasprintf ("attach/%s/state", id);
  struct ov_buf b = { 0 };
  if (ov_node_read (n, key, &b, err) < 0)
    return -1;
  buf_put (&b, "", 1);
  struct json_object *o = json_tokener_parse ((const char *) b.data);
  buf_free (&b);
  const char *vid = NULL, *vol = NULL, *dir = NULL, *snap = NULL, *tree = NULL;
  struct json_object *v;
  int r = 0;
  if (o == NULL || !(vid = jstr (o, "id")) || !(vol = jstr (o, "volume")) || !(dir = jstr (o, "dir"))
      || !(snap = jstr (o, "snapshot")) || !(tree = jstr (o, "tree")))
    r = ov_corrupt (err, "%s/%s: malformed attachment state", n->root, key);
  if (r == 0)
    {
      a->id = xstrdup (vid);
      a->volume = xstrdup (vol);
      a->dir = xstrdup (dir);
      if (oid_parse (snap, &a->snapshot) < 0 || oid_parse (tree, &a->tree) < 0
          || strcmp (a->id, id) != 0)
        r = ov_corrupt (err, "%s/%s: malformed attachment state", n->root, key);
      if (json_object_object_get_ex (o, "readonly", &v))
        a->readonly = json_object_get_boolean (v);
      if (json_object_object_get_ex (o, "created_ns", &v))
        a->created_ns = json_object_get_int64 (v);
      if (json_object_object_get_ex (o, "gen", &v))
        a->gen = json_object_get_int (v);
      if (json_object_object_get_ex (o, "dev", &v))
        a->dev = json_object_get_int64 (v);
      if (json_object_object_get_ex (o, "lower_dev", &v))
        a->lower_dev = json_object_get_int64 (v);
      if (json_object_object_get_ex (o, "layers", &v) && json_object_is_type (v, json_type_array))
        {
          size_t count = json_object_array_length (v);
          a->layers = xcalloc (count + 1, sizeof *a->layers);
          for (size_t i = 0; i < count; i++)
            {
              struct json_object *x = json_object_array_get_idx (v, i);
              if (!json_object_is_type (x, json_type_string)
                  || oid_parse (json_object_get_string (x), &a->layers[a->nlayers++]) < 0)
                r = ov_corrupt (err, "%s/%s: malformed attachment state", n->root, key);
            }
        }
      if (json_object_object_get_ex (o, "next", &v) && json_object_is_type (v, json_type_object))
        {
          struct json_object *x;
          const char *ns = jstr (v, "snapshot"), *nt = jstr (v, "tree");
          if (json_object_object_get_ex (v, "gen", &x))
            a->next_gen = json_object_get_int (x);
          if (json_object_object_get_ex (v, "dev", &x))
            a->next_dev = json_object_get_int64 (x);
          if (json_object_object_get_ex (v, "lower_dev", &x))
            a->next_lower_dev = json_object_get_int64 (x);
          if (a->next_gen != a->gen + 1 || !ns || !nt || oid_parse (ns, &a->next_snapshot) < 0
              || oid_parse (nt, &a->next_tree) < 0)
            r = ov_corrupt (err, "%s/%s: malformed attachment state", n->root, key);
        }
      const char *cid = jstr (o, "container");
      if (cid)
        {
          a->container = xstrdup (cid);
          if (json_object_object_get_ex (o, "pid", &v))
            a->pid = json_object_get_int (v);
          if (json_object_object_get_ex (o, "pid_start", &v))
            a->pid_start = json_object_get_int64 (v);
          if (a->pid <= 0)
            r = ov_corrupt (err, "%s/%s: malformed attachment state", n->root, key);
        }
      if (a->gen < 1)
        r = ov_corrupt (err, "%s/%s: malformed attachment state", n->root, key);
    }
  json_object_put (o);
  if (r < 0)
    attachment_free (a);
  return r;
}

int
att_dirfd (struct ov_node *n, const char *id, ov_error_t *err)
{
  cleanup_free char *p = xasprintf ("attach/%s", id);
  int fd = openat (n->fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "open %s/%s", n->root, p);
  return fd;
}

/* Into the trash, never deleted on an operation's path (see trash.h). */
void
att_trash (struct ov_node *n, int dirfd, const char *name)
{
  if (ov_trash (n, dirfd, name, "attach") < 0)
    fprintf (stderr, "ovsnap: warning: cannot move %s to the trash: %s\n", name, strerror (errno));
}

void
att_drop_gen (struct ov_node *n, int afd, int gen)
{
  char up[32], wk[32], mname[32];
  snprintf (up, sizeof up, "upper.%d", gen);
  snprintf (wk, sizeof wk, "work.%d", gen);
  att_manifest_name (gen, mname);
  att_trash (n, afd, up);
  att_trash (n, afd, wk);
  unlinkat (afd, mname, 0);
}

pid_t
att_ns_pid (const struct ov_attachment *a)
{
  return a->container ? a->pid : 0;
}

/* Each upper has its own manifest: one that described another upper would
 * make a commit take what that upper has and this one lacks for deleted. */
void
att_manifest_name (int gen, char out[32])
{
  snprintf (out, 32, "manifest.%d", gen);
}

/* A manifest a commit left pending (killed between naming it and moving
 * it in place, before or after the head moved) becomes manifest.N, or
 * goes. Called with the attachment locked. */
struct settle_ctx
{
  struct ov_store *s;
  const struct ov_attachment *a;
  char name[32]; /* manifest.N */
};

static int
settle_pending (int afd, const char *entry, unsigned char type UNUSED, void *ctx)
{
  struct settle_ctx *c = ctx;
  size_t nl = strlen (c->name);
  struct ov_oid id;
  if (strncmp (entry, c->name, nl) != 0 || entry[nl] != '.' || oid_parse (entry + nl + 1, &id) < 0)
    return 0;
  bool has = false;
  ov_error_t e = NULL;
  if (ov_volume_has (c->s, c->a->volume, &id, &has, &e) < 0)
    ov_error_free (&e); /* decided next time */
  else if (has)
    renameat (afd, entry, afd, c->name);
  else
    unlinkat (afd, entry, 0);
  return 0;
}

static void
manifest_settle (struct ov_node *n, int afd, const struct ov_attachment *a)
{
  struct ov_store *s = n->store;
  struct settle_ctx c = { s, a, "" };
  att_manifest_name (a->gen, c.name);
  ov_dir_each (afd, settle_pending, &c);
}

/* Which upper the overlay on top at the mount point uses (0: none of ours). */
static int
live_gen (const struct ov_attachment *a, bool *readonly)
{
  struct ov_mount_top top;
  ov_error_t e = NULL;
  *readonly = false;
  if (ov_mount_top_at (att_ns_pid (a), a->dir, &top, &e) < 0)
    {
      ov_error_free (&e);
      return 0;
    }
  cleanup_free char *needle = xasprintf ("/attach/%s/upper.", a->id);
  const char *u = top.super_options ? strstr (top.super_options, needle) : NULL;
  int gen = u ? atoi (u + strlen (needle)) : 0;
  *readonly = top.readonly;
  ov_mount_top_free (&top);
  return gen;
}

/* The live mount is the truth about which upper is in use: a reload killed
 * after it saved its intent (next_gen) and before it finished leaves the
 * state to be settled by what is on top at the mount point. One killed
 * while the old mount was frozen leaves it read-only: it is made writable
 * again. Called with the attachment locked. */
int
att_reconcile (struct ov_node *n, int afd, struct ov_attachment *a, ov_error_t *err)
{
  if (!ov_attachment_alive (a))
    return 0;
  bool readonly;
  int gen = live_gen (a, &readonly);
  bool changed = false;
  if (gen > 0 && a->next_gen && gen == a->next_gen)
    {
      a->gen = a->next_gen;
      a->snapshot = a->next_snapshot;
      a->tree = a->next_tree;
      a->dev = a->next_dev;
      a->lower_dev = a->next_lower_dev;
      changed = true;
    }
  else if (gen > 0 && gen != a->gen)
    {
      a->gen = gen; /* a state from before next_gen was saved */
      changed = true;
    }
  if (a->next_gen && gen > 0)
    {
      if (a->next_gen != a->gen)
        att_drop_gen (n, afd, a->next_gen);
      a->next_gen = 0;
      changed = true;
    }
  ov_error_t e = NULL;
  if (readonly && !a->readonly && gen == a->gen
      && ov_mount_freeze (att_ns_pid (a), a->dir, a->dev, false, &e) < 0)
    {
      fprintf (stderr, "ovsnap: warning: %s stays read-only: %s\n", a->dir, e->msg);
      ov_error_free (&e);
    }
  char legacy[32];
  att_manifest_name (a->gen, legacy);
  if (faccessat (afd, legacy, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
    renameat (afd, "manifest", afd, legacy); /* written before manifests had a generation */
  manifest_settle (n, afd, a);
  if (changed && (ov_fail_err ("reconcile-save", err) < 0 || att_state_save (n, a, err) < 0))
    return ov_error_prefix (err, "settle the state of %s after an interrupted reload", a->dir);
  return 0;
}

static int
att_lock (int afd, ov_error_t *err)
{
  int fd = openat (afd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return ov_error (err, errno, "lock attachment");
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      {
        close (fd);
        return ov_error (err, errno, "lock attachment");
      }
  return fd;
}

/* The attachment's directory, locked against other commits and reloads. */
int
att_open_locked (struct ov_node *n, const struct ov_attachment *a, int *afd, int *lock,
                 ov_error_t *err)
{
  *afd = att_dirfd (n, a->id, err);
  if (*afd < 0)
    return -1;
  *lock = att_lock (*afd, err);
  return *lock < 0 ? -1 : 0;
}

/* What callers list is what is mounted: an attachment left behind by a
 * killed reload is settled here, unless a command holds it (that one
 * settles it itself). */
static void
settle (struct ov_node *n, struct ov_attachment *a)
{
  ov_error_t e = NULL;
  cleanup_close int afd = att_dirfd (n, a->id, &e);
  ov_error_free (&e);
  if (afd < 0)
    return;
  cleanup_close int lock = openat (afd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock >= 0 && flock (lock, LOCK_EX | LOCK_NB) == 0 && att_reconcile (n, afd, a, &e) < 0)
    {
      /* status shows what the live mount says; the state is saved next time */
      fprintf (stderr, "ovsnap: warning: %s\n", e->msg);
      ov_error_free (&e);
    }
}

struct each_ctx
{
  struct ov_node *n;
  int (*cb) (const struct ov_attachment *a, void *ctx);
  void *ctx;
};

struct names
{
  char **v;
  size_t n;
};

static int
collect_name (int dirfd UNUSED, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct names *ns = ctx;
  if (name[0] == '.')
    return 0;
  ns->v = xrealloc (ns->v, (ns->n + 1) * sizeof *ns->v);
  ns->v[ns->n++] = xstrdup (name);
  return 0;
}

/* Every attachment with a readable state. strict: a state that is there
 * but cannot be read is an error, naming it, after the others were seen
 * (gc must not evict the layers of an attachment it cannot read). */
static int
each_state (struct ov_node *n, bool strict, bool settled,
            int (*cb) (const struct ov_attachment *a, void *ctx),
            void *ctx, ov_error_t *err)
{
  struct names ids = { 0 };
  if (ov_dir_each_at (n->fd, "attach", true, collect_name, &ids) < 0)
    return ov_error (err, errno, "read %s/attach", n->root);
  int r = 0;
  ov_error_t unreadable = NULL;
  for (size_t i = 0; i < ids.n; i++)
    {
      struct ov_attachment a;
      ov_error_t e = NULL;
      if (r == 0 && state_load (n, ids.v[i], &a, &e) == 0)
        {
          if (settled)
            settle (n, &a);
          r = cb (&a, ctx);
          attachment_free (&a);
        }
      /* no state yet: an attachment being created, nothing mounted */
      if (e && e->code != OV_ENOTFOUND && unreadable == NULL)
        {
          unreadable = e;
          e = NULL;
        }
      ov_error_free (&e);
      free (ids.v[i]);
    }
  free (ids.v);
  if (r == 0 && strict && unreadable)
    {
      *err = unreadable;
      return ov_error_prefix (err, "attachment state unreadable");
    }
  ov_error_free (&unreadable);
  return r < 0 ? -1 : 0;
}

int
ov_attachment_each (struct ov_node *n, int (*cb) (const struct ov_attachment *a, void *ctx),
                    void *ctx, ov_error_t *err)
{
  return each_state (n, false, false, cb, ctx, err);
}

int
ov_attachment_each_settled (struct ov_node *n, int (*cb) (const struct ov_attachment *a, void *ctx),
                            void *ctx, ov_error_t *err)
{
  return each_state (n, false, true, cb, ctx, err);
}

struct find_ctx
{
  const char *dir;
  struct ov_attachment *out;
  bool found;
};

static int
find_cb (const struct ov_attachment *a, void *ctx)
{
  struct find_ctx *f = ctx;
  if (f->found || a->container || strcmp (a->dir, f->dir) != 0)
    return 0;
  attachment_copy (f->out, a);
  f->found = true;
  return 0;
}

int
ov_attachment_find (struct ov_node *n, const char *dir, struct ov_attachment *out,
                    ov_error_t *err)
{
  char *real = realpath (dir, NULL);
  if (real == NULL)
    return ov_error (err, errno, "%s", dir);
  struct find_ctx f = { real, out, false };
  memset (out, 0, sizeof *out);
  int r = ov_attachment_each (n, find_cb, &f, err);
  if (r == 0 && !f.found)
    r = ov_error_set (err, OV_ENOTFOUND, 0, "%s: no ovsnap volume is mounted there", real);
  free (real);
  return r;
}


struct scan
{
  const char *path; /* of the directory, from the upper's root */
  const struct ov_manifest *m;
  struct ov_attach_status *st;
};

static int
scan_entry (int dfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct scan *sc = ctx;
  struct stat sb;
  if (fstatat (dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  cleanup_free char *cp = sc->path[0] ? xasprintf ("%s/%s", sc->path, name) : xstrdup (name);
  struct ov_sig sig;
  sig_from_stat (&sig, &sb);
  const struct ov_sig *prev = manifest_get (sc->m, cp);
  if (!(prev && sig_eq (prev, &sig)))
    sc->st->dirty = true;
  sc->st->upper_entries++;
  sc->st->upper_bytes += S_ISREG (sb.st_mode) ? (uint64_t) sb.st_size : 0;
  struct scan sub = { cp, sc->m, sc->st };
  if (S_ISDIR (sb.st_mode))
    ov_dir_each_at (dfd, name, true, scan_entry, &sub);
  return 0;
}

int
ov_attachment_status (struct ov_node *n, const struct ov_attachment *a,
                      struct ov_attach_status *st, ov_error_t *err)
{
  memset (st, 0, sizeof *st);
  st->mounted = ov_attachment_alive (a);
  cleanup_close int afd = att_dirfd (n, a->id, err);
  if (afd < 0)
    return -1;
  struct ov_manifest m;
  char mname[32];
  att_manifest_name (a->gen, mname);
  if (manifest_load (afd, mname, &m, err) < 0)
    return -1;
  char up[32];
  snprintf (up, sizeof up, "upper.%d", a->gen);
  struct scan sc = { "", &m, st };
  ov_dir_each_at (afd, up, true, scan_entry, &sc);
  manifest_free (&m);
  return 0;
}

struct trees_ctx
{
  struct ov_oid *v;
  size_t n;
};

static int
trees_cb (const struct ov_attachment *a, void *ctx)
{
  struct trees_ctx *t = ctx;
  t->v = xrealloc (t->v, (t->n + a->nlayers + 1) * sizeof *t->v);
  t->v[t->n++] = a->tree;
  for (size_t i = 0; i < a->nlayers; i++)
    t->v[t->n++] = a->layers[i];
  return 0;
}

int
ov_attachment_trees (struct ov_node *n, struct ov_oid **trees, size_t *count, ov_error_t *err)
{
  struct trees_ctx t = { 0 };
  int r = each_state (n, true, false, trees_cb, &t, err);
  *trees = t.v;
  *count = t.n;
  return r;
}
