/* Reload: freeze, carry over, switch, settle (see attach.h). */
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
  return att_upper_root_meta (nfd, &root, err);
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
  att_manifest_name (a->gen, mname);
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
  int n = ov_holders (dev, a->lower_dev, att_ns_pid (a), &holders, 8, err);
  if (n > 0)
    ov_error_set (err, OV_EBUSY, 0, "volume busy: %s", holders);
  free (holders);
  return n != 0 ? -1 : 0;
}

/* After a failed step: the old mount writable again, the new upper gone,
 * the state without the reload's intent. */
static void
reload_undo (struct ov_node *n, int afd, struct ov_attachment *a, int gen, bool frozen,
             bool intent_saved)
{
  ov_error_t e = NULL;
  if (frozen && ov_mount_freeze (att_ns_pid (a), a->dir, a->dev, false, &e) < 0)
    {
      fprintf (stderr, "ovsnap: warning: %s stays read-only until the next commit or reload: %s\n",
               a->dir, e->msg);
      ov_error_free (&e);
    }
  a->next_gen = 0;
  if (intent_saved && att_state_save (n, a, &e) < 0)
    ov_error_free (&e); /* the next command settles it from the live mount */
  att_drop_gen (n, afd, gen);
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
reload_locked (struct ov_node *n, struct ov_attachment *a, int afd, struct ov_snapshot *out,
               bool *deep, ov_error_t *err)
{
  struct ov_store *s = n->store;
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
  if (ov_layers_get (n, out, &a->tree, &layers, err) < 0)
    {
      snapshot_free (out);
      return -1;
    }
  pid_t pid = att_ns_pid (a);
  int gen = a->gen + 1;
  bool frozen = false, intent = false, root_committed = false;
  uint64_t dev = 0, lower_dev = 0;
  int mfd = -1;
  r = att_make_upper (n, afd, gen, NULL, err);
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
    r = mfd = att_build_overlay (n, a, gen, &layers, &dev, &lower_dev, err);
  if (r >= 0 && root_committed)
    r = att_seed_manifest (afd, gen, err);
  /* The intent goes to disk before the mount point changes: whatever
   * happens next, the state names every layer a live mount can stand on,
   * and the next command can tell from the mount which generation won. */
  if (r >= 0)
    {
      a->next_gen = gen;
      a->next_snapshot = out->id;
      a->next_tree = out->root.oid;
      a->next_dev = dev;
      a->next_lower_dev = lower_dev;
      set_layers_keeping (a, &layers, true);
      r = ov_fail_err ("reload-intent", err);
      if (r == 0)
        r = att_state_save (n, a, err);
      intent = r == 0;
    }
  ov_fault ("reload-intent-saved");
  int lazy = r >= 0 ? ov_mount_replace (pid, a->dir, a->dev, mfd, err) : -1;
  if (mfd >= 0)
    close (mfd);
  if (lazy < 0)
    {
      reload_undo (n, afd, a, gen, frozen, intent);
      ov_layers_free (&layers);
      snapshot_free (out);
      return -1;
    }
  ov_fault ("reload-switched");
  /* Switched. A lazily detached old mount may still serve its holder: the
   * layers it stands on stay listed (gc keeps them) until the next reload. */
  int oldgen = a->gen;
  a->gen = gen;
  a->snapshot = a->next_snapshot;
  a->tree = a->next_tree;
  a->dev = a->next_dev;
  a->lower_dev = a->next_lower_dev;
  a->next_gen = 0;
  if (!lazy)
    att_set_layers (a, &layers);
  ov_error_t e = NULL;
  if (ov_fail_err ("reload-final-save", &e) < 0 || att_state_save (n, a, &e) < 0)
    {
      /* the saved intent lets the next command finish the state */
      fprintf (stderr, "ovsnap: warning: reload %s: %s\n", a->dir, e->msg);
      ov_error_free (&e);
    }
  att_drop_gen (n, afd, oldgen);
  *deep = layers.deep;
  ov_layers_free (&layers);
  return 0;
}

int
ov_reload (struct ov_node *n, struct ov_attachment *a, struct ov_snapshot *out, ov_error_t *err)
{
  cleanup_close int afd = -1, lock = -1;
  if (att_open_locked (n, a, &afd, &lock, err) < 0 || att_reconcile (n, afd, a, err) < 0)
    return -1;
  bool deep = false;
  if (reload_locked (n, a, afd, out, &deep, err) < 0)
    return ov_error_prefix (err, "reload %s", a->dir);
  att_close (&afd, &lock);
  att_flatten_later (n, deep, out);
  return 0;
}
