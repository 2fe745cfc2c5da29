/* Packs (see pack.h): looking up published packs, writing the pack each
 * store handle (each operation) fills, and gc's rewrite.
 *
 * A published pack's index is sorted by (kind, hash, variant), the first
 * 18 bytes of each entry, so a lookup is a binary search in each pack and
 * opening a store reads indexes without building anything. The pack being
 * written has a small hash table of its own.
 *
 * The published packs (struct ov_packs) are shared by every handle on a
 * store; the pack being written (struct ov_pack_writer) belongs to one
 * handle, so that one operation's failure drops its own unpublished
 * objects and nobody else's, and no operation's record can name an object
 * of another's pack before that pack is durable. An operation dedups
 * against published packs and its own, never another's pending one.
 *
 * One mutex guards it all: ingest threads store objects concurrently, and
 * lookup, byte comparison and append must be one step, or two threads
 * could give different contents the same variant. Only the writing of a
 * full buffer happens outside it (a few buffers rotate), so one thread's
 * pwrite does not stall the others. */
#include "pack.h"
#include "record.h"
#include "fault.h"
#include "proc.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>

#define PACK_MAGIC "OVSNPACK"
#define PACK_VERSION 1u
#define INDEX_MAGIC "OVPKINDX"
#define INDEX_VERSION 1u
#define HEADER 16u
#define TAIL 16u
#define KEY_BYTES 18 /* kind, hash, variant: the sort key */
#define ENTRY_BYTES (KEY_BYTES + 8 + 8)
#define WBUF (256u << 10)      /* write buffer: small enough to stay in cache */
#define NBUF 3                 /* one filling, the others being written */
#define SMALL_PACK (64u << 20) /* gc merges packs smaller than this */
#define MAX_VARIANT 255
/* fan-out over the first two key bytes (kind < 2, first hash byte): a
 * lookup searches 1/512 of an index */
#define FAN 512
#define FAN_KEY(k) ((unsigned) (k)[0] << 8 | (k)[1])

struct pent
{
  uint8_t key[KEY_BYTES];
  uint64_t off, size;
};

/* A published pack. */
/* A published pack's open file, shared by the store's view of it and by
 * every location handed out: gc or a roll-up may forget the pack while
 * another operation still reads from a location. */
struct ov_pack_file
{
  int fd;
  int refs; /* atomic */
  char *key;
};

static struct ov_pack_file *
pack_file_new (int fd, const char *key)
{
  struct ov_pack_file *f = xmalloc (sizeof *f);
  *f = (struct ov_pack_file){ fd, 1, xstrdup (key) };
  return f;
}

static struct ov_pack_file *
pack_file_get (struct ov_pack_file *f)
{
  __atomic_add_fetch (&f->refs, 1, __ATOMIC_RELAXED);
  return f;
}

static void
pack_file_put (struct ov_pack_file *f)
{
  if (f && __atomic_sub_fetch (&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
    {
      close (f->fd);
      free (f->key);
      free (f);
    }
}

void
ov_pack_loc_release (struct ov_pack_loc *loc)
{
  pack_file_put (loc->hold);
  loc->hold = NULL;
  loc->fd = -1;
}

struct pack
{
  char *key;
  struct ov_pack_file *file; /* opened at the first read of an object: NULL until then */
  bool partial;      /* file is the node's partial copy: fetch a span before reading it */
  uint64_t data_end; /* where the index starts */
  uint8_t *idx;      /* n sorted raw entries */
  uint32_t *fan;     /* fan[b] = first entry whose key starts above b (FAN_KEY) */
  size_t n;
};

struct wbuf
{
  uint8_t *p;
  size_t len;
  uint64_t off;
  bool busy; /* being written out, without the lock */
};

/* What the handles of one store share. */
struct ov_packs
{
  pthread_mutex_t mu;
  pthread_cond_t idle;
  unsigned refs;
  bool loaded;
  const struct ov_backend *be; /* where packs are read from (set at the first scan) */
  void *be_data;
  struct pack *p;
  size_t np, capp;
  char **seen; /* keys loaded or found damaged: sorted up to nsorted */
  size_t nseen, nsorted;
  char **damaged; /* messages */
  size_t ndamaged;
};

/* The pack one handle is writing. */
struct ov_pack_writer
{
  int fd;        /* the anonymous file; -1 until the first object */
  struct pent *e; /* its entries, in write order */
  size_t n, cap;
  uint32_t *tab; /* its entries by key: index + 1, 0 empty */
  size_t tabcap;
  struct wbuf buf[NBUF];
  int cur;
  int werr; /* errno of a failed write done without the lock */
  uint64_t wend;
};

/* find_key's "pack" for an entry of the handle's own pending pack */
#define PENDING ((size_t) -1)

struct ov_packs *
ov_packs_new (void)
{
  struct ov_packs *P = xcalloc (1, sizeof *P);
  pthread_mutex_init (&P->mu, NULL);
  pthread_cond_init (&P->idle, NULL);
  P->refs = 1;
  ov_fork_guard_add (&P->mu);
  return P;
}

struct ov_packs *
ov_packs_ref (struct ov_packs *P)
{
  pthread_mutex_lock (&P->mu);
  P->refs++;
  pthread_mutex_unlock (&P->mu);
  return P;
}

static bool
any_busy (const struct ov_pack_writer *W)
{
  for (int i = 0; i < NBUF; i++)
    if (W->buf[i].busy)
      return true;
  return false;
}

static void
wait_idle (struct ov_packs *P, struct ov_pack_writer *W)
{
  while (any_busy (W))
    pthread_cond_wait (&P->idle, &P->mu);
}

/* Forgets the published packs (the next lookup reads them again). */
static void
packs_clear (struct ov_packs *P)
{
  for (size_t i = 0; i < P->np; i++)
    {
      pack_file_put (P->p[i].file);
      free (P->p[i].key);
      free (P->p[i].idx);
      free (P->p[i].fan);
    }
  for (size_t i = 0; i < P->nseen; i++)
    free (P->seen[i]);
  for (size_t i = 0; i < P->ndamaged; i++)
    free (P->damaged[i]);
  free (P->p);
  free (P->seen);
  free (P->damaged);
  P->p = NULL;
  P->seen = P->damaged = NULL;
  P->np = P->capp = P->nseen = P->nsorted = P->ndamaged = 0;
  P->loaded = false;
}

void
ov_packs_free (struct ov_packs *P)
{
  if (P == NULL)
    return;
  pthread_mutex_lock (&P->mu);
  bool last = --P->refs == 0;
  if (last)
    packs_clear (P);
  pthread_mutex_unlock (&P->mu);
  if (!last)
    return;
  ov_fork_guard_remove (&P->mu);
  pthread_cond_destroy (&P->idle);
  pthread_mutex_destroy (&P->mu);
  free (P);
}

/* A handle's writer, made on its first object. */
static struct ov_pack_writer *
writer_of (struct ov_store *s)
{
  if (s->pw == NULL)
    {
      s->pw = xcalloc (1, sizeof *s->pw);
      s->pw->fd = -1;
    }
  return s->pw;
}

/* Drops the pending pack: its objects were never published, so nothing
 * can name them. With the lock held. */
static void
writer_discard (struct ov_packs *P, struct ov_pack_writer *W)
{
  wait_idle (P, W);
  if (W->fd >= 0)
    close (W->fd);
  W->fd = -1;
  free (W->e);
  free (W->tab);
  W->e = NULL;
  W->tab = NULL;
  W->n = W->cap = W->tabcap = 0;
  W->werr = 0;
  W->wend = 0;
}

void
ov_pack_writer_free (struct ov_packs *P, struct ov_pack_writer *W)
{
  if (W == NULL)
    return;
  pthread_mutex_lock (&P->mu);
  writer_discard (P, W);
  pthread_mutex_unlock (&P->mu);
  for (int i = 0; i < NBUF; i++)
    free (W->buf[i].p);
  free (W);
}

/* ---- entries ---- */

static void
make_key (uint8_t key[KEY_BYTES], uint8_t kind, const struct ov_oid *id)
{
  key[0] = kind;
  memcpy (key + 1, id->b, 16);
  key[17] = id->variant;
}

static void
oid_of (const struct pent *e, struct ov_oid *id)
{
  memcpy (id->b, e->key + 1, 16);
  id->variant = e->key[17];
}

static uint64_t
le64 (const uint8_t *p)
{
  struct ov_reader r = { p, 8, 0 };
  return rd_u64 (&r);
}

static void
decode_ent (const uint8_t *raw, struct pent *e)
{
  memcpy (e->key, raw, KEY_BYTES);
  e->off = le64 (raw + KEY_BYTES);
  e->size = le64 (raw + KEY_BYTES + 8);
}

/* Entry i of published pack k. */
static void
get_ent (struct ov_packs *P, size_t k, size_t i, struct pent *e)
{
  decode_ent (P->p[k].idx + i * ENTRY_BYTES, e);
}

/* fan[b]: entries whose first two key bytes are <= b. NULL if an entry
 * has an unknown kind or the keys are not strictly increasing: the binary
 * search and the table itself rely on both. */
static uint32_t *
make_fan (const uint8_t *idx, size_t n)
{
  uint32_t *fan = xcalloc (FAN, sizeof *fan);
  for (size_t i = 0; i < n; i++)
    {
      const uint8_t *e = idx + i * ENTRY_BYTES;
      if ((e[0] != OV_BLOB && e[0] != OV_TREE_OBJ)
          || (i && memcmp (e - ENTRY_BYTES, e, KEY_BYTES) >= 0))
        {
          free (fan);
          return NULL;
        }
      fan[FAN_KEY (e)]++;
    }
  for (int b = 1; b < FAN; b++)
    fan[b] += fan[b - 1];
  return fan;
}

/* Binary search in a published pack: the entry index, or -1. */
static ssize_t
pack_search (const struct pack *pk, const uint8_t key[KEY_BYTES])
{
  if (pk->idx == NULL || key[0] > 1)
    return -1;
  unsigned b = FAN_KEY (key);
  size_t lo = b ? pk->fan[b - 1] : 0, hi = pk->fan[b];
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      int c = memcmp (key, pk->idx + mid * ENTRY_BYTES, KEY_BYTES);
      if (c == 0)
        return mid;
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  return -1;
}

static size_t
key_hash (const uint8_t key[KEY_BYTES])
{
  uint64_t a, b;
  memcpy (&a, key + 1, 8);
  memcpy (&b, key + 9, 8);
  uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull) ^ ((uint64_t) (key[17] << 8 | key[0]) * 0xff51afd7ed558ccdull);
  return h ^ (h >> 29) ^ (h >> 47);
}

/* The pack being written: entry index or -1. */
static ssize_t
pending_search (const struct ov_pack_writer *W, const uint8_t key[KEY_BYTES])
{
  if (W == NULL || W->fd < 0 || W->tabcap == 0)
    return -1;
  for (size_t i = key_hash (key) & (W->tabcap - 1);; i = (i + 1) & (W->tabcap - 1))
    {
      if (W->tab[i] == 0)
        return -1;
      if (memcmp (W->e[W->tab[i] - 1].key, key, KEY_BYTES) == 0)
        return W->tab[i] - 1;
    }
}

static void
pending_insert (struct ov_pack_writer *W, size_t ent)
{
  if (2 * W->n > W->tabcap)
    {
      free (W->tab);
      W->tabcap = W->tabcap ? W->tabcap * 2 : 1024;
      W->tab = xcalloc (W->tabcap, sizeof *W->tab);
      for (size_t i = 0; i < W->n; i++)
        if (i != ent)
          pending_insert (W, i);
    }
  size_t i = key_hash (W->e[ent].key) & (W->tabcap - 1);
  while (W->tab[i])
    i = (i + 1) & (W->tabcap - 1);
  W->tab[i] = ent + 1;
}

/* Where a key is: pack (PENDING: W's) and entry. W's pending pack first. */
static bool
find_key (struct ov_packs *P, const struct ov_pack_writer *W, const uint8_t key[KEY_BYTES],
          size_t *pack, struct pent *e)
{
  ssize_t i = pending_search (W, key);
  if (i >= 0)
    {
      *pack = PENDING;
      *e = W->e[i];
      return true;
    }
  for (size_t k = P->np; k-- > 0;)
    if ((i = pack_search (&P->p[k], key)) >= 0)
      {
        *pack = k;
        decode_ent (P->p[k].idx + i * ENTRY_BYTES, e);
        return true;
      }
  return false;
}

/* ---- reading ---- */

/* Bytes of the pack being written that are still in a buffer. */
static bool
from_buffers (const struct ov_pack_writer *W, const struct pent *e, uint8_t *out)
{
  for (int i = 0; i < NBUF; i++)
    {
      const struct wbuf *b = &W->buf[i];
      if ((i == W->cur || b->busy) && b->len && e->off >= b->off
          && e->off + e->size <= b->off + b->len)
        {
          memcpy (out, b->p + (e->off - b->off), e->size);
          return true;
        }
    }
  return false;
}

/* Inside the pack's data? (A published index is only checksummed as a
 * whole; each entry is checked where it is used.) */
static bool
ent_in_bounds (const struct pack *pk, const struct pent *e)
{
  return e->off >= HEADER
         && (pk == NULL || (e->off <= pk->data_end && e->size <= pk->data_end - e->off));
}

/* Rolled up or collected since its index was read: its objects are in a
 * newer pack now (the caller looks again). */
static void
forget_pack (struct pack *pk)
{
  free (pk->idx);
  free (pk->fan);
  pk->idx = NULL;
  pk->fan = NULL;
  pk->n = 0;
  errno = ENOENT;
}

/* A published pack's fd, opened at its first use (opening the store read
 * only its index): the whole file, or the node's partial copy of a remote
 * one. Called under P->mu. */
static int
pack_fd (struct ov_packs *P, struct pack *pk)
{
  if (pk->file == NULL)
    {
      bool partial = P->be->open_copy != NULL;
      int fd = partial ? P->be->open_copy (P->be_data, pk->key)
                       : P->be->open_read (P->be_data, pk->key);
      if (fd < 0 && errno == ENOENT)
        forget_pack (pk);
      if (fd < 0)
        return -1;
      pk->file = pack_file_new (fd, pk->key);
      pk->partial = partial;
    }
  return pk->file->fd;
}

/* What a fetch checks: span i holds entry e[i]. */
struct fetched
{
  const struct pent *e;
  const struct ov_span *sp;
};

static int
verify_ents (void *ctx, size_t i, const uint8_t *p, size_t n, ov_error_t *err)
{
  const struct fetched *f = ctx;
  const struct pent *e = &f->e[i];
  struct ov_oid id, got;
  oid_of (e, &id);
  ov_hash (p, n, &got);
  if (n == e->size && memcmp (got.b, id.b, 16) == 0)
    return 0;
  char hex[OV_OID_STR];
  oid_hex (&id, hex);
  return ov_corrupt (err, "%s: object %s is corrupt (the %zu bytes fetched do not match its hash)",
                     f->sp[i].key, hex, n);
}

/* Entries of a published pack present in its fd: a partial copy fetches
 * the missing ones, in parallel, each checked against its hash. Under
 * P->mu. -1 with *err (errno ENOENT: the pack is gone, look again). */
static int
pack_spans (struct ov_packs *P, struct pack *pk, const struct pent *e, size_t n, ov_error_t *err)
{
  if (pack_fd (P, pk) < 0)
    return ov_error (err, errno, "open %s", pk->key);
  if (!pk->partial || n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!ent_in_bounds (pk, &e[i]))
      return ov_corrupt (err, "%s: pack index entry out of bounds", pk->key);
  struct ov_span *sp = xmalloc (n * sizeof *sp);
  for (size_t i = 0; i < n; i++)
    sp[i] = (struct ov_span){ pk->key, e[i].off, e[i].size };
  struct fetched f = { e, sp };
  int r = P->be->fetch (P->be_data, sp, n, verify_ents, &f, err);
  free (sp);
  if (r < 0 && (*err)->code == OV_ENOTFOUND)
    {
      forget_pack (pk);
      (*err)->errnum = ENOENT;
    }
  return r;
}

static int
read_ent (struct ov_packs *P, const struct ov_pack_writer *W, size_t pack, const struct pent *e,
          uint8_t *out)
{
  const struct pack *pk = pack == PENDING ? NULL : &P->p[pack];
  if (!ent_in_bounds (pk, e))
    {
      errno = EBADMSG; /* an index entry out of bounds: a damaged pack */
      return -1;
    }
  if (pack == PENDING && from_buffers (W, e, out))
    return 0;
  int fd = W ? W->fd : -1;
  if (pk)
    {
      ov_error_t err = NULL;
      fd = pack_spans (P, &P->p[pack], e, 1, &err) < 0 ? -1 : P->p[pack].file->fd;
      if (err)
        {
          errno = err->code == OV_ECORRUPT ? EBADMSG : err->errnum ? err->errnum : EIO;
          ov_error_free (&err);
        }
    }
  ssize_t r = fd < 0 ? -1 : pread_all (fd, out, e->size, e->off);
  if (r < 0)
    return -1;
  if ((uint64_t) r != e->size)
    {
      errno = EBADMSG;
      return -1;
    }
  return 0;
}

/* 1 if the entry holds exactly p[0..n), 0 if not, -1 on error. */
static int
ent_equals (struct ov_packs *P, const struct ov_pack_writer *W, size_t pack, const struct pent *e,
            const void *p, size_t n)
{
  if (e->size != n)
    return 0;
  if (n == 0)
    return 1;
  cleanup_free uint8_t *b = xmalloc (n);
  if (read_ent (P, W, pack, e, b) < 0)
    return -1;
  return memcmp (b, p, n) == 0;
}

static void
add_seen (struct ov_packs *P, const char *key)
{
  P->seen = xrealloc (P->seen, (P->nseen + 1) * sizeof *P->seen);
  P->seen[P->nseen++] = xstrdup (key);
}

static int
str_cmp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* A store busy with commits has hundreds of packs between two gc runs:
 * every rescan asks this for each of them. */
static bool
was_seen (struct ov_packs *P, const char *key)
{
  if (P->nsorted && bsearch (&key, P->seen, P->nsorted, sizeof *P->seen, str_cmp))
    return true;
  for (size_t i = P->nsorted; i < P->nseen; i++)
    if (strcmp (P->seen[i], key) == 0)
      return true;
  return false;
}

static size_t
new_pack (struct ov_packs *P, const char *key, int fd)
{
  struct ov_pack_file *f = fd >= 0 ? pack_file_new (fd, key) : NULL;
  if (P->np == P->capp)
    {
      P->capp = P->capp ? P->capp * 2 : 16;
      P->p = xrealloc (P->p, P->capp * sizeof *P->p);
    }
  P->p[P->np] = (struct pack){ .key = xstrdup (key), .file = f };
  return P->np++;
}

/* Reads and checks a pack's index (its checksum, not every entry: an
 * entry is checked when it is used), with ranged reads of its head, tail
 * and index only. */
static int
load_pack (struct ov_packs *P, struct ov_store *s, const char *key, uint64_t size,
           ov_error_t *err)
{
  uint8_t head[HEADER], tail[TAIL];
  ssize_t h = size < HEADER + TAIL ? 0 : s->be->read_range (s->be_data, key, 0, head, HEADER);
  if (h < 0)
    return errno == ENOENT ? 0 : ov_error (err, errno, "read %s", key);
  ssize_t t = h != HEADER ? 0 : s->be->read_range (s->be_data, key, size - TAIL, tail, TAIL);
  if (t < 0)
    return errno == ENOENT ? 0 : ov_error (err, errno, "read %s", key);
  if (h != HEADER || t != TAIL)
    return ov_corrupt (err, "%s: truncated pack", key);
  if (memcmp (head, PACK_MAGIC, 8) != 0)
    return ov_corrupt (err, "%s: not a pack (bad magic)", key);
  uint64_t ioff = le64 (tail), ilen = le64 (tail + 8);
  if (ioff < HEADER || ilen > size || ioff + ilen != size - TAIL)
    return ov_corrupt (err, "%s: truncated or corrupt pack (bad index location)", key);
  uint8_t *idx = xmalloc (ilen + 1);
  struct ov_reader r;
  ssize_t got = s->be->read_range (s->be_data, key, ioff, idx, ilen);
  if (got != (ssize_t) ilen)
    {
      int e = errno;
      free (idx);
      if (got < 0)
        return e == ENOENT ? 0 : ov_error (err, e, "read %s", key);
      return ov_corrupt (err, "%s: truncated pack index", key);
    }
  if (record_open (idx, ilen, INDEX_MAGIC, INDEX_VERSION, "pack index", key, &r, err) < 0)
    {
      free (idx);
      return -1;
    }
  uint64_t n = rd_u64 (&r);
  if (r.bad || n > r.left / ENTRY_BYTES || n * ENTRY_BYTES != r.left)
    {
      free (idx);
      return ov_corrupt (err, "%s: pack index has a wrong entry count", key);
    }
  /* the entries move to the front: one allocation per pack */
  memmove (idx, r.p, r.left);
  uint32_t *fan = make_fan (idx, n);
  if (fan == NULL)
    {
      free (idx);
      return ov_corrupt (err, "%s: pack index entries of unknown kind or out of order", key);
    }
  size_t k = new_pack (P, key, -1);
  P->p[k].data_end = ioff;
  P->p[k].idx = idx;
  P->p[k].fan = fan;
  P->p[k].n = n;
  return 0;
}

struct scan
{
  struct ov_packs *P;
  struct ov_store *s;
  ov_error_t *err;
};

static int
scan_cb (const char *key, uint64_t size, void *ctx)
{
  struct scan *sc = ctx;
  size_t len = strlen (key);
  if (len < 5 || strcmp (key + len - 5, ".pack") != 0 || was_seen (sc->P, key))
    return 0;
  add_seen (sc->P, key);
  ov_error_t e = NULL;
  if (load_pack (sc->P, sc->s, key, size, &e) < 0)
    {
      if (e->code != OV_ECORRUPT)
        {
          *sc->err = e;
          return -1;
        }
      /* a damaged pack is skipped (its objects read as missing) and fsck names it */
      sc->P->damaged = xrealloc (sc->P->damaged, (sc->P->ndamaged + 1) * sizeof (char *));
      sc->P->damaged[sc->P->ndamaged++] = xstrdup (e->msg);
      ov_error_free (&e);
    }
  return 0;
}

/* Loads the packs published since the last look. */
static int
rescan (struct ov_packs *P, struct ov_store *s, ov_error_t *err)
{
  struct scan sc = { P, s, err };
  P->be = s->be;
  P->be_data = s->be_data;
  int r = s->be->list (s->be_data, "packs/", scan_cb, &sc);
  P->loaded = true;
  if (P->nseen > P->nsorted)
    {
      qsort (P->seen, P->nseen, sizeof *P->seen, str_cmp);
      P->nsorted = P->nseen;
    }
  if (r < 0 && *err == NULL)
    return ov_error (err, errno, "list packs in %s", s->root);
  return r < 0 ? -1 : 0;
}

static int
ensure_loaded (struct ov_packs *P, struct ov_store *s, ov_error_t *err)
{
  return P->loaded ? 0 : rescan (P, s, err);
}

/* ---- writing ---- */

static int
write_buf (int fd, const struct wbuf *b)
{
  if (pwrite_all (fd, b->p, b->len, b->off) < 0)
    return -1;
  /* start writeback now, so the flush at publish overlaps with the work
   * that fills the rest of the pack instead of following it */
  sync_file_range (fd, b->off, b->len, SYNC_FILE_RANGE_WRITE);
  return 0;
}

/* Writes the current buffer out, with the lock held, after any others. */
static int
flush_current (struct ov_packs *P, struct ov_pack_writer *W)
{
  wait_idle (P, W);
  if (W->werr)
    {
      errno = W->werr;
      return -1;
    }
  struct wbuf *b = &W->buf[W->cur];
  if (b->len && write_buf (W->fd, b) < 0)
    return -1;
  b->off += b->len;
  b->len = 0;
  return 0;
}

static int
free_buffer (const struct ov_pack_writer *W)
{
  for (int i = 0; i < NBUF; i++)
    if (i != W->cur && !W->buf[i].busy)
      return i;
  return -1;
}

/* Appends an object to the pack being written. A buffer that filled up is
 * handed back in *out (busy): the caller writes it with finish_handoff.
 * 1, nothing appended: waiting for a buffer let another thread of this
 * session append the same key (the caller looks it up again). */
static int
append (struct ov_packs *P, struct ov_pack_writer *W, struct ov_store *s, uint8_t kind,
        const struct ov_oid *id, const void *p, size_t n, struct wbuf **out, ov_error_t *err)
{
  *out = NULL;
  if (W->fd < 0)
    {
      int fd = s->be->create_tmp (s->be_data, "packs");
      if (fd < 0)
        return ov_error (err, errno, "create a pack in %s", s->root);
      W->fd = fd;
      for (int i = 0; i < NBUF; i++)
        {
          if (W->buf[i].p == NULL)
            W->buf[i].p = xmalloc (WBUF);
          W->buf[i].len = 0;
        }
      W->cur = 0;
      struct wbuf *b = &W->buf[0];
      memset (b->p, 0, HEADER);
      memcpy (b->p, PACK_MAGIC, 8);
      b->p[8] = PACK_VERSION;
      b->off = 0;
      b->len = HEADER;
      W->wend = HEADER;
      W->werr = 0;
    }
  struct wbuf *b = &W->buf[W->cur];
  if (b->len && b->len + n > WBUF)
    {
      int fresh;
      bool waited = false;
      while ((fresh = free_buffer (W)) < 0)
        {
          pthread_cond_wait (&P->idle, &P->mu);
          waited = true;
        }
      uint8_t key[KEY_BYTES];
      make_key (key, kind, id);
      if (waited && pending_search (W, key) >= 0)
        return 1; /* else the pack would hold it twice, and its index be refused */
      b = &W->buf[W->cur]; /* others may have rotated while we waited */
      if (b->len && b->len + n > WBUF)
        {
          b->busy = true;
          *out = b;
          W->cur = fresh;
          b = &W->buf[fresh];
          b->len = 0;
          b->off = W->wend;
        }
    }
  if (n > WBUF)
    {
      /* rare (objects up to OV_PACK_MAX): written directly; b is empty here */
      if (pwrite_all (W->fd, p, n, W->wend) < 0)
        return ov_error (err, errno, "write a pack in %s", s->root);
      b->off = W->wend + n;
    }
  else
    {
      memcpy (b->p + b->len, p, n);
      b->len += n;
    }
  if (W->n == W->cap)
    {
      W->cap = W->cap ? W->cap * 2 : 256;
      W->e = xrealloc (W->e, W->cap * sizeof *W->e);
    }
  struct pent *e = &W->e[W->n];
  make_key (e->key, kind, id);
  e->off = W->wend;
  e->size = n;
  W->wend += n;
  pending_insert (W, W->n++);
  return 0;
}

/* Called with the lock held; drops it while writing. */
static void
finish_handoff (struct ov_packs *P, struct ov_pack_writer *W, struct wbuf *b)
{
  int fd = W->fd;
  pthread_mutex_unlock (&P->mu);
  int r = write_buf (fd, b);
  int e = errno;
  pthread_mutex_lock (&P->mu);
  if (r < 0 && W->werr == 0)
    W->werr = e;
  b->busy = false;
  b->len = 0;
  pthread_cond_broadcast (&P->idle);
}

int
ov_packs_put (struct ov_store *s, enum ov_kind kind, const void *p, size_t n, struct ov_oid *id,
              bool *deduped, ov_error_t *err)
{
  struct ov_packs *P = s->packs;
  struct wbuf *handoff = NULL;
  int ret = -1;
  pthread_mutex_lock (&P->mu);
  struct ov_pack_writer *W = writer_of (s);
  if (ensure_loaded (P, s, err) < 0)
    goto out;
  int retries = 0;
  for (int v = 0; v <= MAX_VARIANT; v++)
    {
      id->variant = v;
      uint8_t key[KEY_BYTES];
      make_key (key, kind, id);
      size_t pack;
      struct pent e;
      if (!find_key (P, W, key, &pack, &e))
        {
          *deduped = false;
          ret = append (P, W, s, kind, id, p, n, &handoff, err);
          if (ret == 1)
            {
              v--; /* stored meanwhile by another thread: the same bytes, or a collision */
              continue;
            }
          goto out;
        }
      int same = ent_equals (P, W, pack, &e, p, n);
      if (same < 0 && errno == ENOENT && retries++ < 3)
        {
          /* the pack was rolled up meanwhile (pack_fd forgot it): again */
          if (rescan (P, s, err) < 0)
            goto out;
          v--;
          continue;
        }
      if (same < 0)
        {
          ret = ov_error (err, errno, "read %s", pack == PENDING ? "the pack being written" : P->p[pack].key);
          goto out;
        }
      if (same)
        {
          *deduped = true;
          ret = 0;
          goto out;
        }
      /* same hash, other bytes: a collision; the next variant */
    }
  ret = ov_error (err, EEXIST, "too many hash collisions");
out:
  if (handoff)
    finish_handoff (P, W, handoff);
  pthread_mutex_unlock (&P->mu);
  return ret;
}

/* After a rescan: does a pack published meanwhile hold other bytes under
 * one of the ids we are about to publish? 1 yes, 0 no, -1 error. */
static int
conflicts (struct ov_packs *P, const struct ov_pack_writer *W, size_t since)
{
  for (size_t k = since; k < P->np; k++)
    for (size_t i = 0; i < W->n; i++)
      {
        ssize_t j = pack_search (&P->p[k], W->e[i].key);
        if (j < 0)
          continue;
        struct pent theirs;
        decode_ent (P->p[k].idx + j * ENTRY_BYTES, &theirs);
        if (theirs.size != W->e[i].size)
          return 1;
        cleanup_free uint8_t *b = xmalloc (theirs.size + 1);
        if (read_ent (P, W, PENDING, &W->e[i], b) < 0)
          return -1;
        int same = ent_equals (P, W, k, &theirs, b, theirs.size);
        if (same <= 0)
          return same < 0 ? -1 : 1;
      }
  return 0;
}

static int
ent_sort (const void *a, const void *b)
{
  return memcmp (((const struct pent *) a)->key, ((const struct pent *) b)->key, KEY_BYTES);
}

/* Writes index and tail, then links the pack under its key while holding
 * the packs lock, after checking that no pack published meanwhile gave
 * one of our ids to other bytes (then nothing is published: EAGAIN). The
 * pack is durable when this returns. */
static int
publish (struct ov_packs *P, struct ov_pack_writer *W, struct ov_store *s, ov_error_t *err)
{
  if (ov_fail_err ("pack-publish", err) < 0)
    return -1;
  if (s->fail && strcmp (s->fail, "pack-publish") == 0)
    return ov_error_set (err, OV_ENOSPACE, ENOSPC, "injected fault at pack-publish");
  if (flush_current (P, W) < 0)
    return ov_error (err, errno, "write a pack in %s", s->root);
  /* sorted in place: nothing looks up the pending table from here on (it
   * is dropped below, or with the writer if publishing fails) */
  qsort (W->e, W->n, sizeof *W->e, ent_sort);
  struct ov_buf idx = { 0 };
  record_begin (&idx, INDEX_MAGIC, INDEX_VERSION);
  buf_u64 (&idx, W->n);
  size_t first = idx.len;
  for (size_t i = 0; i < W->n; i++)
    {
      buf_put (&idx, W->e[i].key, KEY_BYTES);
      buf_u64 (&idx, W->e[i].off);
      buf_u64 (&idx, W->e[i].size);
    }
  /* the same bytes become the in-memory index once published */
  cleanup_free uint8_t *raw = xmalloc (W->n * ENTRY_BYTES + 1);
  memcpy (raw, idx.data + first, W->n * ENTRY_BYTES);
  /* checked before it is published: every other handle would refuse it */
  cleanup_free uint32_t *fan = make_fan (raw, W->n);
  if (fan == NULL)
    {
      buf_free (&idx);
      return ov_error_set (err, OV_EGENERIC, EIO,
                           "a new pack of %s has a bad index (a bug): nothing was published", s->root);
    }
  record_seal (&idx);
  uint64_t ioff = W->wend, ilen = idx.len;
  buf_u64 (&idx, ioff);
  buf_u64 (&idx, ilen);
  int r = pwrite_all (W->fd, idx.data, idx.len, ioff);
  buf_free (&idx);
  if (r < 0)
    return ov_error (err, errno, "write a pack in %s", s->root);
  /* flushed before the lock, so concurrent writers do not queue behind our flush */
  if (fdatasync (W->fd) < 0)
    return ov_error (err, errno, "sync a pack in %s", s->root);
  cleanup_close int lock = s->be->lock (s->be_data, "packs", true);
  if (lock < 0)
    return ov_error (err, errno, "lock packs in %s", s->root);
  size_t before = P->np;
  if (rescan (P, s, err) < 0)
    return -1;
  int c = conflicts (P, W, before);
  if (c < 0)
    return ov_error (err, errno, "read the packs of %s", s->root);
  if (c)
    return ov_error_set (err, OV_EGENERIC, EAGAIN,
                         "a concurrent writer stored other content under the same hash; "
                         "nothing was published, try again");
  /* A random name: one derived from the contents would let two different
   * packs meet under one name (the 8-bit test hashes showed it), and the
   * second would be lost. Two identical packs are harmless: gc drops one. */
  char key[64];
  for (int attempt = 0;; attempt++)
    {
      uint64_t rnd[2];
      if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd)
        return ov_error (err, errno ?: EIO, "name a pack in %s", s->root);
      snprintf (key, sizeof key, "packs/%016llx%016llx.pack", (unsigned long long) rnd[0],
                (unsigned long long) rnd[1]);
      if (s->be->publish (s->be_data, W->fd, key) == 0)
        break;
      if (errno != EEXIST || attempt == 3)
        return ov_error (err, errno, "publish %s", key);
    }
  /* from now on it is looked up like any published pack, by every handle */
  size_t k = new_pack (P, key, W->fd);
  struct pack *pk = &P->p[k];
  pk->n = W->n;
  pk->fan = fan;
  fan = NULL;
  pk->idx = raw;
  raw = NULL;
  pk->data_end = ioff;
  add_seen (P, key);
  W->fd = -1; /* the published pack has it now */
  writer_discard (P, W);
  ov_pause ("pack-published");
  return 0;
}

int
ov_packs_flush (struct ov_store *s, ov_error_t *err)
{
  struct ov_packs *P = s->packs;
  pthread_mutex_lock (&P->mu);
  struct ov_pack_writer *W = s->pw;
  int r = W == NULL || W->fd < 0 ? 0 : publish (P, W, s, err);
  if (r < 0)
    writer_discard (P, W); /* this handle's objects are gone, nobody else's */
  pthread_mutex_unlock (&P->mu);
  return r;
}

int
ov_packs_find (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id,
               struct ov_pack_loc *loc, ov_error_t *err)
{
  struct ov_packs *P = s->packs;
  int ret = -1;
  uint8_t key[KEY_BYTES];
  make_key (key, kind, id);
  size_t pack;
  struct pent e;
  pthread_mutex_lock (&P->mu);
  struct ov_pack_writer *W = s->pw;
  if (ensure_loaded (P, s, err) < 0)
    goto out;
  /* a pack that vanished since its index was read is forgotten by
   * pack_fd, and the object looked for again in the packs published since */
  for (int attempt = 0;; attempt++)
    {
      bool found = find_key (P, W, key, &pack, &e);
      if (!found)
        {
          if (rescan (P, s, err) < 0)
            goto out;
          found = find_key (P, W, key, &pack, &e);
        }
      ret = 0;
      if (!found)
        goto out;
      if (pack == PENDING)
        break;
      if (pack_spans (P, &P->p[pack], &e, 1, err) == 0)
        break;
      if ((*err)->errnum != ENOENT || attempt == 3)
        {
          ret = -1;
          goto out;
        }
      ov_error_free (err);
    }
  const struct pack *pk = pack == PENDING ? NULL : &P->p[pack];
  if (!ent_in_bounds (pk, &e))
    {
      ret = ov_corrupt (err, "%s: pack index entry out of bounds", pk->key);
      goto out;
    }
  /* the caller reads the file: bytes still in a buffer go out first */
  if (pk == NULL && flush_current (P, W) < 0)
    {
      ret = ov_error (err, errno, "write a pack in %s", s->root);
      goto out;
    }
  int fd = pk ? P->p[pack].file->fd : W->fd;
  struct ov_pack_file *hold = pk ? pack_file_get (P->p[pack].file) : NULL;
  *loc = (struct ov_pack_loc){ fd, e.off, e.size, hold, hold ? hold->key : "the pack being written" };
  ret = 1;
out:
  pthread_mutex_unlock (&P->mu);
  return ret;
}

int
ov_packs_prefetch (struct ov_store *s, const struct ov_obj_ref *refs, size_t n, ov_error_t *err)
{
  struct ov_packs *P = s->packs;
  if (s->be->fetch == NULL || n == 0)
    return 0;
  pthread_mutex_lock (&P->mu);
  int ret = ensure_loaded (P, s, err);
  /* by pack, so each pack's spans go in one call (and one batch) */
  size_t *of = xmalloc ((n + 1) * sizeof *of);
  struct pent *ents = xmalloc ((n + 1) * sizeof *ents);
  size_t m = 0;
  for (size_t i = 0; ret == 0 && i < n; i++)
    {
      uint8_t key[KEY_BYTES];
      make_key (key, refs[i].kind == OV_TREE_OBJ ? OV_TREE_OBJ : OV_BLOB, &refs[i].id);
      size_t pack;
      if (find_key (P, s->pw, key, &pack, &ents[m]) && pack != PENDING)
        of[m++] = pack;
    }
  /* spans of many packs in one fetch: one parallel batch for all */
  struct ov_span *sp = xmalloc ((m + 1) * sizeof *sp);
  size_t ns = 0;
  for (size_t i = 0; ret == 0 && i < m; i++)
    {
      struct pack *pk = &P->p[of[i]];
      if (pack_fd (P, pk) < 0)
        continue; /* gone: the read that needs it looks again */
      if (!pk->partial)
        continue;
      if (!ent_in_bounds (pk, &ents[i]))
        ret = ov_corrupt (err, "%s: pack index entry out of bounds", pk->key);
      ents[ns] = ents[i];
      sp[ns++] = (struct ov_span){ pk->key, ents[i].off, ents[i].size };
    }
  ov_pause ("prefetch");
  if (ret == 0 && ns)
    {
      struct fetched f = { ents, sp };
      ret = s->be->fetch (s->be_data, sp, ns, verify_ents, &f, err);
    }
  pthread_mutex_unlock (&P->mu);
  free (sp);
  free (ents);
  free (of);
  return ret;
}

struct idsize
{
  struct ov_oid id;
  uint64_t size;
};

int
ov_packs_each (struct ov_store *s, enum ov_kind kind,
               int (*cb) (const struct ov_oid *id, uint64_t size, void *ctx), void *ctx,
               ov_error_t *err)
{
  struct ov_packs *P = s->packs;
  pthread_mutex_lock (&P->mu);
  int r = rescan (P, s, err);
  size_t n = 0, cap = 0;
  struct idsize *v = NULL;
  struct ov_oidset seen = { 0 };
  for (size_t k = 0; r == 0 && k < P->np; k++)
    for (size_t i = 0; i < P->p[k].n; i++)
      {
        struct pent e;
        get_ent (P, k, i, &e);
        struct ov_oid id;
        oid_of (&e, &id);
        if (e.key[0] != kind || !oidset_add (&seen, &id))
          continue;
        if (n == cap)
          {
            cap = cap ? cap * 2 : 1024;
            v = xrealloc (v, cap * sizeof *v);
          }
        v[n++] = (struct idsize){ id, e.size };
      }
  oidset_free (&seen);
  pthread_mutex_unlock (&P->mu);
  /* without the lock: the callback may read objects */
  for (size_t i = 0; r == 0 && i < n; i++)
    r = cb (&v[i].id, v[i].size, ctx);
  free (v);
  return r;
}

int
ov_packs_damaged (struct ov_store *s, void (*cb) (const char *msg, void *ctx), void *ctx,
                  ov_error_t *err)
{
  struct ov_packs *P = s->packs;
  pthread_mutex_lock (&P->mu);
  int r = ensure_loaded (P, s, err);
  size_t n = P->ndamaged;
  char **msgs = xcalloc (n + 1, sizeof *msgs);
  for (size_t i = 0; i < n; i++)
    msgs[i] = xstrdup (P->damaged[i]);
  pthread_mutex_unlock (&P->mu);
  for (size_t i = 0; i < n; i++)
    {
      if (r == 0)
        cb (msgs[i], ctx);
      free (msgs[i]);
    }
  free (msgs);
  return r;
}

/* ---- gc ---- */

/* Copies entry i of pack k into the pack being written, checked against its id. */
static int
copy_ent (struct ov_packs *P, struct ov_pack_writer *W, struct ov_store *s, size_t k,
          const struct pent *e, uint8_t **b, size_t *bcap, ov_error_t *err)
{
  if (e->size + 1 > *bcap)
    {
      *bcap = e->size + 1;
      *b = xrealloc (*b, *bcap);
    }
  struct ov_oid id, got;
  oid_of (e, &id);
  char hex[OV_OID_STR];
  oid_hex (&id, hex);
  if (read_ent (P, W, k, e, *b) < 0)
    return ov_error (err, errno, "%s: read object %s; nothing was removed (run ovsnap fsck)",
                     P->p[k].key, hex);
  ov_hash (*b, e->size, &got);
  if (memcmp (got.b, id.b, 16) != 0)
    return ov_corrupt (err, "%s: object %s is corrupt; nothing was removed (run ovsnap fsck)",
                       P->p[k].key, hex);
  struct wbuf *handoff;
  int r = append (P, W, s, e->key[0], &id, *b, e->size, &handoff, err);
  if (handoff)
    finish_handoff (P, W, handoff);
  return r < 0 ? -1 : 0; /* 1: the key is in the new pack already */
}

/* Entry i of pack k, its id, and whether the keep sets reference it. */
static bool
ent_referenced (struct ov_packs *P, size_t k, size_t i, const struct ov_oidset *trees,
                const struct ov_oidset *blobs, struct pent *e, struct ov_oid *id)
{
  get_ent (P, k, i, e);
  oid_of (e, id);
  return oidset_has (e->key[0] == OV_TREE_OBJ ? trees : blobs, id);
}

static int
repack_locked (struct ov_packs *P, struct ov_pack_writer *W, struct ov_store *s,
               const struct ov_oidset *trees, const struct ov_oidset *blobs,
               struct ov_repack_result *res, ov_error_t *err)
{
  if (rescan (P, s, err) < 0)
    return -1;
  if (W->fd >= 0)
    return ov_error (err, EBUSY, "gc: a pack is being written");
  size_t np = P->np, nsmall = 0, todo = 0;
  /* keep[k][i]: referenced, and the first copy of its id (duplicates go) */
  uint8_t **keep = xcalloc (np + 1, sizeof *keep);
  uint64_t *dead = xcalloc (np + 1, sizeof *dead), *dead_bytes = xcalloc (np + 1, sizeof *dead_bytes);
  bool *rewrite = xcalloc (np + 1, sizeof *rewrite);
  struct ov_oidset seen_trees = { 0 }, seen_blobs = { 0 };
  int ret = 0;
  for (size_t k = 0; k < np; k++)
    {
      keep[k] = xcalloc (P->p[k].n + 1, 1);
      for (size_t i = 0; i < P->p[k].n; i++)
        {
          struct pent e;
          struct ov_oid id;
          keep[k][i] = ent_referenced (P, k, i, trees, blobs, &e, &id)
                       && oidset_add (e.key[0] == OV_TREE_OBJ ? &seen_trees : &seen_blobs, &id);
          dead[k] += !keep[k][i];
          dead_bytes[k] += keep[k][i] ? 0 : e.size;
        }
      if (dead[k] == 0 && P->p[k].data_end < SMALL_PACK)
        nsmall++;
    }
  for (size_t k = 0; k < np; k++)
    {
      /* a big pack is rewritten once a quarter of it is garbage, not for every bit */
      bool small = P->p[k].data_end < SMALL_PACK;
      rewrite[k] = (dead[k] > 0 && (small || 4 * dead_bytes[k] >= P->p[k].data_end))
                   || (nsmall > 1 && small);
      /* a pack another node may be about to name objects of stays whole
       * (a shared store's grace period): rewriting it would free nothing */
      if (rewrite[k] && s->be->young)
        {
          int y = s->be->young (s->be_data, P->p[k].key);
          if (y < 0 && errno != ENOENT)
            {
              ret = ov_error (err, errno, "gc: the age of %s", P->p[k].key);
              break;
            }
          rewrite[k] = y == 0;
        }
      todo += rewrite[k];
    }
  for (size_t k = 0; k < np; k++)
    for (size_t i = 0; i < P->p[k].n; i++)
      {
        struct pent e;
        struct ov_oid id;
        bool referenced = ent_referenced (P, k, i, trees, blobs, &e, &id);
        bool tree = e.key[0] == OV_TREE_OBJ;
        if (keep[k][i] || (!rewrite[k] && !referenced))
          res->blobs_kept += !tree;
        else if (rewrite[k])
          {
            if (!referenced)
              (*(tree ? &res->trees_removed : &res->blobs_removed))++;
            res->bytes_freed += e.size;
          }
      }
  if (ret < 0)
    todo = 0;
  /* what stays goes into one new pack, in the order it was written */
  uint8_t *b = NULL;
  size_t bcap = 0;
  for (size_t k = 0; todo && ret == 0 && k < np; k++)
    {
      if (!rewrite[k])
        continue;
      struct pent *ents = xmalloc ((P->p[k].n + 1) * sizeof *ents);
      size_t m = 0;
      for (size_t i = 0; i < P->p[k].n; i++)
        if (keep[k][i])
          get_ent (P, k, i, &ents[m++]);
      ret = pack_spans (P, &P->p[k], ents, m, err); /* a remote pack's, in one batch */
      for (size_t i = 0; ret == 0 && i < m; i++)
        ret = copy_ent (P, W, s, k, &ents[i], &b, &bcap, err);
      free (ents);
    }
  free (b);
  if (ret == 0 && W->fd >= 0)
    ret = publish (P, W, s, err); /* durable when it returns, under a new name */
  if (ret == 0 && todo)
    ov_fault ("gc-after-trees");
  for (size_t k = 0; ret == 0 && k < np; k++)
    if (rewrite[k])
      {
        if (s->be->remove (s->be_data, P->p[k].key) == 0 || errno == ENOENT)
          res->packs_removed++;
        else if (errno != EBUSY) /* EBUSY: kept while young, its live objects copied */
          ret = ov_error (err, errno, "remove %s", P->p[k].key);
      }
  for (size_t k = 0; k < np; k++)
    free (keep[k]);
  free (keep);
  free (dead);
  free (dead_bytes);
  free (rewrite);
  oidset_free (&seen_trees);
  oidset_free (&seen_blobs);
  return ret;
}

/* ---- consolidation ---- */

struct small
{
  size_t k;
  uint64_t size;
};

static int
small_cmp (const void *a, const void *b)
{
  uint64_t x = ((const struct small *) a)->size, y = ((const struct small *) b)->size;
  return x < y ? -1 : x > y;
}

static int
off_cmp (const void *a, const void *b)
{
  uint64_t x = ((const struct pent *) a)->off, y = ((const struct pent *) b)->off;
  return x < y ? -1 : x > y;
}

/* Which small packs to roll into one: sorted by size, the smallest up to
 * the last one that is not at least twice all smaller ones together.
 * What stays is then a geometric series, so a store keeps O(log) small
 * packs and each byte is rewritten O(log) times, however many commits
 * come. Returns how many of v (sorted here) to merge. */
static size_t
geometric_prefix (struct small *v, size_t n)
{
  qsort (v, n, sizeof *v, small_cmp);
  uint64_t below = 0;
  size_t cut = 0;
  for (size_t i = 0; i < n; i++)
    {
      if (v[i].size < 2 * below)
        cut = i + 1;
      below += v[i].size;
    }
  return cut >= 2 ? cut : 0;
}

static int
consolidate_locked (struct ov_packs *P, struct ov_pack_writer *W, struct ov_store *s,
                    size_t *merged, ov_error_t *err)
{
  if (rescan (P, s, err) < 0)
    return -1;
  if (W->fd >= 0)
    return ov_error (err, EBUSY, "consolidate: a pack is being written");
  size_t np = P->np, n = 0;
  struct small *v = xmalloc ((np + 1) * sizeof *v);
  for (size_t k = 0; k < np; k++)
    if (P->p[k].idx && P->p[k].data_end < SMALL_PACK)
      v[n++] = (struct small){ k, P->p[k].data_end };
  size_t cut = geometric_prefix (v, n);
  if (cut)
    ov_pause ("consolidate-chosen");
  int ret = 0;
  uint8_t *b = NULL;
  size_t bcap = 0;
  for (size_t j = 0; ret == 0 && j < cut; j++)
    {
      size_t k = v[j].k;
      struct pent *ents = xmalloc ((P->p[k].n + 1) * sizeof *ents);
      for (size_t i = 0; i < P->p[k].n; i++)
        get_ent (P, k, i, &ents[i]);
      /* in the order they were written: neighbours in a tree stay neighbours */
      qsort (ents, P->p[k].n, sizeof *ents, off_cmp);
      ret = pack_spans (P, &P->p[k], ents, P->p[k].n, err); /* a remote pack's, in one batch */
      if (ret < 0 && (*err)->code == OV_ENOTFOUND)
        {
          /* another node's roll-up merged it (the consolidate lock is
           * node-local on a shared store): that one does the work */
          ov_error_free (err);
          free (ents);
          free (b);
          free (v);
          writer_discard (P, W);
          return 0;
        }
      for (size_t i = 0; ret == 0 && i < P->p[k].n; i++)
        if (pending_search (W, ents[i].key) < 0) /* an object in two packs goes once */
          ret = copy_ent (P, W, s, k, &ents[i], &b, &bcap, err);
      free (ents);
    }
  free (b);
  if (ret == 0 && W->fd >= 0)
    ret = publish (P, W, s, err); /* durable before the old packs go */
  if (ret == 0)
    ov_fault ("consolidate-after-publish");
  /* every object of these is in the new pack: readers that still have
   * one open keep reading it, later ones find the new pack */
  for (size_t j = 0; ret == 0 && j < cut; j++)
    {
      /* no grace period: nothing of it is lost (a reader that finds it
       * gone looks again and finds the new pack) */
      int (*rm) (void *, const char *) = s->be->remove_moved ? s->be->remove_moved : s->be->remove;
      if (rm (s->be_data, P->p[v[j].k].key) == 0 || errno == ENOENT)
        (*merged)++;
      else
        ret = ov_error (err, errno, "remove %s", P->p[v[j].k].key);
    }
  free (v);
  return ret;
}

int
ov_packs_consolidate (struct ov_store *s, size_t *merged, ov_error_t *err)
{
  struct ov_packs *P = s->packs;
  *merged = 0;
  cleanup_close int lock = s->be->lock (s->be_data, "consolidate", true);
  if (lock < 0)
    return ov_error (err, errno, "lock consolidate in %s", s->root);
  pthread_mutex_lock (&P->mu);
  struct ov_pack_writer *W = writer_of (s);
  int r = consolidate_locked (P, W, s, merged, err);
  if (r < 0)
    writer_discard (P, W);
  packs_clear (P);
  pthread_mutex_unlock (&P->mu);
  return r;
}

struct count_small
{
  size_t n;
};

static int
count_small_cb (const char *key, uint64_t size, void *ctx)
{
  size_t len = strlen (key);
  if (len >= 5 && strcmp (key + len - 5, ".pack") == 0 && size < SMALL_PACK)
    ((struct count_small *) ctx)->n++;
  return 0;
}

size_t
ov_packs_small (struct ov_store *s)
{
  struct count_small c = { 0 };
  s->be->list (s->be_data, "packs/", count_small_cb, &c);
  return c.n;
}

int
ov_packs_repack (struct ov_store *s, const struct ov_oidset *trees, const struct ov_oidset *blobs,
                 struct ov_repack_result *res, ov_error_t *err)
{
  struct ov_packs *P = s->packs;
  memset (res, 0, sizeof *res);
  pthread_mutex_lock (&P->mu);
  struct ov_pack_writer *W = writer_of (s);
  int r = repack_locked (P, W, s, trees, blobs, res, err);
  if (r < 0)
    writer_discard (P, W);
  packs_clear (P); /* removed packs leave the lookup; the next one reloads */
  pthread_mutex_unlock (&P->mu);
  return r;
}

/* ---- consolidation in the background ---- */

static void
consolidate_run (void *ctx)
{
  struct ov_store *s = ctx;
  size_t merged;
  ov_error_t e = NULL;
  /* the inherited shared store lock keeps gc away until this is done */
  if (ov_packs_consolidate (s, &merged, &e) < 0)
    {
      fprintf (stderr, "ovsnap: consolidating packs: %s\n", e->msg);
      ov_error_free (&e);
    }
}

void
ov_packs_consolidate_later (struct ov_store *s)
{
  if (ov_packs_small (s) >= OV_PACKS_CROWDED)
    ov_run_detached (consolidate_run, s);
}
