#include "attach.h"
#include "busy.h"
#include "changeset.h"
#include "fault.h"
#include "ingest.h"
#include "layer.h"
#include "pack.h"
#include "manifest.h"
#include "mount.h"
#include "nsexec.h"
#include "path.h"
#include "sandbox.h"
#include "trash.h"
#include "dir.h"
#include "volume.h"
#include "xattr.h"

#include <pthread.h>
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

static int
state_save (struct ov_store *s, const struct ov_attachment *a, ov_error_t *err)
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
  int r = ov_store_put_named (s, key, &b, err);
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
state_load (struct ov_store *s, const char *id, struct ov_attachment *a, ov_error_t *err)
{
  memset (a, 0, sizeof *a);
  cleanup_free char *key = xasprintf ("attach/%s/state", id);
  struct ov_buf b = { 0 };
  if (ov_store_get_named (s, key, &b, err) < 0)
    return -1;
  buf_put (&b, "", 1);
  struct json_object *o = json_tokener_parse ((const char *) b.data);
  buf_free (&b);
  const char *vid = NULL, *vol = NULL, *dir = NULL, *snap = NULL, *tree = NULL;
  struct json_object *v;
  int r = 0;
  if (o == NULL || !(vid = jstr (o, "id")) || !(vol = jstr (o, "volume")) || !(dir = jstr (o, "dir"))
      || !(snap = jstr (o, "snapshot")) || !(tree = jstr (o, "tree")))
    r = ov_corrupt (err, "%s/%s: malformed attachment state", s->root, key);
  if (r == 0)
    {
      a->id = xstrdup (vid);
      a->volume = xstrdup (vol);
      a->dir = xstrdup (dir);
      if (oid_parse (snap, &a->snapshot) < 0 || oid_parse (tree, &a->tree) < 0
          || strcmp (a->id, id) != 0)
        r = ov_corrupt (err, "%s/%s: malformed attachment state", s->root, key);
      if (json_object_object_get_ex (o, "readonly", &v))
        a->readonly = json_object_get_boolean (v);
      if (json_object_object_get_ex (o, "created_ns", &v))
        a->created_ns = json_object_get_int64 (v);
      if (json_object_object_get_ex (o, "gen", &v))
        a->gen = json_object_get_int (v);
      if (json_object_object_get_ex (o, "dev", &v))
        a->dev = json_object_get_int64 (v);
      if (json_object_object_get_ex (o, "layers", &v) && json_object_is_type (v, json_type_array))
        {
          size_t n = json_object_array_length (v);
          a->layers = xcalloc (n + 1, sizeof *a->layers);
          for (size_t i = 0; i < n; i++)
            {
              struct json_object *x = json_object_array_get_idx (v, i);
              if (!json_object_is_type (x, json_type_string)
                  || oid_parse (json_object_get_string (x), &a->layers[a->nlayers++]) < 0)
                r = ov_corrupt (err, "%s/%s: malformed attachment state", s->root, key);
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
          if (a->next_gen != a->gen + 1 || !ns || !nt || oid_parse (ns, &a->next_snapshot) < 0
              || oid_parse (nt, &a->next_tree) < 0)
            r = ov_corrupt (err, "%s/%s: malformed attachment state", s->root, key);
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
            r = ov_corrupt (err, "%s/%s: malformed attachment state", s->root, key);
        }
      if (a->gen < 1)
        r = ov_corrupt (err, "%s/%s: malformed attachment state", s->root, key);
    }
  json_object_put (o);
  if (r < 0)
    attachment_free (a);
  return r;
}

static int
att_dirfd (struct ov_store *s, const char *id, ov_error_t *err)
{
  cleanup_free char *p = xasprintf ("attach/%s", id);
  int fd = openat (ov_store_fd (s), p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "open %s/%s", s->root, p);
  return fd;
}

/* Into the trash, never deleted on an operation's path (see trash.h). */
static void
to_trash (struct ov_store *s, int dirfd, const char *name)
{
  if (ov_trash (s, dirfd, name, "attach") < 0)
    fprintf (stderr, "ovsnap: warning: cannot move %s to the trash: %s\n", name, strerror (errno));
}

/* Each upper has its own manifest: one that described another upper would
 * make a commit take what that upper has and this one lacks for deleted. */
static void
manifest_name (int gen, char out[32])
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
manifest_settle (struct ov_store *s, int afd, const struct ov_attachment *a)
{
  struct settle_ctx c = { s, a, "" };
  manifest_name (a->gen, c.name);
  ov_dir_each (afd, settle_pending, &c);
}

/* Which upper the overlay on top at the mount point uses (0: none of ours). */
static int
live_gen (const struct ov_attachment *a, bool *readonly)
{
  struct ov_mount_top top;
  ov_error_t e = NULL;
  *readonly = false;
  if (ov_mount_top_at (a->container ? a->pid : 0, a->dir, &top, &e) < 0)
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
static void
reconcile (struct ov_store *s, int afd, struct ov_attachment *a)
{
  if (!ov_attachment_alive (a))
    return;
  bool readonly;
  int gen = live_gen (a, &readonly);
  bool changed = false;
  if (gen > 0 && a->next_gen && gen == a->next_gen)
    {
      a->gen = a->next_gen;
      a->snapshot = a->next_snapshot;
      a->tree = a->next_tree;
      a->dev = a->next_dev;
      changed = true;
    }
  else if (gen > 0 && gen != a->gen)
    {
      a->gen = gen; /* a state from before next_gen was saved */
      changed = true;
    }
  if (a->next_gen && gen > 0)
    {
      char up[32], wk[32];
      if (a->next_gen != a->gen)
        {
          char mname[32];
          snprintf (up, sizeof up, "upper.%d", a->next_gen);
          snprintf (wk, sizeof wk, "work.%d", a->next_gen);
          manifest_name (a->next_gen, mname);
          to_trash (s, afd, up);
          to_trash (s, afd, wk);
          unlinkat (afd, mname, 0);
        }
      a->next_gen = 0;
      changed = true;
    }
  ov_error_t e = NULL;
  if (readonly && !a->readonly && gen == a->gen
      && ov_mount_freeze (a->container ? a->pid : 0, a->dir, a->dev, false, &e) < 0)
    {
      fprintf (stderr, "ovsnap: warning: %s stays read-only: %s\n", a->dir, e->msg);
      ov_error_free (&e);
    }
  char legacy[32];
  manifest_name (a->gen, legacy);
  if (faccessat (afd, legacy, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
    renameat (afd, "manifest", afd, legacy); /* written before manifests had a generation */
  manifest_settle (s, afd, a);
  if (changed && state_save (s, a, &e) < 0)
    {
      fprintf (stderr, "ovsnap: warning: %s: %s\n", a->dir, e->msg);
      ov_error_free (&e);
    }
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
static int
att_open_locked (struct ov_store *s, const struct ov_attachment *a, int *afd, int *lock,
                 ov_error_t *err)
{
  *afd = att_dirfd (s, a->id, err);
  if (*afd < 0)
    return -1;
  *lock = att_lock (*afd, err);
  return *lock < 0 ? -1 : 0;
}

/* What callers list is what is mounted: an attachment left behind by a
 * killed reload is settled here, unless a command holds it (that one
 * settles it itself). */
static void
settle (struct ov_store *s, struct ov_attachment *a)
{
  ov_error_t e = NULL;
  cleanup_close int afd = att_dirfd (s, a->id, &e);
  ov_error_free (&e);
  if (afd < 0)
    return;
  cleanup_close int lock = openat (afd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock >= 0 && flock (lock, LOCK_EX | LOCK_NB) == 0)
    reconcile (s, afd, a);
}

struct each_ctx
{
  struct ov_store *s;
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
each_state (struct ov_store *s, bool strict, int (*cb) (const struct ov_attachment *a, void *ctx),
            void *ctx, ov_error_t *err)
{
  struct names ids = { 0 };
  if (ov_dir_each_at (ov_store_fd (s), "attach", true, collect_name, &ids) < 0)
    return ov_error (err, errno, "read %s/attach", s->root);
  size_t n = ids.n;
  int r = 0;
  ov_error_t unreadable = NULL;
  for (size_t i = 0; i < n; i++)
    {
      struct ov_attachment a;
      ov_error_t e = NULL;
      if (r == 0 && state_load (s, ids.v[i], &a, &e) == 0)
        {
          settle (s, &a);
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
ov_attachment_each (struct ov_store *s, int (*cb) (const struct ov_attachment *a, void *ctx),
                    void *ctx, ov_error_t *err)
{
  return each_state (s, false, cb, ctx, err);
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
ov_attachment_find (struct ov_store *s, const char *dir, struct ov_attachment *out,
                    ov_error_t *err)
{
  char *real = realpath (dir, NULL);
  if (real == NULL)
    return ov_error (err, errno, "%s", dir);
  struct find_ctx f = { real, out, false };
  memset (out, 0, sizeof *out);
  int r = ov_attachment_each (s, find_cb, &f, err);
  if (r == 0 && !f.found)
    r = ov_error_set (err, OV_ENOTFOUND, 0, "%s: no ovsnap volume is mounted there", real);
  free (real);
  return r;
}

/* ---- attach ---- */

static int
random_id (char out[17])
{
  uint8_t b[8];
  if (getrandom (b, sizeof b, 0) != sizeof b)
    return -1;
  for (int i = 0; i < 8; i++)
    sprintf (out + 2 * i, "%02x", b[i]);
  return 0;
}

/* The upper's root is the mount's root: give it the snapshot root's metadata. */
static int
upper_root_meta (int fd, const struct ov_entry *root, ov_error_t *err)
{
  if (fchown (fd, root->uid, root->gid) < 0 || fchmod (fd, root->mode & 07777) < 0)
    return ov_error (err, errno, "set upper root metadata");
  if (xattrs_write (fd, -1, "upper", root, err) < 0)
    return -1;
  struct timespec ts[2] = { { root->mtime_sec, root->mtime_nsec }, { root->mtime_sec, root->mtime_nsec } };
  if (futimens (fd, ts) < 0)
    return ov_error (err, errno, "set upper root times");
  return 0;
}

static int
make_upper (struct ov_store *s, int afd, int gen, const struct ov_entry *root, ov_error_t *err)
{
  char up[32], wk[32];
  snprintf (up, sizeof up, "upper.%d", gen);
  snprintf (wk, sizeof wk, "work.%d", gen);
  /* left over by a reload that was killed before it switched */
  to_trash (s, afd, up);
  to_trash (s, afd, wk);
  if (mkdirat (afd, up, 0755) < 0 || mkdirat (afd, wk, 0700) < 0)
    return ov_error (err, errno, "create upper and work dirs");
  if (root == NULL)
    return 0;
  cleanup_close int fd = openat (afd, up, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "open %s", up);
  return upper_root_meta (fd, root, err);
}

static void
set_layers (struct ov_attachment *a, const struct ov_layers *l)
{
  free (a->layers);
  a->layers = xmalloc ((l->n + 1) * sizeof *a->layers);
  memcpy (a->layers, l->trees, l->n * sizeof *a->layers);
  a->nlayers = l->n;
}

/* A deep delta stack gets a flat copy, built by a detached process so the
 * mount or reload that noticed returns at once. */
struct flatten_job
{
  struct ov_store *s;
  const struct ov_snapshot *snap;
};

static void
flatten_run (void *ctx)
{
  struct flatten_job *j = ctx;
  ov_error_t e = NULL;
  /* the inherited shared store lock keeps gc away until this is done */
  if (ov_layers_flatten (j->s, j->snap, &e) < 0)
    fprintf (stderr, "ovsnap: flattening cache layer: %s\n", e->msg);
}

static void
flatten_later (struct ov_store *s, bool deep, const struct ov_snapshot *snap)
{
  struct flatten_job j = { s, snap };
  if (deep)
    ov_run_detached (flatten_run, &j);
}

/* The upper root as it is now counts as committed: a commit records the
 * mount root's metadata only when something changed it. */
static int
seed_manifest (int afd, int gen, ov_error_t *err)
{
  char up[32];
  snprintf (up, sizeof up, "upper.%d", gen);
  struct stat st;
  if (fstatat (afd, up, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return ov_error (err, errno, "stat %s", up);
  struct ov_manifest m = { 0 };
  struct ov_sig sig;
  sig_from_stat (&sig, &st);
  manifest_put (&m, "", &sig);
  char name[32];
  manifest_name (gen, name);
  int r = manifest_save (afd, name, &m, err);
  manifest_free (&m);
  return r;
}

/* A detached overlay of the attachment's upper and work dirs (generation
 * gen) on layers l; its device goes to *dev. */
static int
build_overlay (struct ov_store *s, const struct ov_attachment *a, int gen,
               const struct ov_layers *l, uint64_t *dev, ov_error_t *err)
{
  cleanup_free char *up = xasprintf ("%s/attach/%s/upper.%d", s->root, a->id, gen);
  cleanup_free char *wk = xasprintf ("%s/attach/%s/work.%d", s->root, a->id, gen);
  struct ov_overlay o = { l->dirs, l->n, up, wk, a->readonly };
  int mfd = ov_overlay_build (&o, err);
  struct stat st;
  if (mfd >= 0 && fstat (mfd, &st) < 0)
    {
      int e = errno;
      close (mfd);
      return ov_error (err, e, "stat new overlay");
    }
  if (mfd >= 0)
    *dev = st.st_dev;
  return mfd;
}

/* Mounts the attachment's first overlay (recording its device in a->dev). */
static int
mount_overlay (struct ov_store *s, struct ov_attachment *a, const struct ov_layers *l,
               const char *rootfs, ov_error_t *err)
{
  cleanup_close int mfd = build_overlay (s, a, a->gen, l, &a->dev, err);
  if (mfd < 0)
    return -1;
  if (a->container)
    return ov_mount_move_ns (a->pid, rootfs, a->dir, mfd, err);
  return ov_mount_move (mfd, a->dir, err);
}

/* A cached layer close to snap: its own, or one of its recent ancestors'. */
static void
nearby_layer (struct ov_store *s, const struct ov_snapshot *snap, struct ov_oid *out, bool *found)
{
  *found = false;
  struct ov_oid id = snap->id;
  for (int i = 0; i < 16; i++)
    {
      struct ov_snapshot p;
      ov_error_t e = NULL;
      if (ov_snapshot_load (s, &id, &p, &e) < 0)
        {
          ov_error_free (&e);
          return;
        }
      char hex[OV_OID_STR], path[PATH_MAX];
      oid_hex (&p.root.oid, hex);
      snprintf (path, sizeof path, "cache/layers/%s/info", hex);
      bool have = faccessat (ov_store_fd (s), path, F_OK, 0) == 0;
      bool more = p.has_parent;
      if (have)
        {
          *out = p.root.oid;
          *found = true;
        }
      id = p.parent;
      snapshot_free (&p);
      if (have || !more)
        return;
    }
}

struct dir_taken
{
  const char *dir, *container;
  bool taken;
};

static int
taken_cb (const struct ov_attachment *a, void *ctx)
{
  struct dir_taken *t = ctx;
  bool same_place = (a->container == NULL) == (t->container == NULL)
                    && (a->container == NULL || strcmp (a->container, t->container) == 0);
  t->taken |= same_place && strcmp (a->dir, t->dir) == 0;
  return 0;
}

/* Where the mount goes: a host directory (made absolute and checked), or
 * a path inside a container (normalized; resolved in its root later). */
static char *
target_dir (const struct ov_attach_req *req, ov_error_t *err)
{
  if (req->container)
    {
      if (req->dir[0] != '/' || strstr (req->dir, "/../") || strcmp (req->dir, "/") == 0)
        {
          ov_error_set (err, OV_EUSAGE, 0, "container path '%s' must be absolute, not /", req->dir);
          return NULL;
        }
      char *d = xstrdup (req->dir);
      size_t n = strlen (d);
      while (n > 1 && d[n - 1] == '/')
        d[--n] = '\0';
      return d;
    }
  char *real = realpath (req->dir, NULL);
  struct stat st;
  if (real == NULL || stat (real, &st) < 0)
    {
      ov_error (err, errno, "mount point %s", req->dir);
      free (real);
      return NULL;
    }
  if (!S_ISDIR (st.st_mode))
    {
      ov_error (err, ENOTDIR, "mount point %s", req->dir);
      free (real);
      return NULL;
    }
  return real;
}

static int
load_or_create_volume (struct ov_store *s, const struct ov_attach_req *req, struct ov_volume *v,
                       ov_error_t *err)
{
  ov_error_t e = NULL;
  if (ov_volume_load (s, req->volume, v, &e) == 0)
    return 0;
  if (e->code != OV_ENOTFOUND || !req->create_if_missing)
    {
      *err = e;
      return -1;
    }
  ov_error_free (&e);
  if (ov_volume_create (s, req->volume, OV_DEFAULT_MAX_INODES, v, &e) == 0)
    return 0;
  ov_error_free (&e);
  /* created meanwhile by someone else */
  return ov_volume_load (s, req->volume, v, err);
}

int
ov_attach (struct ov_store *s, const struct ov_attach_req *req, struct ov_attachment *out,
           ov_error_t *err)
{
  memset (out, 0, sizeof *out);
  char *real = target_dir (req, err);
  if (real == NULL)
    return -1;
  struct dir_taken t = { real, req->container, false };
  if (ov_attachment_each (s, taken_cb, &t, err) < 0 || t.taken)
    {
      free (real);
      return t.taken ? ov_error_set (err, OV_EGENERIC, 0,
                                     "%s already has an ovsnap volume mounted (ovsnap umount first)",
                                     req->dir)
                     : -1;
    }
  struct ov_volume v;
  if (load_or_create_volume (s, req, &v, err) < 0)
    {
      free (real);
      return -1;
    }
  struct ov_oid id;
  struct ov_snapshot snap = { 0 };
  int r = ov_volume_resolve (s, &v, req->at ? req->at : "head", &id, err);
  volume_free (&v);
  if (r == 0)
    r = ov_snapshot_load (s, &id, &snap, err);
  struct ov_layers layers = { 0 };
  if (r == 0)
    {
      struct ov_oid base;
      bool found;
      nearby_layer (s, &snap, &base, &found);
      r = ov_layers_get (s, &snap, found ? &base : NULL, &layers, err);
    }
  if (r < 0)
    {
      free (real);
      snapshot_free (&snap);
      return -1;
    }
  char aid[17];
  if (random_id (aid) < 0)
    {
      free (real);
      snapshot_free (&snap);
      ov_layers_free (&layers);
      return ov_error (err, errno, "attachment id");
    }
  out->id = xstrdup (aid);
  out->volume = xstrdup (req->volume);
  out->dir = real;
  out->snapshot = snap.id;
  out->tree = snap.root.oid;
  out->readonly = req->readonly;
  out->created_ns = now_ns ();
  out->gen = 1;
  set_layers (out, &layers);
  if (req->container)
    {
      out->container = xstrdup (req->container);
      out->pid = req->pid;
      out->pid_start = ov_pid_start_time (req->pid);
      if (out->pid_start == 0)
        r = ov_error_set (err, OV_EGENERIC, ESRCH, "container %s: process %d", req->container,
                          req->pid);
    }
  int rootfd = ov_store_fd (s);
  mkdirat (rootfd, "attach", 0700);
  cleanup_free char *apath = xasprintf ("attach/%s", aid);
  if (r == 0 && mkdirat (rootfd, apath, 0700) < 0)
    r = ov_error (err, errno, "create %s/%s", s->root, apath);
  int afd = r == 0 ? att_dirfd (s, aid, err) : -1;
  if (r == 0 && afd < 0)
    r = -1;
  if (r == 0)
    r = make_upper (s, afd, 1, &snap.root, err);
  /* State first: a crash after mounting never leaves a mount we do not know. */
  if (r == 0)
    r = state_save (s, out, err);
  if (r == 0)
    r = mount_overlay (s, out, &layers, req->rootfs, err);
  /* after mounting: overlay marks its upper root (xattrs, so ctime) */
  if (r == 0)
    r = seed_manifest (afd, 1, err);
  if (r == 0)
    r = state_save (s, out, err); /* now with the overlay's device */
  if (r < 0)
    {
      if (afd >= 0)
        close (afd);
      afd = -1;
      to_trash (s, rootfd, apath);
      attachment_free (out);
    }
  if (afd >= 0)
    close (afd);
  if (r == 0)
    flatten_later (s, layers.deep, &snap);
  ov_layers_free (&layers);
  snapshot_free (&snap);
  return r;
}

/* ---- commit ---- */

struct manifest_job;

struct commit_ctx
{
  struct ov_change *change;
  uint64_t nlinks;
  struct manifest_job *mj;
};

static int
commit_edit (struct ov_store *s, const struct ov_snapshot *head, struct ov_entry *root,
             uint64_t *next_link_id, void *ctx, ov_error_t *err)
{
  struct commit_ctx *c = ctx;
  change_renumber_links (c->change, head->next_link_id - 1);
  *next_link_id = head->next_link_id + c->nlinks;
  bool gone;
  ov_trace ("commit: head loaded");
  if (changeset_apply (s, &head->root, c->change, root, &gone, err) < 0)
    return -1;
  ov_trace ("commit: merged");
  if (entry_same (root, &head->root))
    {
      /* e.g. a file copied up and put back as it was: nothing to record */
      entry_free (root);
      return 1;
    }
  return 0;
}

/* A path the last commit captured that is now gone from the upper, with
 * no whiteout in its place, was created and deleted above the lower (which
 * never had it): overlay leaves no trace, so the manifest is what tells.
 * Deleting the topmost vanished path covers what was below it. */
static void
add_vanished (struct ov_change *root, const struct ov_manifest *prev, const struct ov_manifest *next)
{
  for (size_t i = 0; i < prev->cap; i++)
    {
      const char *path = prev->paths[i];
      if (path == NULL || path[0] == '\0' || manifest_get (next, path))
        continue;
      cleanup_free char *parent = xstrdup (path);
      char *slash = strrchr (parent, '/');
      if (slash)
        *slash = '\0';
      const struct ov_sig *ps = slash ? manifest_get (next, parent) : NULL;
      if (slash && (ps == NULL || !S_ISDIR (ps->mode)))
        continue; /* its parent vanished too, or is no directory now */
      struct ov_path p;
      ov_error_t e = NULL;
      if (ov_path_parse (path, &p, &e) < 0)
        {
          ov_error_free (&e);
          continue;
        }
      struct ov_change *c = change_at (root, p.comps, p.n);
      for (size_t k = 0; k < c->n; k++)
        change_free (&c->kids[k]);
      c->n = 0;
      entry_free (&c->entry);
      c->op = OV_CH_DELETE;
      ov_path_free (&p);
    }
}

/* What a commit builds; freed after the worker has replied. */
struct commit_mem
{
  struct ov_change change;
  struct ov_manifest prev, next;
  struct ov_ingest_fds dirfds;
};

static void
commit_mem_free (struct commit_mem *m)
{
  change_free (&m->change);
  manifest_free (&m->prev);
  manifest_free (&m->next);
  ov_ingest_fds_close (&m->dirfds);
}

/* The new manifest is written (and synced) to a side file on a thread
 * while the volume is updated. Before the head moves, the side file takes
 * the name manifest.N.<snapshot> (and the directory is synced): after a
 * crash the next command keeps it as manifest.N if that snapshot made it
 * into the volume's history, and drops it if not (manifest_settle). So a
 * commit neither re-applies changes it already committed, over newer
 * writers, nor takes changes it never committed for committed. */
struct manifest_job
{
  int afd;
  const char *name;
  const struct ov_manifest *m;
  ov_error_t err;
  int r;
  pthread_t th;
  bool threaded, joined;
  char pending[64]; /* manifest.N.<snapshot>, once named */
};

static void *
manifest_job_run (void *arg)
{
  struct manifest_job *j = arg;
  j->r = manifest_prepare (j->afd, j->name, j->m, &j->err);
  return NULL;
}

static void
manifest_job_join (struct manifest_job *j)
{
  if (j->threaded && !j->joined)
    pthread_join (j->th, NULL);
  j->joined = true;
}

static int
commit_before_head (const struct ov_snapshot *snap, void *ctx, ov_error_t *err)
{
  struct manifest_job *j = ((struct commit_ctx *) ctx)->mj;
  manifest_job_join (j);
  if (j->r < 0)
    {
      *err = j->err;
      j->err = NULL;
      return ov_error_prefix (err, "manifest");
    }
  if (ov_fail_err ("commit-manifest", err) < 0)
    return -1;
  char hex[OV_OID_STR];
  oid_hex (&snap->id, hex);
  snprintf (j->pending, sizeof j->pending, "%s.%s", j->name, hex);
  cleanup_free char *tmp = xasprintf ("%s.tmp", j->name);
  if (renameat (j->afd, tmp, j->afd, j->pending) < 0 || fsync (j->afd) < 0)
    {
      j->pending[0] = '\0';
      return ov_error (err, errno, "save manifest");
    }
  return 0;
}

static int
commit_locked (struct ov_store *s, struct ov_attachment *a, int afd, const char *up,
               const char *message, struct commit_mem *m, struct ov_snapshot *out, bool *changed,
               ov_error_t *err)
{
  *changed = false;
  char mname[32];
  manifest_name (a->gen, mname);
  ov_trace ("commit: worker started");
  if (manifest_load (afd, mname, &m->prev, err) < 0)
    return -1;
  ov_trace ("commit: manifest loaded");
  struct ov_ingest_opts opts = { .upper = true, .prev = &m->prev, .next = &m->next,
                                 .dirfds = &m->dirfds };
  struct commit_ctx c = { &m->change, 1, NULL };
  int r = ov_fail_err ("commit-ingest", err);
  if (r == 0)
    r = ov_ingest (s, AT_FDCWD, up, &opts, &c.nlinks, &m->change, NULL, err);
  c.nlinks--;
  if (r < 0)
    return -1;
  add_vanished (&m->change, &m->prev, &m->next);
  change_prune (&m->change);
  ov_trace ("commit: changes known");
  if (change_is_noop (&m->change))
    {
      struct ov_volume v;
      if (ov_volume_load (s, a->volume, &v, err) < 0)
        return -1;
      r = ov_snapshot_load (s, &v.head, out, err);
      volume_free (&v);
      return r;
    }
  struct manifest_job mj = { .afd = afd, .name = mname, .m = &m->next };
  c.mj = &mj;
  mj.threaded = pthread_create (&mj.th, NULL, manifest_job_run, &mj) == 0;
  if (!mj.threaded)
    manifest_job_run (&mj);
  ov_fault ("commit-before-update");
  r = ov_fail_err ("commit-update", err);
  if (r == 0)
    r = ov_volume_update_ex (s, a->volume, message, commit_edit, commit_before_head, &c, out, err);
  *changed = r == 0;
  ov_trace ("commit: volume updated");
  manifest_job_join (&mj);
  ov_fault ("commit-manifest-pending");
  /* The head has moved: the pending manifest takes its place. A crash
   * before this rename is settled by manifest_settle. */
  if (r == 0 && mj.pending[0] && renameat (afd, mj.pending, afd, mname) < 0)
    r = ov_error (err, errno, "commit %s: save manifest", a->dir);
  if (r < 0 && mj.pending[0] && !*changed)
    unlinkat (afd, mj.pending, 0); /* the head never moved to it */
  if (r < 0 || mj.r < 0)
    manifest_discard (afd, mname);
  ov_error_free (&mj.err);
  ov_trace ("commit: manifest saved");
  return r;
}

struct commit_job
{
  struct ov_store *s;
  struct ov_attachment *a;
  int afd;
  int lock; /* the caller holds it; the worker's copy is closed at once */
  const char *upper; /* absolute: the worker sees it read-only and nodev */
  const char *message;
};

/* Runs in the sandbox: reads the container's upper, writes the store. */
static int
commit_worker (void *ctx, struct ov_buf *result, ov_error_t *err)
{
  struct commit_job *j = ctx;
  /* a worker still freeing memory after its reply must not keep the
   * attachment locked (flock belongs to the open file, shared by fork) */
  close (j->lock);
  struct ov_snapshot snap;
  struct commit_mem m = { 0 };
  bool changed;
  int r = commit_locked (j->s, j->a, j->afd, j->upper, j->message, &m, &snap, &changed, err);
  if (r == 0)
    {
      char hex[OV_OID_STR];
      oid_hex (&snap.id, hex);
      cleanup_free char *line = xasprintf ("%d %s", changed, hex);
      buf_put (result, line, strlen (line));
      snapshot_free (&snap);
      /* freeing what the commit built takes a while: not on the caller's time */
      ov_sandbox_reply (result);
    }
  commit_mem_free (&m);
  return r;
}

static int
commit_held (struct ov_store *s, struct ov_attachment *a, int afd, int lock, const char *message,
             struct ov_snapshot *out, bool *changed, ov_error_t *err)
{
  cleanup_free char *rel = xasprintf ("%s/attach/%s/upper.%d", s->root, a->id, a->gen);
  cleanup_free char *upper = realpath (rel, NULL);
  if (upper == NULL)
    return ov_error (err, errno, "commit %s: open %s", a->dir, rel);
  struct commit_job job = { s, a, afd, lock, upper, message };
  struct ov_buf res = { 0 };
  ov_trace ("commit: locked");
  int r = ov_sandbox_run (upper, commit_worker, &job, &res, err);
  ov_trace ("commit: worker done");
  buf_put (&res, "", 1);
  int ch = 0;
  char hex[OV_OID_STR + 8];
  struct ov_oid id;
  if (r == 0 && (sscanf ((const char *) res.data, "%d %44s", &ch, hex) != 2 || oid_parse (hex, &id) < 0))
    r = ov_error (err, 0, "commit worker: unexpected reply");
  buf_free (&res);
  if (r == 0)
    r = ov_snapshot_load (s, &id, out, err);
  if (r < 0)
    return ov_error_prefix (err, "commit %s", a->dir);
  *changed = ch;
  return 0;
}

/* Releases the attachment before any background work starts: a detached
 * process inherits open files, and with them the lock. */
static void
att_close (int *afd, int *lock)
{
  if (*lock >= 0)
    close (*lock);
  if (*afd >= 0)
    close (*afd);
  *lock = *afd = -1;
}

int
ov_commit (struct ov_store *s, struct ov_attachment *a, const char *message,
           struct ov_snapshot *out, bool *changed, ov_error_t *err)
{
  if (a->readonly)
    return ov_error_set (err, OV_EUSAGE, 0, "%s is mounted read-only: nothing to commit", a->dir);
  cleanup_close int afd = -1, lock = -1;
  if (att_open_locked (s, a, &afd, &lock, err) < 0)
    return -1;
  reconcile (s, afd, a);
  int r = commit_held (s, a, afd, lock, message, out, changed, err);
  att_close (&afd, &lock);
  if (r == 0 && *changed)
    ov_packs_consolidate_later (s);
  return r;
}

/* ---- reload ---- */

struct carry
{
  int newfd;
  const char *path; /* of the directory, from the upper's root */
  const struct ov_manifest *m;
  ov_error_t *err;
  long kept;
};

static long carry_over (int oldfd, int newfd, const char *path, const struct ov_manifest *m,
                        ov_error_t *err);

/* A directory carried over keeps its metadata and, unless already
 * committed, its opaqueness. */
static int
keep_dir_meta (int o, int n, const char *cp, const struct stat *st, const struct ov_sig *prev,
               ov_error_t *err)
{
  struct ov_entry e = { 0 };
  bool opaque;
  int r = 0;
  if (xattrs_read (o, -1, cp, &e, &opaque, err) < 0)
    r = -1;
  else if (fchown (n, st->st_uid, st->st_gid) < 0 || fchmod (n, st->st_mode & 07777) < 0)
    r = ov_error (err, errno, "keep directory %s", cp);
  else if (xattrs_write (n, -1, cp, &e, err) < 0)
    r = -1;
  else if (opaque && !(prev && prev->opaque) && fsetxattr (n, "trusted.overlay.opaque", "y", 1, 0) < 0)
    r = ov_error (err, errno, "keep opaque directory %s", cp);
  else
    {
      struct timespec ts[2] = { st->st_atim, st->st_mtim };
      futimens (n, ts);
    }
  entry_free (&e);
  return r;
}

static int
carry_entry (int oldfd, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct carry *c = ctx;
  struct stat st;
  if (fstatat (oldfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return (int) (c->kept = ov_error (c->err, errno, "stat upper %s/%s", c->path, name));
  cleanup_free char *cp = c->path[0] ? xasprintf ("%s/%s", c->path, name) : xstrdup (name);
  struct ov_sig sig;
  sig_from_stat (&sig, &st);
  const struct ov_sig *prev = manifest_get (c->m, cp);
  bool committed = prev && sig_eq (prev, &sig);
  if (!S_ISDIR (st.st_mode))
    {
      if (committed)
        return 0;
      if (linkat (oldfd, name, c->newfd, name, 0) < 0)
        return (int) (c->kept = ov_error (c->err, errno, "keep %s", cp));
      c->kept++;
      return 0;
    }
  if (mkdirat (c->newfd, name, 0700) < 0)
    return (int) (c->kept = ov_error (c->err, errno, "keep directory %s", cp));
  cleanup_close int o = openat (oldfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int n = openat (c->newfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  long sub = o >= 0 && n >= 0 ? carry_over (o, n, cp, c->m, c->err) : ov_error (c->err, errno, "open %s", cp);
  if (sub == 0 && committed)
    unlinkat (c->newfd, name, AT_REMOVEDIR); /* nothing in it to keep */
  else if (sub >= 0 && keep_dir_meta (o, n, cp, &st, prev, c->err) < 0)
    sub = -1;
  if (sub < 0)
    return (int) (c->kept = -1);
  if (!(sub == 0 && committed))
    c->kept += sub + 1;
  return 0;
}

/* Copy into newfd what the old upper holds that is not committed (or
 * changed since): files by hardlink, directories anew with their metadata.
 * Returns the number of entries kept, or -1. */
static long
carry_over (int oldfd, int newfd, const char *path, const struct ov_manifest *m, ov_error_t *err)
{
  struct carry c = { newfd, path, m, err, 0 };
  int r = ov_dir_each (oldfd, carry_entry, &c);
  if (r < 0 && c.kept >= 0)
    return ov_error (err, errno, "read upper %s", path);
  return c.kept;
}

/* The new upper's root takes the old one's metadata (it is the mount's
 * root); *committed says whether the last commit recorded it as it is. */
static int
carry_root (int ofd, int nfd, const struct ov_manifest *m, bool *committed, ov_error_t *err)
{
  struct stat rs;
  if (fstat (ofd, &rs) < 0)
    return ov_error (err, errno, "stat old upper");
  struct ov_sig sig;
  sig_from_stat (&sig, &rs);
  const struct ov_sig *prev = manifest_get (m, "");
  *committed = prev && sig_eq (prev, &sig);
  struct ov_entry root = { 0 };
  root.mode = rs.st_mode;
  root.uid = rs.st_uid;
  root.gid = rs.st_gid;
  root.mtime_sec = rs.st_mtim.tv_sec;
  root.mtime_nsec = rs.st_mtim.tv_nsec;
  return upper_root_meta (nfd, &root, err);
}

/* Fills upper.<gen> from the (frozen) upper of the live generation with
 * what is not committed, or changed since. */
static int
carry_upper (int afd, const struct ov_attachment *a, int gen, bool *root_committed,
             ov_error_t *err)
{
  char oldup[32], newup[32], mname[32];
  snprintf (oldup, sizeof oldup, "upper.%d", a->gen);
  snprintf (newup, sizeof newup, "upper.%d", gen);
  manifest_name (a->gen, mname);
  if (ov_fail_err ("reload-carry-over", err) < 0)
    return -1;
  struct ov_manifest m;
  if (manifest_load (afd, mname, &m, err) < 0)
    return -1;
  cleanup_close int ofd = openat (afd, oldup, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int nfd = openat (afd, newup, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int r = 0;
  if (ofd < 0 || nfd < 0)
    r = ov_error (err, errno, "open upper dirs");
  if (r == 0 && carry_over (ofd, nfd, "", &m, err) < 0)
    r = -1;
  if (r == 0)
    r = carry_root (ofd, nfd, &m, root_committed, err);
  manifest_free (&m);
  return r;
}

/* Who holds the attachment's mount, as a "volume busy" error; 0 if nobody. */
static int
refuse_if_held (const struct ov_attachment *a, ov_error_t *err)
{
  dev_t dev = a->dev;
  struct stat st;
  if (dev == 0 && a->container == NULL)
    {
      if (stat (a->dir, &st) < 0)
        return ov_error (err, errno, "%s", a->dir);
      dev = st.st_dev;
    }
  char *holders = NULL;
  int n = ov_holders (dev, &holders, 8, err);
  if (n > 0)
    ov_error_set (err, OV_EBUSY, 0, "volume busy: %s", holders);
  free (holders);
  return n != 0 ? -1 : 0;
}

/* After a failed step: the old mount writable again, the new upper gone,
 * the state without the reload's intent. */
static void
reload_undo (struct ov_store *s, int afd, struct ov_attachment *a, int gen, bool frozen,
             bool intent_saved)
{
  ov_error_t e = NULL;
  if (frozen && ov_mount_freeze (a->container ? a->pid : 0, a->dir, a->dev, false, &e) < 0)
    {
      fprintf (stderr, "ovsnap: warning: %s stays read-only until the next commit or reload: %s\n",
               a->dir, e->msg);
      ov_error_free (&e);
    }
  a->next_gen = 0;
  if (intent_saved && state_save (s, a, &e) < 0)
    ov_error_free (&e); /* the next command settles it from the live mount */
  char up[32], wk[32], mname[32];
  snprintf (up, sizeof up, "upper.%d", gen);
  snprintf (wk, sizeof wk, "work.%d", gen);
  manifest_name (gen, mname);
  to_trash (s, afd, up);
  to_trash (s, afd, wk);
  unlinkat (afd, mname, 0);
}

/* layers := l, plus (keep) what the attachment stood on before */
static void
set_layers_keeping (struct ov_attachment *a, const struct ov_layers *l, bool keep)
{
  size_t old = keep ? a->nlayers : 0;
  struct ov_oid *v = xmalloc ((l->n + old + 1) * sizeof *v);
  memcpy (v, l->trees, l->n * sizeof *v);
  if (old)
    memcpy (v + l->n, a->layers, old * sizeof *v);
  free (a->layers);
  a->layers = v;
  a->nlayers = l->n + old;
}

static int
reload_locked (struct ov_store *s, struct ov_attachment *a, int afd, struct ov_snapshot *out,
               bool *deep, ov_error_t *err)
{
  if (!ov_attachment_alive (a))
    return ov_error_set (err, OV_EGENERIC, 0, "%s is not mounted (%s)", a->dir,
                         a->container ? "the container has stopped"
                                      : "ovsnap umount, then mount again");
  if (refuse_if_held (a, err) < 0)
    return -1;
  struct ov_volume v;
  if (ov_volume_load (s, a->volume, &v, err) < 0)
    return -1;
  int r = ov_snapshot_load (s, &v.head, out, err);
  volume_free (&v);
  if (r < 0)
    return -1;
  struct ov_layers layers;
  if (ov_layers_get (s, out, &a->tree, &layers, err) < 0)
    {
      snapshot_free (out);
      return -1;
    }
  pid_t pid = a->container ? a->pid : 0;
  int gen = a->gen + 1;
  bool frozen = false, intent = false, root_committed = false;
  uint64_t dev = 0;
  int mfd = -1;
  char mname[32];
  manifest_name (gen, mname);
  unlinkat (afd, mname, 0); /* left by a reload killed before it switched */
  r = make_upper (s, afd, gen, NULL, err);
  /* From here on nothing can change the old upper: what is carried over is
   * all there is. A writer gets EROFS for these few milliseconds. */
  if (r == 0 && !a->readonly)
    {
      r = ov_mount_freeze (pid, a->dir, a->dev, true, err);
      frozen = r == 0;
      ov_error_t e = NULL;
      if (r < 0 && (*err)->code == OV_EBUSY && refuse_if_held (a, &e) < 0 && e->code == OV_EBUSY)
        {
          ov_error_free (err);
          *err = e; /* name the writer */
          e = NULL;
        }
      ov_error_free (&e);
    }
  ov_fault ("reload-frozen");
  if (r == 0 && !a->readonly)
    r = carry_upper (afd, a, gen, &root_committed, err);
  if (r == 0)
    r = ov_fail_err ("reload-mount", err);
  if (r == 0)
    r = mfd = build_overlay (s, a, gen, &layers, &dev, err);
  if (r >= 0 && root_committed)
    r = seed_manifest (afd, gen, err);
  /* The intent goes to disk before the mount point changes: whatever
   * happens next, the state names every layer a live mount can stand on,
   * and the next command can tell from the mount which generation won. */
  if (r >= 0)
    {
      a->next_gen = gen;
      a->next_snapshot = out->id;
      a->next_tree = out->root.oid;
      a->next_dev = dev;
      set_layers_keeping (a, &layers, true);
      r = ov_fail_err ("reload-intent", err);
      if (r == 0)
        r = state_save (s, a, err);
      intent = r == 0;
    }
  ov_fault ("reload-intent-saved");
  int lazy = r >= 0 ? ov_mount_replace (pid, a->dir, a->dev, mfd, err) : -1;
  if (mfd >= 0)
    close (mfd);
  if (lazy < 0)
    {
      reload_undo (s, afd, a, gen, frozen, intent);
      ov_layers_free (&layers);
      snapshot_free (out);
      return -1;
    }
  ov_fault ("reload-switched");
  /* Switched. A lazily detached old mount may still serve its holder: the
   * layers it stands on stay listed (gc keeps them) until the next reload. */
  char oldup[32], oldwk[32], oldman[32];
  snprintf (oldup, sizeof oldup, "upper.%d", a->gen);
  snprintf (oldwk, sizeof oldwk, "work.%d", a->gen);
  manifest_name (a->gen, oldman);
  a->gen = gen;
  a->snapshot = a->next_snapshot;
  a->tree = a->next_tree;
  a->dev = a->next_dev;
  a->next_gen = 0;
  if (!lazy)
    set_layers (a, &layers);
  ov_error_t e = NULL;
  if (ov_fail_err ("reload-final-save", &e) < 0 || state_save (s, a, &e) < 0)
    {
      /* the saved intent lets the next command finish the state */
      fprintf (stderr, "ovsnap: warning: reload %s: %s\n", a->dir, e->msg);
      ov_error_free (&e);
    }
  to_trash (s, afd, oldup);
  to_trash (s, afd, oldwk);
  unlinkat (afd, oldman, 0);
  *deep = layers.deep;
  ov_layers_free (&layers);
  return 0;
}

int
ov_reload (struct ov_store *s, struct ov_attachment *a, struct ov_snapshot *out, ov_error_t *err)
{
  cleanup_close int afd = -1, lock = -1;
  if (att_open_locked (s, a, &afd, &lock, err) < 0)
    return -1;
  reconcile (s, afd, a);
  bool deep = false;
  if (reload_locked (s, a, afd, out, &deep, err) < 0)
    return ov_error_prefix (err, "reload %s", a->dir);
  att_close (&afd, &lock);
  flatten_later (s, deep, out);
  return 0;
}

/* ---- detach, status ---- */

static int
detach_held (struct ov_store *s, struct ov_attachment *a, const char *rootfs, ov_error_t *err)
{
  if (ov_fail_err ("umount", err) < 0)
    return -1;
  if (a->container && ov_attachment_alive (a) && ov_umount_ns (a->pid, rootfs, a->dir, err) < 0)
    {
      if ((*err)->errnum != EINVAL && (*err)->errnum != ENOENT)
        return -1;
      ov_error_free (err); /* not mounted there (any more) */
    }
  /* A reload killed half-way may have left a second mount beneath. */
  while (a->container == NULL && ov_is_overlay_root (a->dir))
    {
      struct stat st;
      bool busy = stat (a->dir, &st) == 0;
      if (ov_umount (a->dir, err) == 0)
        continue;
      char *holders = NULL;
      ov_error_t e2 = NULL;
      if ((*err)->code == OV_EBUSY && busy && ov_holders (st.st_dev, &holders, 8, &e2) > 0)
        {
          ov_error_free (err);
          ov_error_set (err, OV_EBUSY, 0, "unmount %s: volume busy: %s", a->dir, holders);
        }
      free (holders);
      ov_error_free (&e2);
      return -1;
    }
  cleanup_free char *apath = xasprintf ("attach/%s", a->id);
  cleanup_free char *state = xasprintf ("attach/%s/state", a->id);
  unlinkat (ov_store_fd (s), state, 0);
  to_trash (s, ov_store_fd (s), apath);
  return 0;
}

int
ov_detach (struct ov_store *s, struct ov_attachment *a, const char *rootfs, ov_error_t *err)
{
  cleanup_close int afd = -1, lock = -1;
  if (att_open_locked (s, a, &afd, &lock, err) < 0)
    return -1;
  return detach_held (s, a, rootfs, err);
}

int
ov_commit_detach (struct ov_store *s, struct ov_attachment *a, const char *message,
                  struct ov_snapshot *out, bool *changed, ov_error_t *err)
{
  cleanup_close int afd = -1, lock = -1;
  if (att_open_locked (s, a, &afd, &lock, err) < 0)
    return -1;
  reconcile (s, afd, a);
  pid_t pid = a->container ? a->pid : 0;
  bool frozen = false;
  if (!a->readonly && ov_attachment_alive (a))
    {
      /* frozen, the upper cannot gain what the commit would miss */
      if (ov_mount_freeze (pid, a->dir, a->dev, true, err) < 0)
        return ov_error_prefix (err, "unmount %s", a->dir);
      frozen = true;
    }
  int r = 0;
  *changed = false;
  memset (out, 0, sizeof *out);
  if (!a->readonly)
    r = commit_held (s, a, afd, lock, message, out, changed, err);
  bool committed = r == 0 && !a->readonly;
  if (r == 0)
    r = detach_held (s, a, NULL, err);
  ov_error_t e = NULL;
  if (r < 0 && frozen && ov_mount_freeze (pid, a->dir, a->dev, false, &e) < 0)
    ov_error_free (&e);
  if (r < 0 && committed)
    snapshot_free (out);
  att_close (&afd, &lock);
  if (r == 0 && *changed)
    ov_packs_consolidate_later (s);
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
ov_attachment_status (struct ov_store *s, const struct ov_attachment *a,
                      struct ov_attach_status *st, ov_error_t *err)
{
  memset (st, 0, sizeof *st);
  st->mounted = ov_attachment_alive (a);
  cleanup_close int afd = att_dirfd (s, a->id, err);
  if (afd < 0)
    return -1;
  struct ov_manifest m;
  char mname[32];
  manifest_name (a->gen, mname);
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
ov_attachment_trees (struct ov_store *s, struct ov_oid **trees, size_t *n, ov_error_t *err)
{
  struct trees_ctx t = { 0 };
  int r = each_state (s, true, trees_cb, &t, err);
  *trees = t.v;
  *n = t.n;
  return r;
}
