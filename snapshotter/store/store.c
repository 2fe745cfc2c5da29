/* Store operations above the backend: content addressing, dedup with byte
 * verification, collision variants, record verification. */
#include "store.h"
#include "pack.h"
#include "file.h"
#include "fault.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define RECORD_LIMIT (512u << 20)
#define CHUNK (1u << 20)
#define MAX_VARIANT 255

const char *
ov_kind_dir (enum ov_kind kind)
{
  switch (kind)
    {
    case OV_BLOB:
      return "objects";
    case OV_TREE_OBJ:
      return "trees";
    case OV_SNAPSHOT_REC:
      return "snapshots";
    }
  return "?";
}

static const char *
kind_what (enum ov_kind kind)
{
  switch (kind)
    {
    case OV_BLOB:
      return "object";
    case OV_TREE_OBJ:
      return "tree";
    case OV_SNAPSHOT_REC:
      return "snapshot";
    }
  return "?";
}

/* Trees and small blobs live in packs; the size in a tree entry says which. */
static bool
packed (enum ov_kind kind, uint64_t size)
{
  return kind == OV_TREE_OBJ || (kind == OV_BLOB && size <= OV_PACK_MAX);
}

void
ov_key (enum ov_kind kind, const struct ov_oid *id, char *out, size_t n)
{
  char hex[OV_OID_STR];
  oid_hex (id, hex);
  snprintf (out, n, "%s/%.2s/%s", ov_kind_dir (kind), hex, hex + 2);
}

/* Every pack a command reads stays open, and a walk keeps a directory fd
 * per level: take the hard limit on open files, not the soft 1024. */
static void
raise_fd_limit (void)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

static int
store_open (struct ov_store **out, const char *root, const char *url, int flags, ov_error_t *err)
{
  raise_fd_limit ();
  struct ov_store *s = xcalloc (1, sizeof *s);
  s->root = xstrdup (root);
  s->store_lock = -1;
  s->packs = ov_packs_new ();
  if ((url ? ov_backend_remote_open (s, url, root, err)
           : ov_backend_local_open (s, root, flags & OV_STORE_CREATE, err))
      < 0)
    {
      ov_packs_free (s->packs);
      free (s->root);
      free (s);
      return -1;
    }
  *out = s;
  return 0;
}

int
ov_store_open (struct ov_store **out, const char *root, int flags, ov_error_t *err)
{
  return store_open (out, root, NULL, flags, err);
}

int
ov_store_open_url (struct ov_store **out, const char *url, const char *node_root,
                   ov_error_t *err)
{
  if (strncmp (url, "s3://", 5) != 0)
    return ov_error_set (err, OV_EUSAGE, 0, "store %s: use s3://BUCKET[/PREFIX]", url);
  return store_open (out, node_root, url, 0, err);
}

struct ov_store *
ov_store_session (struct ov_store *base)
{
  struct ov_store *s = xcalloc (1, sizeof *s);
  s->root = xstrdup (base->root);
  s->be = base->be;
  s->be_data = base->be_data;
  s->store_lock = -1;
  s->packs = ov_packs_ref (base->packs);
  s->session_of = base;
  return s;
}

void
ov_store_close (struct ov_store *s)
{
  if (s == NULL)
    return;
  if (s->store_lock >= 0)
    close (s->store_lock);
  /* a pack never published is dropped: nothing names its objects */
  ov_pack_writer_free (s->packs, s->pw);
  ov_packs_free (s->packs);
  if (s->session_of == NULL)
    s->be->close (s->be_data);
  free (s->root);
  free (s);
}

int
ov_store_lock (struct ov_store *s, bool exclusive, ov_error_t *err)
{
  if (s->store_lock >= 0)
    close (s->store_lock);
  s->store_lock = s->be->lock (s->be_data, "store", exclusive);
  if (s->store_lock < 0)
    return ov_error (err, errno, "lock store %s", s->root);
  return 0;
}

void
ov_store_unlock (struct ov_store *s)
{
  if (s->store_lock >= 0)
    close (s->store_lock);
  s->store_lock = -1;
}

int
ov_store_lock_name (struct ov_store *s, const char *name, ov_error_t *err)
{
  int fd = s->be->lock (s->be_data, name, true);
  if (fd < 0)
    return ov_error (err, errno, "lock %s", name);
  return fd;
}

/* Compare an open object with memory. 1 equal, 0 different, -1 error. */
static int
same_as_mem (int fd, const void *p, size_t n)
{
  struct stat st;
  if (fstat (fd, &st) < 0)
    return -1;
  if ((uint64_t) st.st_size != n)
    return 0;
  cleanup_free uint8_t *buf = xmalloc (n < CHUNK ? n : CHUNK);
  for (size_t off = 0; off < n;)
    {
      size_t want = n - off < CHUNK ? n - off : CHUNK;
      ssize_t r = pread_all (fd, buf, want, off);
      if (r < 0)
        return -1;
      if ((size_t) r != want || memcmp (buf, (const uint8_t *) p + off, want))
        return 0;
      off += want;
    }
  return 1;
}

/* Compare two open files. 1 equal, 0 different, -1 error. */
static int
same_as_fd (int a, int b)
{
  struct stat sa, sb;
  if (fstat (a, &sa) < 0 || fstat (b, &sb) < 0)
    return -1;
  if (sa.st_size != sb.st_size)
    return 0;
  cleanup_free uint8_t *x = xmalloc (CHUNK);
  cleanup_free uint8_t *y = xmalloc (CHUNK);
  for (off_t off = 0; off < sa.st_size;)
    {
      ssize_t ra = pread_all (a, x, CHUNK, off), rb = pread_all (b, y, CHUNK, off);
      if (ra < 0 || rb < 0)
        return -1;
      if (ra != rb || ra == 0 || memcmp (x, y, ra))
        return 0;
      off += ra;
    }
  return 1;
}

/* Find where content with hash `id` lives or must go. `same` compares an
 * existing object with the new content. Returns 1 if an identical object
 * exists (id set), 0 if id names a free slot, -1 on error. */
static int
find_slot (struct ov_store *s, enum ov_kind kind, struct ov_oid *id,
           int (*same) (int fd, const void *ctx), const void *ctx, ov_error_t *err)
{
  for (int v = 0; v <= MAX_VARIANT; v++)
    {
      char key[PATH_MAX];
      id->variant = v;
      ov_key (kind, id, key, sizeof key);
      cleanup_close int fd = s->be->open_read (s->be_data, key);
      if (fd < 0 && errno == ENOENT)
        return 0;
      if (fd < 0)
        return ov_error (err, errno, "open %s %s", kind_what (kind), key);
      int r = same (fd, ctx);
      if (r < 0)
        return ov_error (err, errno, "read %s %s", kind_what (kind), key);
      if (r == 1)
        return 1;
      /* Same hash, different bytes: a collision. Try the next variant. */
    }
  return ov_error (err, EEXIST, "too many hash collisions for %s", kind_what (kind));
}

struct mem_ctx
{
  const void *p;
  size_t n;
};

static int
same_mem_cb (int fd, const void *ctx)
{
  const struct mem_ctx *m = ctx;
  return same_as_mem (fd, m->p, m->n);
}

static int
same_fd_cb (int fd, const void *ctx)
{
  return same_as_fd (fd, *(const int *) ctx);
}

/* Publish tmpfd under id, or find that identical bytes are already
 * stored; a different object under the same hash moves us to the next
 * variant. */
static int
publish (struct ov_store *s, enum ov_kind kind, int tmpfd, struct ov_oid *id,
         int (*same) (int fd, const void *ctx), const void *ctx, bool *deduped, ov_error_t *err)
{
  for (;;)
    {
      char key[PATH_MAX];
      ov_key (kind, id, key, sizeof key);
      if (s->be->publish (s->be_data, tmpfd, key) == 0)
        {
          *deduped = false;
          if (kind == OV_SNAPSHOT_REC)
            ov_pause ("record-published");
          return 0;
        }
      if (errno != EEXIST)
        return ov_error (err, errno, "store %s %s", kind_what (kind), key);
      int r = find_slot (s, kind, id, same, ctx, err);
      if (r < 0)
        return -1;
      if (r == 1)
        {
          *deduped = true;
          return 0;
        }
    }
}

static int
put_mem (struct ov_store *s, enum ov_kind kind, const void *p, size_t n, struct ov_oid *id,
         bool *deduped, ov_error_t *err)
{
  struct mem_ctx ctx = { p, n };
  ov_hash (p, n, id);
  if (packed (kind, n))
    return ov_packs_put (s, kind, p, n, id, deduped, err);
  /* Write first and let linkat find out whether the id is taken: for new
   * content (the common case) that saves a lookup; a taken id is then
   * compared byte for byte. */
  cleanup_close int fd = s->be->create_tmp (s->be_data, ov_kind_dir (kind));
  if (fd < 0)
    return ov_error (err, errno, "create temporary %s in %s", kind_what (kind), s->root);
  if (write_all (fd, p, n) < 0)
    return ov_error (err, errno, "write %s to %s", kind_what (kind), s->root);
  return publish (s, kind, fd, id, same_mem_cb, &ctx, deduped, err);
}

int
ov_store_put_record (struct ov_store *s, enum ov_kind kind, const struct ov_buf *b,
                     struct ov_oid *id, ov_error_t *err)
{
  bool deduped;
  return put_mem (s, kind, b->data, b->len, id, &deduped, err);
}

int
ov_store_put_blob_mem (struct ov_store *s, const void *p, size_t n, struct ov_oid *id,
                       struct ov_put_stats *st, ov_error_t *err)
{
  bool deduped = false;
  if (put_mem (s, OV_BLOB, p, n, id, &deduped, err) < 0)
    return -1;
  if (st)
    {
      st->deduped += deduped;
      st->stored += !deduped;
      st->bytes_stored += deduped ? 0 : n;
    }
  return 0;
}

int
ov_store_put_blob_fd (struct ov_store *s, int srcfd, struct ov_oid *id, uint64_t *size,
                      struct ov_put_stats *st, ov_error_t *err)
{
  /* small enough for a pack: read it whole */
  cleanup_free uint8_t *buf = xmalloc (OV_PACK_MAX + 1);
  ssize_t first = read_all (srcfd, buf, OV_PACK_MAX + 1);
  if (first < 0)
    return ov_error (err, errno, "read");
  if (first <= OV_PACK_MAX)
    {
      *size = first;
      return ov_store_put_blob_mem (s, buf, first, id, st, err);
    }
  cleanup_close int fd = s->be->create_tmp (s->be_data, "objects");
  if (fd < 0)
    return ov_error (err, errno, "create temporary object in %s", s->root);
  struct ov_hasher h;
  ov_hasher_init (&h);
  uint64_t total = 0;
  for (ssize_t r = first;; r = read_all (srcfd, buf, CHUNK))
    {
      if (r < 0)
        {
          ov_hasher_free (&h);
          return ov_error (err, errno, "read");
        }
      if (r == 0)
        break;
      ov_hasher_update (&h, buf, r);
      if (write_all (fd, buf, r) < 0)
        {
          ov_hasher_free (&h);
          return ov_error (err, errno, "write object to %s", s->root);
        }
      total += r;
    }
  ov_hasher_final (&h, id);
  ov_hasher_free (&h);
  bool deduped = false;
  if (publish (s, OV_BLOB, fd, id, same_fd_cb, &fd, &deduped, err) < 0)
    return -1;
  *size = total;
  if (st)
    {
      st->deduped += deduped;
      st->stored += !deduped;
      st->bytes_stored += deduped ? 0 : total;
    }
  return 0;
}

/* A packed object: 1 found (loc set, its size checked), 0 absent, -1 error. */
static int
find_packed (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id, uint64_t size,
             struct ov_pack_loc *loc, ov_error_t *err)
{
  int r = ov_packs_find (s, kind, id, loc, err);
  if (r == 1 && size != UINT64_MAX && loc->size != size)
    {
      char hex[OV_OID_STR];
      oid_hex (id, hex);
      ov_corrupt (err, "%s: %s %s has %llu bytes, its tree says %llu", loc->pack,
                  kind_what (kind), hex, (unsigned long long) loc->size, (unsigned long long) size);
      ov_pack_loc_release (loc);
      return -1;
    }
  return r;
}

static void
first_damage (const char *msg, void *ctx)
{
  char **first = ctx;
  if (*first == NULL)
    *first = xstrdup (msg);
}

/* Missing: the message says which pack is damaged, if one is (it may have held the object). */
static int
missing_error (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id, ov_error_t *err)
{
  char hex[OV_OID_STR];
  oid_hex (id, hex);
  cleanup_free char *damage = NULL;
  ov_error_t e = NULL;
  if (kind != OV_SNAPSHOT_REC && ov_packs_damaged (s, first_damage, &damage, &e) < 0)
    ov_error_free (&e);
  return ov_error_set (err, kind == OV_SNAPSHOT_REC ? OV_ENOTFOUND : OV_ECORRUPT, 0,
                       "%s %s is missing from the store%s%s", kind_what (kind), hex,
                       damage ? "; a damaged pack may have held it: " : "", damage ?: "");
}

int
ov_store_blob_loc (struct ov_store *s, const struct ov_oid *id, uint64_t size,
                   struct ov_blob_loc *loc, ov_error_t *err)
{
  if (packed (OV_BLOB, size))
    {
      struct ov_pack_loc pl;
      int r = find_packed (s, OV_BLOB, id, size, &pl, err);
      if (r <= 0)
        return r < 0 ? -1 : missing_error (s, OV_BLOB, id, err);
      *loc = (struct ov_blob_loc){ pl.fd, pl.off, false, pl.hold, pl.pack };
      return 0;
    }
  char key[PATH_MAX];
  ov_key (OV_BLOB, id, key, sizeof key);
  int fd = s->be->open_read (s->be_data, key);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return missing_error (s, OV_BLOB, id, err);
      return ov_error (err, errno, "open object %s", key);
    }
  *loc = (struct ov_blob_loc){ fd, 0, true, NULL, "a loose object" };
  return 0;
}

char *
ov_store_loose_dir (struct ov_store *s)
{
  return s->be->loose_dir ? s->be->loose_dir (s->be_data) : NULL;
}

bool
ov_store_fetches (const struct ov_store *s)
{
  return s->be->fetch != NULL;
}

int
ov_store_prefetch (struct ov_store *s, const struct ov_obj_ref *refs, size_t n, ov_error_t *err)
{
  if (!ov_store_fetches (s))
    return 0;
  /* the packed ones; a loose object is fetched whole when it is read */
  struct ov_obj_ref *in_packs = xmalloc ((n + 1) * sizeof *in_packs);
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (refs[i].kind == OV_TREE_OBJ || packed (OV_BLOB, refs[i].size))
      in_packs[m++] = refs[i];
  int r = ov_packs_prefetch (s, in_packs, m, err);
  free (in_packs);
  return r;
}

void
ov_blob_loc_release (struct ov_blob_loc *loc)
{
  if (loc->loose && loc->fd >= 0)
    close (loc->fd);
  struct ov_pack_loc pl = { .hold = loc->hold };
  ov_pack_loc_release (&pl);
  loc->hold = NULL;
  loc->fd = -1;
}

int
ov_store_get_record (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id,
                     struct ov_buf *out, ov_error_t *err)
{
  char key[PATH_MAX], hexid[OV_OID_STR];
  ov_key (kind, id, key, sizeof key);
  oid_hex (id, hexid);
  out->len = 0;
  if (packed (kind, 0)) /* trees, whatever their size */
    {
      struct ov_pack_loc pl;
      int r = find_packed (s, kind, id, UINT64_MAX, &pl, err);
      if (r <= 0)
        return r < 0 ? -1 : missing_error (s, kind, id, err);
      if (pl.size > RECORD_LIMIT)
        return ov_corrupt (err, "%s: %s %s is too big", pl.pack, kind_what (kind), key);
      buf_reserve (out, pl.size + 1);
      bool ok = pread_all (pl.fd, out->data, pl.size, pl.off) == (ssize_t) pl.size;
      int e = errno;
      snprintf (key, sizeof key, "%s in %s", hexid, pl.pack);
      ov_pack_loc_release (&pl);
      if (!ok)
        return ov_error (err, e ?: EIO, "read %s %s", kind_what (kind), key);
      out->len = pl.size;
    }
  else
    {
      cleanup_close int fd = s->be->open_read (s->be_data, key);
      if (fd < 0)
        return errno == ENOENT ? missing_error (s, kind, id, err)
                               : ov_error (err, errno, "open %s %s", kind_what (kind), key);
      if (ov_read_fd (fd, out, RECORD_LIMIT) < 0)
        return ov_error (err, errno, "read %s %s", kind_what (kind), key);
    }
  struct ov_oid got;
  ov_hash (out->data, out->len, &got);
  if (memcmp (got.b, id->b, 16) != 0)
    return ov_corrupt (err, "%s %s: content does not match its id (corrupt or truncated)",
                       kind_what (kind), key);
  return 0;
}

int
ov_store_verify (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id, uint64_t size,
                 ov_error_t *err)
{
  char key[PATH_MAX];
  ov_key (kind, id, key, sizeof key);
  cleanup_close int owned = -1; /* a loose object's fd */
  struct ov_pack_loc pl = { .fd = -1 };
  int fd;
  uint64_t off = 0, left = UINT64_MAX;
  char where[PATH_MAX];
  snprintf (where, sizeof where, "%s", key);
  if (packed (kind, size))
    {
      int r = find_packed (s, kind, id, kind == OV_BLOB ? size : UINT64_MAX, &pl, err);
      if (r <= 0)
        return r < 0 ? -1 : missing_error (s, kind, id, err);
      fd = pl.fd;
      char hex[OV_OID_STR];
      oid_hex (id, hex);
      snprintf (where, sizeof where, "%s: %s %s", pl.pack, kind_what (kind), hex);
      off = pl.off;
      left = pl.size;
    }
  else
    owned = fd = s->be->open_read (s->be_data, key);
  if (fd < 0)
    return ov_error (err, errno, "open %s", key);
  cleanup_free uint8_t *buf = xmalloc (CHUNK);
  struct ov_hasher h;
  ov_hasher_init (&h);
  ssize_t r = 0;
  while (left && (r = pread_all (fd, buf, left < CHUNK ? left : CHUNK, off)) > 0)
    {
      ov_hasher_update (&h, buf, r);
      off += r;
      left -= left == UINT64_MAX ? 0 : (uint64_t) r;
    }
  if (left == 0)
    r = 0;
  int e = errno;
  ov_pack_loc_release (&pl);
  struct ov_oid got;
  ov_hasher_final (&h, &got);
  ov_hasher_free (&h);
  if (r < 0)
    return ov_error (err, e, "read %s", where);
  if (memcmp (got.b, id->b, 16) != 0)
    {
      ov_corrupt (err, "%s: content does not match its hash", where);
      return 0;
    }
  return 1;
}

struct each_ctx
{
  int (*cb) (const struct ov_oid *id, uint64_t size, void *ctx);
  void *ctx;
  size_t dirlen;
};

static int
each_cb (const char *key, uint64_t size, void *ctx)
{
  struct each_ctx *e = ctx;
  /* key: "<dir>/ab/cdef..[.N]" -> "abcdef..[.N]" */
  const char *p = key + e->dirlen + 1;
  char hex[OV_OID_STR + 8];
  if (strlen (p) < 3 || p[2] != '/' || strlen (p) - 1 >= sizeof hex)
    return 0;
  hex[0] = p[0];
  hex[1] = p[1];
  strcpy (hex + 2, p + 3);
  struct ov_oid id;
  if (oid_parse (hex, &id) < 0)
    return 0; /* not ours: ignored (fsck reports stray files separately) */
  return e->cb (&id, size, e->ctx);
}

int
ov_store_each_loose (struct ov_store *s, enum ov_kind kind,
                     int (*cb) (const struct ov_oid *id, uint64_t size, void *ctx), void *ctx,
                     ov_error_t *err)
{
  struct each_ctx e = { cb, ctx, strlen (ov_kind_dir (kind)) };
  char prefix[32];
  snprintf (prefix, sizeof prefix, "%s/", ov_kind_dir (kind));
  int r = s->be->list (s->be_data, prefix, each_cb, &e);
  if (r < 0 && *err == NULL)
    return ov_error (err, errno, "list %s in %s", ov_kind_dir (kind), s->root);
  return r;
}

int
ov_store_each (struct ov_store *s, enum ov_kind kind,
               int (*cb) (const struct ov_oid *id, uint64_t size, void *ctx), void *ctx,
               ov_error_t *err)
{
  int r = ov_store_each_loose (s, kind, cb, ctx, err);
  if (r == 0 && kind != OV_SNAPSHOT_REC)
    r = ov_packs_each (s, kind, cb, ctx, err);
  return r;
}

int
ov_store_remove (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id, ov_error_t *err)
{
  char key[PATH_MAX];
  ov_key (kind, id, key, sizeof key);
  if (s->be->remove (s->be_data, key) < 0 && errno != ENOENT)
    return errno == EBUSY ? 1 : ov_error (err, errno, "remove %s", key);
  return 0;
}

int
ov_store_sync (struct ov_store *s, ov_error_t *err)
{
  return ov_packs_flush (s, err);
}

int
ov_store_get_named (struct ov_store *s, const char *key, struct ov_buf *out, ov_error_t *err)
{
  cleanup_close int fd = s->be->open_read (s->be_data, key);
  if (fd < 0)
    return ov_error (err, errno, "%s", key);
  out->len = 0;
  if (ov_read_fd (fd, out, RECORD_LIMIT) < 0)
    return ov_error (err, errno, "read %s", key);
  return 0;
}

int
ov_store_put_named (struct ov_store *s, const char *key, const struct ov_buf *b, ov_error_t *err)
{
  if (s->be->put_replace (s->be_data, key, b->data, b->len) < 0)
    return ov_error (err, errno, "write %s in %s", key, s->root);
  return 0;
}

void
ov_revs_free (struct ov_revs *r)
{
  for (size_t i = 0; i < r->n; i++)
    free (r->keys[i]);
  free (r->keys);
  memset (r, 0, sizeof *r);
}

bool
ov_store_has_revs (const struct ov_store *s)
{
  return s->be->list_revs != NULL;
}

int
ov_store_list_revs (struct ov_store *s, const char *key, bool want_settled, struct ov_revs *out,
                    ov_error_t *err)
{
  memset (out, 0, sizeof *out);
  if (s->be->list_revs (s->be_data, key, want_settled, out) < 0)
    return ov_error (err, errno, "list the revisions of %s in %s", key, s->root);
  ov_pause ("head-read");
  return 0;
}

int
ov_store_read_rev (struct ov_store *s, const char *rev, struct ov_buf *out, ov_error_t *err)
{
  out->len = 0;
  if (s->be->read_rev (s->be_data, rev, out) < 0)
    return ov_error (err, errno, "read %s in %s", rev, s->root);
  return 0;
}

int
ov_store_put_rev (struct ov_store *s, const char *key, const struct ov_buf *b, const char *base,
                  char rev[OV_REV_MAX], ov_error_t *err)
{
  if (s->be->put_rev (s->be_data, key, b->data, b->len, base, rev, OV_REV_MAX) < 0)
    return ov_error (err, errno, "write %s in %s", key, s->root);
  return 0;
}

int
ov_store_drop_rev (struct ov_store *s, const char *rev, ov_error_t *err)
{
  if (s->be->drop_rev (s->be_data, rev) < 0)
    return ov_error (err, errno, "remove %s in %s", rev, s->root);
  return 0;
}

int
ov_store_memo_get (struct ov_store *s, const char *name, struct ov_buf *out)
{
  out->len = 0;
  return s->be->memo_get ? s->be->memo_get (s->be_data, name, out) : -1;
}

void
ov_store_memo_put (struct ov_store *s, const char *name, const struct ov_buf *b)
{
  if (s->be->memo_put)
    s->be->memo_put (s->be_data, name, b->data, b->len);
}

int
ov_store_remove_named (struct ov_store *s, const char *key, ov_error_t *err)
{
  if (s->be->remove (s->be_data, key) < 0)
    return ov_error (err, errno, "remove %s in %s", key, s->root);
  return 0;
}

int
ov_store_list_named (struct ov_store *s, const char *prefix,
                     int (*cb) (const char *key, uint64_t size, void *ctx), void *ctx,
                     ov_error_t *err)
{
  int r = s->be->list (s->be_data, prefix, cb, ctx);
  if (r < 0)
    return ov_error (err, errno, "list %s in %s", prefix, s->root);
  return r;
}
