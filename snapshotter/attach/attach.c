/* Attaching a volume (the first overlay at a directory or in a
 * container) and detaching it. */
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
int
att_upper_root_meta (int fd, const struct ov_entry *root, ov_error_t *err)
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

int
att_make_upper (struct ov_node *n, int afd, int gen, const struct ov_entry *root, ov_error_t *err)
{
  /* left over by a reload that was killed before it switched */
  att_drop_gen (n, afd, gen);
  char up[32], wk[32];
  snprintf (up, sizeof up, "upper.%d", gen);
  snprintf (wk, sizeof wk, "work.%d", gen);
  if (mkdirat (afd, up, 0755) < 0 || mkdirat (afd, wk, 0700) < 0)
    return ov_error (err, errno, "create upper and work dirs");
  if (root == NULL)
    return 0;
  cleanup_close int fd = openat (afd, up, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "open %s", up);
  return att_upper_root_meta (fd, root, err);
}

void
att_set_layers (struct ov_attachment *a, const struct ov_layers *l)
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
  struct ov_node *n;
  const struct ov_snapshot *snap;
};

static void
flatten_run (void *ctx)
{
  struct flatten_job *j = ctx;
  ov_error_t e = NULL;
  /* the inherited shared store lock keeps gc away until this is done */
  if (ov_layers_flatten (j->n, j->snap, &e) < 0)
    fprintf (stderr, "ovsnap: flattening cache layer: %s\n", e->msg);
}

void
att_flatten_later (struct ov_node *n, bool deep, const struct ov_snapshot *snap)
{
  struct flatten_job j = { n, snap };
  if (deep)
    ov_run_detached (flatten_run, &j);
}

/* The upper root as it is now counts as committed: a commit records the
 * mount root's metadata only when something changed it. */
int
att_seed_manifest (int afd, int gen, ov_error_t *err)
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
  att_manifest_name (gen, name);
  int r = manifest_save (afd, name, &m, err);
  manifest_free (&m);
  return r;
}

/* A detached overlay of the attachment's upper and work dirs (generation
 * gen) on layers l; its device goes to *dev, its joined lower's (if the
 * stack has one) to *lower_dev. */
int
att_build_overlay (struct ov_node *n, const struct ov_attachment *a, int gen,
                   const struct ov_layers *l, uint64_t *dev, uint64_t *lower_dev,
                   ov_error_t *err)
{
  cleanup_free char *up = xasprintf ("%s/attach/%s/upper.%d", n->root, a->id, gen);
  cleanup_free char *wk = xasprintf ("%s/attach/%s/work.%d", n->root, a->id, gen);
  int *fds = NULL;
  size_t nfds = 0;
  if (ov_layers_mount (n, l, &fds, &nfds, err) < 0)
    return -1;
  struct stat lst;
  *lower_dev = l->metacopy && nfds == 1 && fstat (fds[0], &lst) == 0 ? lst.st_dev : 0;
  /* images mounted as lowers are file systems of their own: xino=on gives
   * every file the overlay's st_dev (what holders are found by) and unique
   * inode numbers; a joined stack (metacopy) already spends the bits */
  struct ov_overlay o = { NULL, nfds, up, wk, a->readonly, fds, !l->metacopy };
  int mfd = ov_overlay_build (&o, err);
  for (size_t i = 0; i < nfds; i++)
    close (fds[i]);
  free (fds);
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
mount_overlay (struct ov_node *n, struct ov_attachment *a, const struct ov_layers *l,
               const char *rootfs, ov_error_t *err)
{
  cleanup_close int mfd = att_build_overlay (n, a, a->gen, l, &a->dev, &a->lower_dev, err);
  if (mfd < 0)
    return -1;
  if (a->container)
    return ov_mount_move_ns (a->pid, rootfs, a->dir, mfd, err);
  return ov_mount_move (mfd, a->dir, err);
}

/* A cached layer close to snap: its own, or one of its recent ancestors'. */
static void
nearby_layer (struct ov_node *n, const struct ov_snapshot *snap, struct ov_oid *out, bool *found)
{
  struct ov_store *s = n->store;
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
      bool have = faccessat (n->fd, path, F_OK, 0) == 0;
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
load_or_create_volume (struct ov_node *n, const struct ov_attach_req *req, struct ov_volume *v,
                       ov_error_t *err)
{
  struct ov_store *s = n->store;
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
ov_attach (struct ov_node *n, const struct ov_attach_req *req, struct ov_attachment *out,
           ov_error_t *err)
{
  struct ov_store *s = n->store;
  memset (out, 0, sizeof *out);
  char *real = target_dir (req, err);
  if (real == NULL)
    return -1;
  struct dir_taken t = { real, req->container, false };
  if (ov_attachment_each (n, taken_cb, &t, err) < 0 || t.taken)
    {
      free (real);
      return t.taken ? ov_error_set (err, OV_EGENERIC, 0,
                                     "%s already has an ovsnap volume mounted (ovsnap umount first)",
                                     req->dir)
                     : -1;
    }
  struct ov_volume v;
  if (load_or_create_volume (n, req, &v, err) < 0)
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
      nearby_layer (n, &snap, &base, &found);
      r = ov_layers_get (n, &snap, found ? &base : NULL, &layers, err);
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
  att_set_layers (out, &layers);
  if (req->container)
    {
      out->container = xstrdup (req->container);
      out->pid = req->pid;
      out->pid_start = ov_pid_start_time (req->pid);
      if (out->pid_start == 0)
        r = ov_error_set (err, OV_EGENERIC, ESRCH, "container %s: process %d", req->container,
                          req->pid);
    }
  int rootfd = n->fd;
  mkdirat (rootfd, "attach", 0700);
  cleanup_free char *apath = xasprintf ("attach/%s", aid);
  if (r == 0 && mkdirat (rootfd, apath, 0700) < 0)
    r = ov_error (err, errno, "create %s/%s", n->root, apath);
  int afd = r == 0 ? att_dirfd (n, aid, err) : -1;
  if (r == 0 && afd < 0)
    r = -1;
  if (r == 0)
    r = att_make_upper (n, afd, 1, &snap.root, err);
  /* State first: a crash after mounting never leaves a mount we do not know. */
  if (r == 0)
    r = att_state_save (n, out, err);
  if (r == 0)
    r = mount_overlay (n, out, &layers, req->rootfs, err);
  /* after mounting: overlay marks its upper root (xattrs, so ctime) */
  if (r == 0)
    r = att_seed_manifest (afd, 1, err);
  if (r == 0)
    r = att_state_save (n, out, err); /* now with the overlay's device */
  if (r < 0)
    {
      if (afd >= 0)
        close (afd);
      afd = -1;
      att_trash (n, rootfd, apath);
      attachment_free (out);
    }
  if (afd >= 0)
    close (afd);
  if (r == 0)
    att_flatten_later (n, layers.deep, &snap);
  ov_layers_free (&layers);
  snapshot_free (&snap);
  return r;
}


/* ---- detach, status ---- */

static int
detach_held (struct ov_node *n, struct ov_attachment *a, const char *rootfs, ov_error_t *err)
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
      if ((*err)->code == OV_EBUSY && busy
          && ov_holders (st.st_dev, a->lower_dev, 0, &holders, 8, &e2) > 0)
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
  unlinkat (n->fd, state, 0);
  att_trash (n, n->fd, apath);
  return 0;
}

int
ov_detach (struct ov_node *n, struct ov_attachment *a, const char *rootfs, ov_error_t *err)
{
  cleanup_close int afd = -1, lock = -1;
  if (att_open_locked (n, a, &afd, &lock, err) < 0)
    return -1;
  return detach_held (n, a, rootfs, err);
}

int
ov_commit_detach (struct ov_node *n, struct ov_attachment *a, const char *message,
                  struct ov_snapshot *out, bool *changed, ov_error_t *err)
{
  struct ov_store *s = n->store;
  cleanup_close int afd = -1, lock = -1;
  if (att_open_locked (n, a, &afd, &lock, err) < 0 || att_reconcile (n, afd, a, err) < 0)
    return -1;
  pid_t pid = att_ns_pid (a);
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
    r = att_commit_held (n, a, afd, lock, message, out, changed, err);
  bool committed = r == 0 && !a->readonly;
  if (r == 0)
    r = detach_held (n, a, NULL, err);
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
