#include "snapdb.h"
#include "dir.h"
#include "fault.h"
#include "record.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

static const char magic[8] = { 'O', 'V', 'S', 'N', 'S', 'N', 'A', 'P' };
#define VERSION 1
#define RECORD_MAX (64u << 20)

const char *
ov_snap_kind_name (enum ov_snap_kind k)
{
  switch (k)
    {
    case OV_SNAP_VIEW:
      return "view";
    case OV_SNAP_ACTIVE:
      return "active";
    case OV_SNAP_COMMITTED:
      return "committed";
    }
  return "unknown";
}

void
ov_snap_clear_labels (struct ov_snap *s)
{
  for (size_t i = 0; i < s->n_labels; i++)
    {
      free (s->labels[i].key);
      free (s->labels[i].value);
    }
  free (s->labels);
  s->labels = NULL;
  s->n_labels = 0;
}

void
ov_snap_free (struct ov_snap *s)
{
  if (s == NULL)
    return;
  ov_snap_clear_labels (s);
  free (s->key);
  free (s);
}

struct ov_snap *
ov_snap_dup (const struct ov_snap *s)
{
  struct ov_snap *d = xmalloc (sizeof *d);
  *d = *s;
  d->key = xstrdup (s->key);
  d->labels = s->n_labels ? xcalloc (s->n_labels, sizeof *d->labels) : NULL;
  for (size_t i = 0; i < s->n_labels; i++)
    {
      d->labels[i].key = xstrdup (s->labels[i].key);
      d->labels[i].value = xstrdup (s->labels[i].value);
    }
  return d;
}

/* index of key in the sorted labels, or where it would go (*found false) */
static size_t
label_pos (const struct ov_snap *s, const char *key, bool *found)
{
  size_t lo = 0, hi = s->n_labels;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp (s->labels[mid].key, key);
      if (c == 0)
        {
          *found = true;
          return mid;
        }
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  *found = false;
  return lo;
}

const char *
ov_snap_label (const struct ov_snap *s, const char *key)
{
  bool found;
  size_t i = label_pos (s, key, &found);
  return found ? s->labels[i].value : NULL;
}

void
ov_snap_set_label (struct ov_snap *s, const char *key, const char *value)
{
  bool found;
  size_t i = label_pos (s, key, &found);
  if (found)
    {
      free (s->labels[i].value);
      if (value && *value)
        {
          s->labels[i].value = xstrdup (value);
          return;
        }
      free (s->labels[i].key);
      memmove (s->labels + i, s->labels + i + 1, (s->n_labels - i - 1) * sizeof *s->labels);
      s->n_labels--;
      return;
    }
  if (value == NULL || *value == '\0')
    return;
  s->labels = xrealloc (s->labels, (s->n_labels + 1) * sizeof *s->labels);
  memmove (s->labels + i + 1, s->labels + i, (s->n_labels - i) * sizeof *s->labels);
  s->labels[i].key = xstrdup (key);
  s->labels[i].value = xstrdup (value);
  s->n_labels++;
}

/* --- records ------------------------------------------------------------------------------ */

static void
put_str (struct ov_buf *b, const char *s)
{
  size_t n = strlen (s);
  buf_u32 (b, n);
  buf_put (b, s, n);
}

void
ov_snap_encode (const struct ov_snap *s, struct ov_buf *b)
{
  record_begin (b, magic, VERSION);
  buf_u64 (b, s->id);
  buf_u8 (b, s->kind);
  buf_u64 (b, s->parent);
  buf_u64 (b, s->created);
  buf_u64 (b, s->updated);
  buf_u64 (b, s->size);
  buf_u64 (b, s->inodes);
  put_str (b, s->key);
  buf_u32 (b, s->n_labels);
  for (size_t i = 0; i < s->n_labels; i++)
    {
      put_str (b, s->labels[i].key);
      put_str (b, s->labels[i].value);
    }
  record_seal (b);
}

/* a string of the record: no NUL inside, at most max bytes */
static char *
get_str (struct ov_reader *r, size_t max)
{
  uint32_t n = rd_u32 (r);
  if (r->bad || n > max || n > r->left)
    {
      r->bad = 1;
      return NULL;
    }
  const uint8_t *p = rd_bytes (r, n);
  if (memchr (p, '\0', n))
    {
      r->bad = 1;
      return NULL;
    }
  return xstrndup ((const char *) p, n);
}

int
ov_snap_decode (const uint8_t *p, size_t n, const char *what, struct ov_snap **out,
                ov_error_t *err)
{
  struct ov_reader r;
  if (record_open (p, n, magic, VERSION, "snapshot record", what, &r, err) < 0)
    return -1;
  struct ov_snap *s = xcalloc (1, sizeof *s);
  s->id = rd_u64 (&r);
  s->kind = rd_u8 (&r);
  s->parent = rd_u64 (&r);
  s->created = rd_u64 (&r);
  s->updated = rd_u64 (&r);
  s->size = rd_u64 (&r);
  s->inodes = rd_u64 (&r);
  s->key = get_str (&r, OV_SNAP_KEY_MAX);
  uint32_t nl = rd_u32 (&r);
  /* each label takes at least 10 bytes: a bound before allocating */
  if (!r.bad && nl <= r.left / 10)
    for (uint32_t i = 0; i < nl && !r.bad; i++)
      {
        cleanup_free char *k = get_str (&r, OV_SNAP_LABEL_MAX);
        cleanup_free char *v = get_str (&r, OV_SNAP_LABEL_MAX);
        if (r.bad)
          break;
        /* sorted, unique, non-empty: what ov_snap_set_label keeps */
        if (*k == '\0' || *v == '\0' || (s->n_labels && strcmp (s->labels[s->n_labels - 1].key, k) >= 0))
          {
            r.bad = 1;
            break;
          }
        ov_snap_set_label (s, k, v);
      }
  else
    r.bad = 1;
  if (r.bad || r.left != 0 || s->key == NULL || s->key[0] == '\0' || s->id == 0
      || s->id == s->parent
      || (s->kind != OV_SNAP_VIEW && s->kind != OV_SNAP_ACTIVE && s->kind != OV_SNAP_COMMITTED))
    {
      ov_snap_free (s);
      return ov_corrupt (err, "%s: malformed snapshot record", what);
    }
  *out = s;
  return 0;
}

/* --- the table ---------------------------------------------------------------------------- */

struct ov_snap *
ov_snapdb_find (struct ov_snapdb *db, const char *key)
{
  for (size_t i = 0; i < db->n; i++)
    if (strcmp (db->snaps[i]->key, key) == 0)
      return db->snaps[i];
  return NULL;
}

static ssize_t
index_of (struct ov_snapdb *db, uint64_t id)
{
  for (size_t i = 0; i < db->n; i++)
    if (db->snaps[i]->id == id)
      return i;
  return -1;
}

struct ov_snap *
ov_snapdb_get (struct ov_snapdb *db, uint64_t id)
{
  ssize_t i = index_of (db, id);
  return i < 0 ? NULL : db->snaps[i];
}

size_t
ov_snapdb_children (struct ov_snapdb *db, uint64_t id)
{
  size_t n = 0;
  for (size_t i = 0; i < db->n; i++)
    n += db->snaps[i]->parent == id;
  return n;
}

static void
hold (struct ov_snapdb *db, struct ov_snap *s)
{
  ssize_t i = index_of (db, s->id);
  if (i >= 0)
    {
      if (db->snaps[i] != s)
        ov_snap_free (db->snaps[i]);
      db->snaps[i] = s;
      return;
    }
  if (db->n == db->cap)
    {
      db->cap = db->cap ? db->cap * 2 : 64;
      db->snaps = xrealloc (db->snaps, db->cap * sizeof *db->snaps);
    }
  db->snaps[db->n++] = s;
  if (s->id > db->max_id)
    db->max_id = s->id;
}

static void
record_names (const struct ov_snap *s, char name[32], char tmp[40])
{
  snprintf (name, 32, "%llu", (unsigned long long) s->id);
  snprintf (tmp, 40, ".tmp-%s", name);
}

int
ov_snapdb_stage (struct ov_snapdb *db, const struct ov_snap *s, ov_error_t *err)
{
  char name[32], tmp[40];
  record_names (s, name, tmp);
  struct ov_buf b = { 0 };
  ov_snap_encode (s, &b);
  int fd = openat (db->metafd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  int r = fd < 0 || write_all (fd, b.data, b.len) < 0 || fsync (fd) < 0 ? -1 : 0;
  int e = errno;
  if (fd >= 0)
    close (fd);
  buf_free (&b);
  if (r < 0 || ov_fail ("snapdb-write"))
    {
      unlinkat (db->metafd, tmp, 0);
      return ov_error (err, r < 0 ? e : EIO, "write %s/%s", db->dir, tmp);
    }
  return 0;
}

void
ov_snapdb_unstage (struct ov_snapdb *db, const struct ov_snap *s)
{
  char name[32], tmp[40];
  record_names (s, name, tmp);
  unlinkat (db->metafd, tmp, 0);
}

int
ov_snapdb_publish (struct ov_snapdb *db, struct ov_snap *s, ov_error_t *err)
{
  char name[32], tmp[40];
  record_names (s, name, tmp);
  ov_fault ("snapdb-before-rename");
  if (renameat (db->metafd, tmp, db->metafd, name) < 0)
    {
      int e = errno;
      unlinkat (db->metafd, tmp, 0);
      return ov_error (err, e, "rename %s/%s", db->dir, tmp);
    }
  if (fsync (db->metafd) < 0)
    return ov_error (err, errno, "fsync %s", db->dir);
  hold (db, s);
  return 0;
}

int
ov_snapdb_put (struct ov_snapdb *db, struct ov_snap *s, ov_error_t *err)
{
  if (ov_snapdb_stage (db, s, err) < 0)
    return -1;
  return ov_snapdb_publish (db, s, err);
}

int
ov_snapdb_drop (struct ov_snapdb *db, uint64_t id, ov_error_t *err)
{
  char name[32];
  snprintf (name, sizeof name, "%llu", (unsigned long long) id);
  if (unlinkat (db->metafd, name, 0) < 0 && errno != ENOENT)
    return ov_error (err, errno, "remove %s/%s", db->dir, name);
  if (fsync (db->metafd) < 0)
    return ov_error (err, errno, "fsync %s", db->dir);
  ssize_t i = index_of (db, id);
  if (i >= 0)
    {
      ov_snap_free (db->snaps[i]);
      db->snaps[i] = db->snaps[--db->n];
    }
  return 0;
}

/* --- loading ------------------------------------------------------------------------------ */

struct load
{
  struct ov_snapdb *db;
  ov_error_t *err;
};

static int
load_one (int dirfd, const char *name, unsigned char type, void *ctx)
{
  (void) type;
  struct load *l = ctx;
  struct ov_snapdb *db = l->db;
  if (strncmp (name, ".tmp-", 5) == 0)
    {
      unlinkat (dirfd, name, 0); /* an interrupted write: its rename never happened */
      return 0;
    }
  char *end;
  errno = 0;
  unsigned long long id = strtoull (name, &end, 10);
  if (name[0] < '1' || name[0] > '9' || *end || errno)
    {
      ov_corrupt (l->err, "%s/%s: not a snapshot record name", db->dir, name);
      return 1;
    }
  cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      ov_error (l->err, errno, "open %s/%s", db->dir, name);
      return 1;
    }
  if (!S_ISREG (st.st_mode) || st.st_size > RECORD_MAX)
    {
      ov_corrupt (l->err, "%s/%s: not a snapshot record (not a file, or too big)", db->dir, name);
      return 1;
    }
  cleanup_free uint8_t *p = xmalloc (st.st_size + 1);
  if (read_all (fd, p, st.st_size) != st.st_size)
    {
      ov_error (l->err, errno ? errno : EIO, "read %s/%s", db->dir, name);
      return 1;
    }
  cleanup_free char *what = xasprintf ("%s/%s", db->dir, name);
  struct ov_snap *s;
  if (ov_snap_decode (p, st.st_size, what, &s, l->err) < 0)
    return 1;
  if (s->id != id)
    {
      ov_snap_free (s);
      ov_corrupt (l->err, "%s: holds the record of snapshot %llu", what, (unsigned long long) id);
      return 1;
    }
  hold (db, s);
  return 0;
}

/* The table must be whole: unique keys, parents that exist and are committed. */
static int
check (struct ov_snapdb *db, ov_error_t *err)
{
  for (size_t i = 0; i < db->n; i++)
    {
      struct ov_snap *s = db->snaps[i];
      if (ov_snapdb_find (db, s->key) != s)
        return ov_corrupt (err, "%s: two snapshots named \"%s\"", db->dir, s->key);
      if (s->parent)
        {
          struct ov_snap *p = ov_snapdb_get (db, s->parent);
          if (p == NULL || p->kind != OV_SNAP_COMMITTED)
            return ov_corrupt (err, "%s/%llu: snapshot \"%s\": parent %llu is %s", db->dir,
                               (unsigned long long) s->id, s->key,
                               (unsigned long long) s->parent, p ? "not committed" : "missing");
        }
    }
  return 0;
}

int
ov_snapdb_open (struct ov_snapdb *db, int rootfd, const char *root, ov_error_t *err)
{
  *db = (struct ov_snapdb){ .metafd = -1 };
  db->dir = xasprintf ("%s/meta", root);
  if (mkdirat (rootfd, "meta", 0700) < 0 && errno != EEXIST)
    return ov_error (err, errno, "create %s", db->dir);
  db->metafd = openat (rootfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (db->metafd < 0)
    return ov_error (err, errno, "open %s", db->dir);
  struct load l = { db, err };
  int r = ov_dir_each (db->metafd, load_one, &l);
  if (r < 0)
    return ov_error (err, errno, "read %s", db->dir);
  if (r > 0)
    return -1;
  return check (db, err);
}

void
ov_snapdb_close (struct ov_snapdb *db)
{
  for (size_t i = 0; i < db->n; i++)
    ov_snap_free (db->snaps[i]);
  free (db->snaps);
  free (db->dir);
  if (db->metafd >= 0)
    close (db->metafd);
  *db = (struct ov_snapdb){ .metafd = -1 };
}
