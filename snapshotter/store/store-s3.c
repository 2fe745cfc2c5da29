/* The S3 backend: a store in a bucket (s3://BUCKET[/PREFIX]) shared by any
 * number of nodes, each with its own cache beneath its node root.
 *
 * Immutable keys (packs, loose objects, snapshot records) are plain PUTs
 * of a local temporary file (conditional when the server honours
 * If-None-Match, else plain: content addressing makes a racing PUT write
 * the same bytes). Reads are served from the node cache (s3-cache.h):
 * records and loose objects fetched whole once, packs by range: their
 * heads, tails and indexes when the store opens, then the objects a read
 * needs, many at once with ranged GETs in parallel (fetch), so a fresh
 * node downloads what a snapshot needs, not whole packs. Everything read
 * is verified by the layers above.
 *
 * Volume heads ("volumes/NAME") cannot be replaced atomically: S3 has no
 * compare-and-swap (Swift answers 501 to If-None-Match). Each update is an
 * immutable revision heads/NAME/T-NODE-RAND, T the server's clock in
 * microseconds (and above every revision this handle has seen), NODE
 * this node's id, so key order is clock order with the node as tie-break.
 * What a revision holds, and how the head follows from all of them (a
 * fold, with checkpoints), is the volume layer's (tree/heads.c); this
 * backend lists, reads (once: they are cached), writes and drops them,
 * and says which are settled: older than OVSNAP_S3_SETTLE seconds
 * (default 120) by the server's clock, so that no revision can appear
 * before them any more. A deleted volume is an empty revision.
 *
 * Locks are node-local flocks (<node>/locks/NAME): nothing excludes
 * another node. gc copes by never deleting a key younger than
 * OVSNAP_S3_GRACE seconds (default 3600) by the server's timestamps. */
#include "store.h"
#include "file.h"
#include "s3.h"
#include "s3-cache.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define HEAD_LIMIT (16u << 20)
#define HEADS_SETTLE 120      /* seconds before a revision is settled */
#define DEFAULT_GRACE 3600    /* seconds: gc removes nothing younger */

struct s3be
{
  struct ov_s3 *s3;
  char *name;           /* "s3://BUCKET/PREFIX at ENDPOINT" */
  int nodefd;           /* the node root */
  struct s3_cache *cache;
  char node[17];        /* this node's id, hex */
  int64_t grace;
  pthread_mutex_t mu;
  int conditional;      /* -1 not probed yet, 0 no, 1 yes */
  int64_t settle;       /* seconds: OVSNAP_S3_SETTLE, else HEADS_SETTLE */
  uint64_t max_seen;    /* highest revision time seen (us) */
  int64_t clock;        /* the server's clock (s) when last read, */
  double clock_at;      /* at this monotonic time (0: never) */
  char last_put[PATH_MAX]; /* the last revision this handle wrote */
};

/* Errors of the client become errno for the interface; the message (which
 * names the operation, the key and the endpoint, never a credential) goes
 * to stderr, since the interface carries errno only. */
static int
fail (ov_error_t *e)
{
  int code = (*e)->errnum ? (*e)->errnum : EIO;
  if ((*e)->code == OV_ENOTFOUND)
    code = ENOENT;
  else
    fprintf (stderr, "ovsnap: %s\n", (*e)->msg);
  ov_error_free (e);
  errno = code;
  return -1;
}

static bool
is_head_key (const char *key, const char **name)
{
  if (strncmp (key, "volumes/", 8) != 0 || key[8] == '\0' || strchr (key + 8, '/'))
    return false;
  *name = key + 8;
  return true;
}

/* ---- immutable keys ---- */

static int
s3_open_read_object (struct s3be *b, const char *key)
{
  ov_error_t e = NULL;
  int fd = s3_cache_open_whole (b->cache, key, &e);
  return fd >= 0 ? fd : fail (&e);
}

static ssize_t
s3_read_range (void *be, const char *key, uint64_t off, void *buf, size_t n)
{
  struct s3be *b = be;
  ov_error_t e = NULL;
  ssize_t got = s3_cache_read (b->cache, key, off, buf, n, &e);
  return got >= 0 ? got : fail (&e);
}

static int
s3_fetch (void *be, const struct ov_span *spans, size_t n, ov_span_verify_fn verify, void *ctx,
          ov_error_t *err)
{
  struct s3be *b = be;
  return s3_cache_fetch (b->cache, spans, n, verify, ctx, err);
}

static int
s3_open_copy (void *be, const char *key)
{
  struct s3be *b = be;
  ov_error_t e = NULL;
  int fd = s3_cache_open_copy (b->cache, key, &e);
  return fd >= 0 ? fd : fail (&e);
}

static int
s3_create_tmp (void *be, const char *dir UNUSED)
{
  struct s3be *b = be;
  return openat (b->nodefd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

static int
conditional (struct s3be *b)
{
  pthread_mutex_lock (&b->mu);
  if (b->conditional < 0)
    {
      ov_error_t e = NULL;
      int r = ov_s3_conditional_put (b->s3, &e);
      ov_error_free (&e);
      b->conditional = r > 0; /* unknown: plain PUTs, which are safe too */
    }
  int r = b->conditional;
  pthread_mutex_unlock (&b->mu);
  return r;
}

static int
s3_publish (void *be, int fd, const char *key)
{
  struct s3be *b = be;
  struct stat st;
  if (fstat (fd, &st) < 0)
    return -1;
  /* multipart uploads cannot be conditional; small ones are */
  int flags = st.st_size < (64 << 20) && conditional (b) ? OV_S3_IF_ABSENT : 0;
  ov_error_t e = NULL;
  if (ov_s3_put_fd (b->s3, key, fd, 0, st.st_size, flags, NULL, &e) < 0)
    {
      if (e->errnum == EEXIST)
        {
          ov_error_free (&e);
          errno = EEXIST;
          return -1;
        }
      return fail (&e);
    }
  s3_cache_keep_whole (b->cache, key, fd); /* this node reads its own writes locally */
  return 0;
}

/* Immutable keys younger than the grace period (the server's clock on
 * both sides) stay: another node may be about to name them in a head. */
static int
s3_young (void *be, const char *key)
{
  struct s3be *b = be;
  ov_error_t e = NULL;
  struct ov_s3_object o;
  int64_t now;
  if (b->grace <= 0) /* Swift rounds Last-Modified up: a fresh key may look a second ahead */
    return 0;
  if (ov_s3_head (b->s3, key, &o, &e) < 0 || ov_s3_server_time (b->s3, &now, &e) < 0)
    return fail (&e);
  return now - o.mtime < b->grace;
}

static int
s3_remove_moved (void *be, const char *key)
{
  struct s3be *b = be;
  ov_error_t e = NULL;
  if (ov_s3_delete (b->s3, key, &e) < 0)
    return fail (&e);
  s3_cache_drop (b->cache, key);
  return 0;
}

static int
s3_remove_object (struct s3be *b, const char *key)
{
  int young = s3_young (b, key);
  if (young != 0)
    {
      if (young > 0)
        errno = EBUSY; /* kept: the caller counts it as such */
      return -1;
    }
  return s3_remove_moved (b, key);
}

/* ---- volume heads as revisions ---- */

struct rev
{
  char *key;      /* heads/NAME/T-NODE-RAND */
  uint64_t t;
  char node[17];
  uint64_t size;
  int64_t mtime;
};

static bool
rev_parse (const char *key, const char *prefix, struct rev *r)
{
  size_t pl = strlen (prefix);
  if (strncmp (key, prefix, pl) != 0)
    return false;
  const char *p = key + pl;
  if (strlen (p) != 16 + 1 + 16 + 1 + 16 || p[16] != '-' || p[33] != '-')
    return false;
  for (int i = 0; i < 50; i++)
    if (i != 16 && i != 33 && !strchr ("0123456789abcdef", p[i]))
      return false;
  char t[17];
  memcpy (t, p, 16);
  t[16] = '\0';
  r->t = strtoull (t, NULL, 16);
  memcpy (r->node, p + 17, 16);
  r->node[16] = '\0';
  return true;
}

struct revs
{
  struct rev *v; /* oldest first */
  size_t n;
};

static void
revs_free (struct revs *rs)
{
  for (size_t i = 0; i < rs->n; i++)
    free (rs->v[i].key);
  free (rs->v);
  rs->v = NULL;
  rs->n = 0;
}

static int
revs_list (struct s3be *b, const char *name, struct revs *out)
{
  cleanup_free char *prefix = xasprintf ("heads/%s/", name);
  struct ov_s3_list l = { 0 };
  ov_error_t e = NULL;
  if (ov_s3_list (b->s3, prefix, NULL, &l, &e) < 0)
    return fail (&e);
  out->v = xcalloc (l.n + 1, sizeof *out->v);
  out->n = 0;
  for (size_t i = 0; i < l.n; i++)
    {
      struct rev r = { 0 };
      if (!rev_parse (l.entries[i].key, prefix, &r))
        continue; /* not a revision: ignored */
      r.key = xstrdup (l.entries[i].key);
      r.size = l.entries[i].size;
      r.mtime = l.entries[i].mtime;
      out->v[out->n++] = r;
    }
  ov_s3_list_free (&l);
  /* S3 lists in key order, which is revision order; keep it so */
  pthread_mutex_lock (&b->mu);
  if (out->n && out->v[out->n - 1].t > b->max_seen)
    b->max_seen = out->v[out->n - 1].t;
  pthread_mutex_unlock (&b->mu);
  return 0;
}

static bool
revs_have (const struct revs *rs, const char *key)
{
  for (size_t i = 0; i < rs->n; i++)
    if (strcmp (rs->v[i].key, key) == 0)
      return true;
  return false;
}

/* A listing may lag behind the PUTs (Swift updates its container listing
 * after the object): one that does not show this handle's own last
 * revision yet is asked again, so a node reads its own writes. */
static int
revs_list_fresh (struct s3be *b, const char *name, struct revs *rs)
{
  cleanup_free char *prefix = xasprintf ("heads/%s/", name);
  char mine[PATH_MAX] = "";
  pthread_mutex_lock (&b->mu);
  if (strncmp (b->last_put, prefix, strlen (prefix)) == 0)
    snprintf (mine, sizeof mine, "%s", b->last_put);
  pthread_mutex_unlock (&b->mu);
  for (int attempt = 0;; attempt++)
    {
      if (revs_list (b, name, rs) < 0)
        return -1;
      if (!mine[0] || revs_have (rs, mine) || attempt == 50)
        return 0;
      revs_free (rs);
      struct timespec ts = { 0, 50 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
}

static double
mono_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The server's clock in seconds: the one this handle read last, moved on
 * by the local monotonic clock since the answer came, if that was a
 * moment ago, else asked for. It errs late, never early: Date is rounded
 * down, and was made before the answer came. */
static int
server_now (struct s3be *b, int64_t *now)
{
  double t = mono_now ();
  pthread_mutex_lock (&b->mu);
  bool recent = b->clock_at > 0 && t - b->clock_at < 10;
  *now = b->clock + (int64_t) (t - b->clock_at);
  pthread_mutex_unlock (&b->mu);
  if (recent)
    return 0;
  ov_error_t e = NULL;
  if (ov_s3_server_time (b->s3, now, &e) < 0)
    return fail (&e);
  pthread_mutex_lock (&b->mu);
  b->clock_at = mono_now ();
  b->clock = *now;
  pthread_mutex_unlock (&b->mu);
  return 0;
}

static int
s3_list_revs (void *be, const char *key, bool want_settled, struct ov_revs *out)
{
  struct s3be *b = be;
  const char *name;
  if (!is_head_key (key, &name))
    {
      errno = EINVAL;
      return -1;
    }
  struct revs rs;
  if (revs_list_fresh (b, name, &rs) < 0)
    return -1;
  memset (out, 0, sizeof *out);
  if (want_settled)
    {
      /* settled: older than the settle period by the server's clock; a
       * writer whose PUT took longer than half of it publishes again
       * (s3_put_rev), so nothing can still appear before these */
      int64_t now;
      if (server_now (b, &now) < 0)
        {
          revs_free (&rs);
          return -1;
        }
      uint64_t limit = (uint64_t) (now - b->settle) * 1000000;
      while (out->settled < rs.n && rs.v[out->settled].t < limit)
        out->settled++;
    }
  out->keys = xcalloc (rs.n + 1, sizeof *out->keys);
  for (size_t i = 0; i < rs.n; i++)
    {
      out->keys[i] = rs.v[i].key;
      rs.v[i].key = NULL;
    }
  out->n = rs.n;
  revs_free (&rs);
  return 0;
}

static bool
is_rev_key (const char *rev)
{
  return strncmp (rev, "heads/", 6) == 0 && !strstr (rev, "..");
}

/* Revisions are immutable: read once, then from the node cache. */
static int
s3_read_rev (void *be, const char *rev, struct ov_buf *out)
{
  struct s3be *b = be;
  if (!is_rev_key (rev))
    {
      errno = EINVAL;
      return -1;
    }
  cleanup_close int fd = s3_open_read_object (b, rev);
  if (fd < 0)
    return -1;
  return ov_read_fd (fd, out, HEAD_LIMIT);
}

static int
s3_drop_rev (void *be, const char *rev)
{
  struct s3be *b = be;
  if (!is_rev_key (rev))
    {
      errno = EINVAL;
      return -1;
    }
  ov_error_t e = NULL;
  if (ov_s3_delete (b->s3, rev, &e) < 0)
    return fail (&e);
  s3_cache_drop (b->cache, rev);
  return 0;
}

static int
s3_memo_get (void *be, const char *name, struct ov_buf *out)
{
  struct s3be *b = be;
  cleanup_free char *path = xasprintf ("cache/s3-memo/%s", name);
  return ov_read_file_at (b->nodefd, path, out, HEAD_LIMIT);
}

static int
s3_memo_put (void *be, const char *name, const void *p, size_t n)
{
  struct s3be *b = be;
  cleanup_free char *path = xasprintf ("cache/s3-memo/%s", name);
  return ov_replace_file (b->nodefd, path, "tmp", p, n);
}

/* Publishes p as the newest revision of key: its time is the server's
 * clock, raised above base and every revision this handle has seen. One
 * whose PUT took more than half the settle period may sort before a
 * settled point already (s3_list_revs), so it is published again under a
 * fresh time; the copies are the same edit, applied twice at worst. */
static int
s3_put_rev (void *be, const char *key, const void *p, size_t n, const char *base, char *rev,
            size_t revlen)
{
  struct s3be *b = be;
  const char *name;
  if (!is_head_key (key, &name))
    {
      errno = EINVAL;
      return -1;
    }
  cleanup_free char *prefix = xasprintf ("heads/%s/", name);
  for (;;)
    {
      double start = mono_now ();
      int64_t now;
      ov_error_t e = NULL;
      if (ov_s3_server_time (b->s3, &now, &e) < 0)
        return fail (&e);
      pthread_mutex_lock (&b->mu);
      b->clock_at = mono_now ();
      b->clock = now;
      pthread_mutex_unlock (&b->mu);
      struct rev br = { 0 };
      uint64_t floor = base && rev_parse (base, prefix, &br) ? br.t : 0;
      pthread_mutex_lock (&b->mu);
      if (b->max_seen > floor)
        floor = b->max_seen;
      uint64_t t = (uint64_t) now * 1000000;
      if (t <= floor)
        t = floor + 1;
      b->max_seen = t;
      pthread_mutex_unlock (&b->mu);
      uint64_t rnd;
      if (getrandom (&rnd, sizeof rnd, 0) != sizeof rnd)
        rnd = (uint64_t) now_ns () ^ ((uint64_t) getpid () << 32);
      snprintf (rev, revlen, "%s%016" PRIx64 "-%s-%016" PRIx64, prefix, t, b->node, rnd);
      if (ov_s3_put (b->s3, rev, p, n, 0, NULL, &e) < 0)
        return fail (&e);
      pthread_mutex_lock (&b->mu);
      snprintf (b->last_put, sizeof b->last_put, "%s", rev);
      pthread_mutex_unlock (&b->mu);
      if (mono_now () - start <= b->settle / 2.0)
        return 0;
    }
}

/* Other small mutable records (the containerd daemon's roots and refs):
 * one PUT replaces one atomically, and each has one writer at a time (a
 * root names its node; any node's ref to a layer is as good as
 * another's), so they need no revisions; they bypass the node cache. */
static bool
is_mutable_key (const char *key)
{
  return strncmp (key, "packs/", 6) != 0 && strncmp (key, "objects/", 8) != 0
         && strncmp (key, "snapshots/", 10) != 0;
}

static int
s3_put_replace (void *be, const char *key, const void *p, size_t n)
{
  struct s3be *b = be;
  const char *name;
  if (!is_head_key (key, &name))
    {
      ov_error_t e = NULL;
      return ov_s3_put (b->s3, key, p, n, 0, NULL, &e) < 0 ? fail (&e) : 0;
    }
  char rev[PATH_MAX];
  return s3_put_rev (be, key, p, n, NULL, rev, sizeof rev);
}

static int
read_fresh (struct s3be *b, const char *key)
{
  int fd = s3_create_tmp (b, NULL);
  ov_error_t e = NULL;
  if (fd < 0)
    return -1;
  if (ov_s3_get_fd (b->s3, key, 0, OV_S3_TO_END, fd, 0, NULL, &e) < 0)
    {
      close (fd);
      return fail (&e);
    }
  return fd;
}

static int
s3_open_read (void *be, const char *key)
{
  struct s3be *b = be;
  const char *name;
  if (!is_head_key (key, &name))
    return is_mutable_key (key) ? read_fresh (b, key) : s3_open_read_object (b, key);
  errno = EINVAL; /* a head is read through its revisions (list_revs) */
  return -1;
}

static int
s3_remove (void *be, const char *key)
{
  struct s3be *b = be;
  const char *name;
  if (is_head_key (key, &name))
    return s3_put_replace (be, key, "", 0); /* a tombstone */
  if (is_mutable_key (key)) /* nobody dedups against it: no grace period */
    return s3_remove_moved (b, key);
  return s3_remove_object (b, key);
}

struct vol_names
{
  struct s3be *b;
  int (*cb) (const char *key, uint64_t size, void *ctx);
  void *ctx;
};

/* "volumes/": one name per volume whose newest revision is not a tombstone. */
static int
list_volumes (struct s3be *b, int (*cb) (const char *key, uint64_t size, void *ctx), void *ctx)
{
  struct ov_s3_list l = { 0 };
  ov_error_t e = NULL;
  if (ov_s3_list (b->s3, "heads/", "/", &l, &e) < 0)
    return fail (&e);
  int r = 0;
  for (size_t i = 0; r == 0 && i < l.nprefixes; i++)
    {
      const char *p = l.prefixes[i] + 6;
      size_t len = strlen (p);
      if (len < 2 || p[len - 1] != '/')
        continue;
      cleanup_free char *name = xstrndup (p, len - 1);
      struct revs rs;
      if ((r = revs_list (b, name, &rs)) < 0)
        break;
      if (rs.n && rs.v[rs.n - 1].size > 0)
        {
          cleanup_free char *key = xasprintf ("volumes/%s", name);
          r = cb (key, rs.v[rs.n - 1].size, ctx);
        }
      revs_free (&rs);
    }
  ov_s3_list_free (&l);
  return r;
}

static int
s3_list (void *be, const char *prefix, int (*cb) (const char *key, uint64_t size, void *ctx),
         void *ctx)
{
  struct s3be *b = be;
  if (strcmp (prefix, "volumes/") == 0)
    return list_volumes (b, cb, ctx);
  struct ov_s3_list l = { 0 };
  ov_error_t e = NULL;
  if (ov_s3_list (b->s3, prefix, NULL, &l, &e) < 0)
    return fail (&e);
  int r = 0;
  for (size_t i = 0; r == 0 && i < l.n; i++)
    r = cb (l.entries[i].key, l.entries[i].size, ctx);
  ov_s3_list_free (&l);
  return r;
}

static int
s3_lock (void *be, const char *name, bool exclusive)
{
  struct s3be *b = be;
  return ov_lock_at (b->nodefd, name, exclusive);
}

static void
s3_close (void *be)
{
  struct s3be *b = be;
  s3_cache_close (b->cache);
  ov_s3_close (b->s3);
  close (b->nodefd);
  pthread_mutex_destroy (&b->mu);
  free (b->name);
  free (b);
}

static const struct ov_backend s3_backend = {
  .name = "s3",
  .remote = true,
  .open_read = s3_open_read,
  .read_range = s3_read_range,
  .fetch = s3_fetch,
  .open_copy = s3_open_copy,
  .create_tmp = s3_create_tmp,
  .publish = s3_publish,
  .atomic_publish = false,
  .put_replace = s3_put_replace,
  .remove = s3_remove,
  .young = s3_young,
  .remove_moved = s3_remove_moved,
  .list = s3_list,
  .lock = s3_lock,
  .close = s3_close,
  .list_revs = s3_list_revs,
  .read_rev = s3_read_rev,
  .put_rev = s3_put_rev,
  .drop_rev = s3_drop_rev,
  .memo_get = s3_memo_get,
  .memo_put = s3_memo_put,
};

/* This node's id: random, made once, kept in <node>/node-id. */
static int
node_id (int nodefd, char out[17])
{
  struct ov_buf b = { 0 };
  if (ov_read_file_at (nodefd, "node-id", &b, 64) == 0 && b.len >= 16)
    {
      memcpy (out, b.data, 16);
      out[16] = '\0';
      buf_free (&b);
      if (strspn (out, "0123456789abcdef") == 16)
        return 0;
    }
  buf_free (&b);
  uint64_t r;
  if (getrandom (&r, sizeof r, 0) != sizeof r)
    return -1;
  char id[18];
  snprintf (id, sizeof id, "%016" PRIx64 "\n", r);
  if (ov_replace_file (nodefd, "node-id", "tmp", id, 17) < 0)
    return -1;
  memcpy (out, id, 16);
  out[16] = '\0';
  return 0;
}

int
ov_backend_s3_open (struct ov_store *s, const char *url, const char *node_root, ov_error_t *err)
{
  static const char *const dirs[] = { "cache", "locks", "tmp" };
  const char *failed;
  int nodefd = ov_open_dir_with (node_root, true, dirs, ARRAY_SIZE (dirs), &failed);
  if (nodefd < 0)
    return failed == node_root ? ov_error (err, errno, "open node directory %s", node_root)
                               : ov_error (err, errno, "create %s/%s", node_root, failed);
  struct s3be *b = xcalloc (1, sizeof *b);
  b->nodefd = nodefd;
  b->conditional = -1;
  b->grace = DEFAULT_GRACE;
  const char *g = getenv ("OVSNAP_S3_GRACE");
  if (g && *g)
    b->grace = strtoll (g, NULL, 10);
  const char *st = getenv ("OVSNAP_S3_SETTLE"); /* tests: a short settle period */
  b->settle = st && *st ? strtoll (st, NULL, 10) : HEADS_SETTLE;
  pthread_mutex_init (&b->mu, NULL);
  if (node_id (nodefd, b->node) < 0)
    {
      ov_error (err, errno, "node id in %s", node_root);
      goto fail;
    }
  b->s3 = ov_s3_open (url, err);
  if (b->s3 == NULL)
    goto fail;
  b->cache = s3_cache_open (nodefd, b->s3, err);
  if (b->cache == NULL)
    {
      ov_s3_close (b->s3);
      ov_error_prefix (err, "in %s", node_root);
      goto fail;
    }
  b->name = xstrdup (ov_s3_name (b->s3));
  s->be = &s3_backend;
  s->be_data = b;
  free (s->root);
  s->root = xstrdup (b->name);
  return 0;
fail:
  close (nodefd);
  pthread_mutex_destroy (&b->mu);
  free (b);
  return -1;
}
