/* The S3 backend's node cache (see s3-cache.h). */
#include "s3-cache.h"
#include "file.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#define SPAN_GAP (64u << 10)     /* spans this close share one GET */
#define GET_MAX (8u << 20)       /* the most one ranged GET asks for */
#define BATCH_BYTES (64u << 20)  /* the most one batch holds in memory */
#define NO_SIZE UINT64_MAX

struct iv
{
  uint64_t lo, hi;
};

/* A key's copy on this node: whole, or a partial copy with the ranges in it. */
struct copy
{
  struct copy *next;
  char *key;
  int fd;
  bool whole;
  uint64_t size; /* NO_SIZE until a response told it */
  struct iv *iv; /* sorted, disjoint, not touching */
  size_t n, cap;
};

struct s3_cache
{
  struct ov_s3 *s3;
  int wholefd; /* cache/s3 */
  int partfd;  /* cache/s3-parts */
  pthread_mutex_t mu;
  struct copy *copies; /* most recently used first */
};

struct s3_cache *
s3_cache_open (int nodefd, struct ov_s3 *s3, ov_error_t *err)
{
  static const char *const dirs[] = { "cache/s3", "cache/s3-parts" };
  int fds[2] = { -1, -1 };
  for (int i = 0; i < 2; i++)
    if (mkdirat (nodefd, dirs[i], 0700) < 0 && errno != EEXIST)
      goto fail;
    else if ((fds[i] = openat (nodefd, dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
      goto fail;
  struct s3_cache *c = xcalloc (1, sizeof *c);
  c->s3 = s3;
  c->wholefd = fds[0];
  c->partfd = fds[1];
  pthread_mutex_init (&c->mu, NULL);
  return c;
fail:
  ov_error (err, errno, "node cache %s", "cache/s3");
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0)
      close (fds[i]);
  return NULL;
}

void
s3_cache_close (struct s3_cache *c)
{
  if (c == NULL)
    return;
  for (struct copy *p = c->copies, *next; p; p = next)
    {
      next = p->next;
      close (p->fd);
      free (p->key);
      free (p->iv);
      free (p);
    }
  close (c->wholefd);
  close (c->partfd);
  pthread_mutex_destroy (&c->mu);
  free (c);
}

/* ---- ranges present ---- */

/* index of the first range ending at or after off */
static size_t
iv_find (const struct copy *p, uint64_t off)
{
  size_t lo = 0, hi = p->n;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      if (p->iv[mid].hi < off)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

static bool
iv_has (const struct copy *p, uint64_t lo, uint64_t hi)
{
  if (p->whole || lo >= hi || (p->size != NO_SIZE && lo >= p->size))
    return true;
  if (p->size != NO_SIZE && hi > p->size)
    hi = p->size;
  size_t i = iv_find (p, lo);
  return i < p->n && p->iv[i].lo <= lo && p->iv[i].hi >= hi;
}

static void
iv_add (struct copy *p, uint64_t lo, uint64_t hi)
{
  if (lo >= hi)
    return;
  size_t i = iv_find (p, lo), j = i;
  /* ranges i..j-1 touch [lo, hi): they merge into one */
  while (j < p->n && p->iv[j].lo <= hi)
    {
      if (p->iv[j].lo < lo)
        lo = p->iv[j].lo;
      if (p->iv[j].hi > hi)
        hi = p->iv[j].hi;
      j++;
    }
  if (i == j)
    {
      if (p->n == p->cap)
        {
          p->cap = p->cap ? 2 * p->cap : 16;
          p->iv = xrealloc (p->iv, p->cap * sizeof *p->iv);
        }
      memmove (p->iv + i + 1, p->iv + i, (p->n - i) * sizeof *p->iv);
      p->n++;
    }
  else
    {
      memmove (p->iv + i + 1, p->iv + j, (p->n - j) * sizeof *p->iv);
      p->n -= j - i - 1;
    }
  p->iv[i] = (struct iv){ lo, hi };
}

static char *
map_name (const char *key)
{
  return xasprintf ("%s@map", key);
}

static void
map_load (struct s3_cache *c, struct copy *p)
{
  cleanup_free char *name = map_name (p->key);
  struct ov_buf b = { 0 };
  if (ov_read_file_at (c->partfd, name, &b, 256u << 20) == 0)
    for (size_t at = 0; at + 16 <= b.len; at += 16) /* a torn last record is ignored */
      {
        uint64_t off, len;
        memcpy (&off, b.data + at, 8);
        memcpy (&len, b.data + at + 8, 8);
        if (off == NO_SIZE)
          p->size = len;
        else if (off + len >= off)
          iv_add (p, off, off + len);
      }
  buf_free (&b);
}

/* Appends records once the bytes they describe are durable: a crash may
 * lose a record (the bytes are fetched again), never claim missing bytes. */
static void
map_append (struct s3_cache *c, const struct copy *p, const uint64_t *rec, size_t nrec)
{
  cleanup_free char *name = map_name (p->key);
  int fd = openat (c->partfd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return; /* a cache: the ranges are fetched again next time */
  ssize_t w = write (fd, rec, nrec * 16);
  (void) w;
  close (fd);
}

/* The copy of key (c->mu held): whole if this node has it whole, else a
 * partial copy, created if missing. NULL with errno. */
static struct copy *
copy_of (struct s3_cache *c, const char *key)
{
  for (struct copy **pp = &c->copies; *pp; pp = &(*pp)->next)
    if (strcmp ((*pp)->key, key) == 0)
      {
        struct copy *p = *pp;
        *pp = p->next;
        p->next = c->copies;
        c->copies = p;
        return p;
      }
  bool whole = true;
  int fd = openat (c->wholefd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    {
      whole = false;
      int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
      fd = openat (c->partfd, key, flags, 0600);
      if (fd < 0 && errno == ENOENT && ov_mkdir_parents (c->partfd, key) == 0)
        fd = openat (c->partfd, key, flags, 0600);
    }
  if (fd < 0)
    return NULL;
  struct copy *p = xcalloc (1, sizeof *p);
  p->key = xstrdup (key);
  p->fd = fd;
  p->whole = whole;
  p->size = NO_SIZE;
  if (!whole)
    map_load (c, p);
  p->next = c->copies;
  c->copies = p;
  return p;
}

/* ---- whole copies ---- */

static int
link_whole (struct s3_cache *c, const char *key, int fd)
{
  char proc[64];
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  for (int attempt = 0; attempt < 2; attempt++)
    {
      if (linkat (AT_FDCWD, proc, c->wholefd, key, AT_SYMLINK_FOLLOW) == 0 || errno == EEXIST)
        return 0;
      if (errno != ENOENT || ov_mkdir_parents (c->wholefd, key) < 0)
        return -1;
    }
  return -1;
}

void
s3_cache_keep_whole (struct s3_cache *c, const char *key, int fd)
{
  link_whole (c, key, fd); /* a cache: without it, the key is fetched when read */
}

int
s3_cache_open_whole (struct s3_cache *c, const char *key, ov_error_t *err)
{
  int fd = openat (c->wholefd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 || errno != ENOENT)
    return fd >= 0 ? fd : ov_error (err, errno, "node cache: open %s", key);
  fd = openat (c->wholefd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return ov_error (err, errno, "node cache: a file for %s", key);
  if (ov_s3_get_fd (c->s3, key, 0, OV_S3_TO_END, fd, 0, NULL, err) < 0)
    {
      close (fd);
      return -1;
    }
  /* the layers above verify it; a copy that fails stays refused */
  link_whole (c, key, fd);
  return fd;
}

void
s3_cache_drop (struct s3_cache *c, const char *key)
{
  cleanup_free char *map = map_name (key);
  unlinkat (c->wholefd, key, 0);
  unlinkat (c->partfd, key, 0);
  unlinkat (c->partfd, map, 0);
  pthread_mutex_lock (&c->mu);
  for (struct copy *p = c->copies; p; p = p->next)
    if (strcmp (p->key, key) == 0 && !p->whole)
      {
        p->n = 0; /* an open copy keeps its bytes; none counts as present */
        p->size = NO_SIZE;
      }
  pthread_mutex_unlock (&c->mu);
}

/* ---- partial copies ---- */

struct want
{
  struct copy *p;
  uint64_t lo, hi;
  size_t span; /* index into the caller's spans */
};

static int
want_cmp (const void *a, const void *b)
{
  const struct want *x = a, *y = b;
  if (x->p != y->p)
    return x->p < y->p ? -1 : 1;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* One ranged GET: wants [first, first + count) of one copy. */
struct req
{
  struct copy *p;
  uint64_t lo, hi;
  size_t first, count;
  struct ov_buf buf;
};

/* Spans not yet present, sorted by copy and offset (c->mu held). */
static struct want *
missing (struct s3_cache *c, const struct ov_span *spans, size_t n, size_t *nw, ov_error_t *err)
{
  struct want *w = xmalloc ((n + 1) * sizeof *w);
  *nw = 0;
  for (size_t i = 0; i < n; i++)
    {
      struct copy *p = copy_of (c, spans[i].key);
      if (p == NULL)
        {
          free (w);
          return ov_error (err, errno, "node cache: copy of %s", spans[i].key), NULL;
        }
      uint64_t hi = spans[i].off + spans[i].len < spans[i].off ? UINT64_MAX : spans[i].off + spans[i].len;
      if (!iv_has (p, spans[i].off, hi))
        w[(*nw)++] = (struct want){ p, spans[i].off, hi, i };
    }
  qsort (w, *nw, sizeof *w, want_cmp);
  return w;
}

/* Neighbours in one copy become one request, up to GET_MAX. */
static struct req *
plan (struct want *w, size_t nw, size_t *nr)
{
  struct req *r = xcalloc (nw + 1, sizeof *r);
  *nr = 0;
  for (size_t i = 0; i < nw; i++)
    {
      struct req *last = *nr ? &r[*nr - 1] : NULL;
      if (last && last->p == w[i].p && w[i].lo <= last->hi + SPAN_GAP
          && (w[i].hi > last->hi ? w[i].hi : last->hi) - last->lo <= GET_MAX)
        {
          if (w[i].hi > last->hi)
            last->hi = w[i].hi;
          last->count++;
          continue;
        }
      r[(*nr)++] = (struct req){ .p = w[i].p, .lo = w[i].lo, .hi = w[i].hi, .first = i, .count = 1 };
    }
  return r;
}

/* The bytes of a finished request: verified, written, durable, recorded. */
static int
settle (struct s3_cache *c, struct req *q, const struct ov_s3_op *op, const struct want *w,
        ov_span_verify_fn verify, void *ctx, ov_error_t *err)
{
  uint64_t got = q->buf.len, size = op->obj.size;
  for (size_t k = q->first; verify && k < q->first + q->count; k++)
    {
      uint64_t lo = w[k].lo - q->lo, hi = w[k].hi - q->lo;
      if (hi > got)
        hi = got;
      if (verify (ctx, w[k].span, q->buf.data + lo, lo < hi ? hi - lo : 0, err) < 0)
        return -1;
    }
  if (got && (pwrite_all (q->p->fd, q->buf.data, got, q->lo) < 0 || fdatasync (q->p->fd) < 0))
    return ov_error (err, errno, "node cache: write %s", q->p->key);
  uint64_t rec[4] = { q->lo, got, NO_SIZE, size };
  pthread_mutex_lock (&c->mu);
  iv_add (q->p, q->lo, q->lo + got);
  bool sized = size && q->p->size == NO_SIZE;
  if (sized)
    q->p->size = size;
  map_append (c, q->p, rec, sized ? 2 : 1);
  pthread_mutex_unlock (&c->mu);
  return 0;
}

/* Requests [from, to) as one parallel batch. */
static int
run_batch (struct s3_cache *c, struct req *r, size_t from, size_t to, const struct want *w,
           ov_span_verify_fn verify, void *ctx, ov_error_t *err)
{
  size_t n = to - from;
  struct ov_s3_op *ops = xcalloc (n + 1, sizeof *ops);
  for (size_t i = 0; i < n; i++)
    {
      struct req *q = &r[from + i];
      ops[i] = (struct ov_s3_op){ .kind = OV_S3_OP_GET, .key = q->p->key, .off = q->lo,
                                  .len = q->hi == UINT64_MAX ? OV_S3_TO_END : q->hi - q->lo,
                                  .buf = &q->buf, .max = q->hi - q->lo, .fd = -1 };
    }
  int ret = ov_s3_batch (c->s3, ops, n, err);
  if (ret < 0)
    {
      /* a range starting past the end of its key holds nothing (S3's 416) */
      ret = 0;
      for (size_t i = 0; i < n && ret == 0; i++)
        if (ops[i].err && ops[i].err->errnum != ERANGE)
          ret = -1;
      if (ret == 0)
        ov_error_free (err);
    }
  for (size_t i = 0; ret == 0 && i < n; i++)
    if (ops[i].err == NULL)
      ret = settle (c, &r[from + i], &ops[i], w, verify, ctx, err);
  ov_s3_batch_free (ops, n);
  free (ops);
  return ret;
}

int
s3_cache_fetch (struct s3_cache *c, const struct ov_span *spans, size_t n,
                ov_span_verify_fn verify, void *ctx, ov_error_t *err)
{
  size_t nw, nr;
  pthread_mutex_lock (&c->mu);
  struct want *w = missing (c, spans, n, &nw, err);
  pthread_mutex_unlock (&c->mu);
  if (w == NULL)
    return -1;
  struct req *r = plan (w, nw, &nr);
  int ret = 0;
  for (size_t from = 0; ret == 0 && from < nr;)
    {
      size_t to = from;
      uint64_t bytes = 0;
      while (to < nr && (to == from || bytes + (r[to].hi - r[to].lo) <= BATCH_BYTES))
        {
          bytes += r[to].hi - r[to].lo;
          to++;
        }
      ret = run_batch (c, r, from, to, w, verify, ctx, err);
      for (size_t i = from; i < to; i++)
        buf_free (&r[i].buf);
      from = to;
    }
  for (size_t i = 0; i < nr; i++)
    buf_free (&r[i].buf);
  free (r);
  free (w);
  return ret;
}

int
s3_cache_open_copy (struct s3_cache *c, const char *key, ov_error_t *err)
{
  pthread_mutex_lock (&c->mu);
  struct copy *p = copy_of (c, key);
  int fd = p ? fcntl (p->fd, F_DUPFD_CLOEXEC, 0) : -1;
  int e = errno;
  pthread_mutex_unlock (&c->mu);
  if (fd < 0)
    return ov_error (err, e, "node cache: copy of %s", key);
  return fd;
}

ssize_t
s3_cache_read (struct s3_cache *c, const char *key, uint64_t off, void *buf, size_t n,
               ov_error_t *err)
{
  struct ov_span sp = { key, off, n };
  if (s3_cache_fetch (c, &sp, 1, NULL, NULL, err) < 0)
    return -1;
  pthread_mutex_lock (&c->mu);
  struct copy *p = copy_of (c, key);
  uint64_t size = p ? p->size : NO_SIZE;
  int fd = p ? fcntl (p->fd, F_DUPFD_CLOEXEC, 0) : -1;
  bool whole = p && p->whole;
  pthread_mutex_unlock (&c->mu);
  if (fd < 0)
    return ov_error (err, errno, "node cache: copy of %s", key);
  /* a partial copy is sparse: its own length says nothing of the key's */
  if (!whole && size != NO_SIZE)
    n = off >= size ? 0 : (size - off < n ? size - off : n);
  ssize_t got = pread_all (fd, buf, n, off);
  int e = errno;
  close (fd);
  if (got < 0)
    return ov_error (err, e, "node cache: read %s", key);
  return got;
}
