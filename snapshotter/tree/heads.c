/* Volume heads as a fold of revisions (see heads.h).
 * A revision record:
 *   "OVSNHREV" u32 version=1 | u8 kind (1 commit, 2 checkpoint)
 *   u16 len, volume | i64 created_ns | u64 max_inodes
 *   u8 has_head, oid[16] u8 variant head | u8 has_base, oid[16] u8 variant base
 *   u16 len, through (checkpoint: the last revision it covers)
 *   u64 xxh3-64 of everything before
 * An empty revision is a tombstone. */
#include "heads.h"
#include "record.h"
#include "replay.h"

#include <stdint.h>
#include <stdio.h>

static const char rev_magic[8] = { 'O', 'V', 'S', 'N', 'H', 'R', 'E', 'V' };
#define REV_VERSION 1
#define CHECKPOINT_EVERY 8 /* settled revisions past a checkpoint before the next */
#define MEMO_MAX 1024      /* replays a node remembers per volume */
#define NONE SIZE_MAX

enum rev_kind
{
  REV_TOMBSTONE = 0,
  REV_COMMIT = 1,
  REV_CHECKPOINT = 2,
};

struct hrev
{
  const char *key; /* the listing's */
  enum rev_kind kind;
  struct ov_volume v; /* v.head valid if has_head */
  bool has_head, has_base;
  struct ov_oid base;
  char *through;
};

static char *
head_key (const char *name)
{
  return xasprintf ("volumes/%s", name);
}

static void
rev_encode (enum rev_kind kind, const struct ov_volume *v, bool has_head, const struct ov_oid *base,
            const char *through, struct ov_buf *out)
{
  static const struct ov_oid zero;
  record_begin (out, rev_magic, REV_VERSION);
  buf_u8 (out, kind);
  size_t nl = strlen (v->name);
  buf_u16 (out, nl);
  buf_put (out, v->name, nl);
  buf_u64 (out, (uint64_t) v->created_ns);
  buf_u64 (out, v->max_inodes);
  const struct ov_oid *h = has_head ? &v->head : &zero;
  buf_u8 (out, has_head);
  buf_put (out, h->b, 16);
  buf_u8 (out, h->variant);
  buf_u8 (out, base != NULL);
  buf_put (out, (base ? base : &zero)->b, 16);
  buf_u8 (out, (base ? base : &zero)->variant);
  size_t tl = through ? strlen (through) : 0;
  buf_u16 (out, tl);
  buf_put (out, through, tl);
  record_seal (out);
}

static void
hrev_free (struct hrev *h)
{
  volume_free (&h->v);
  free (h->through);
}

static int
rev_decode (const struct ov_buf *b, const char *name, const char *key, struct hrev *h,
            ov_error_t *err)
{
  memset (h, 0, sizeof *h);
  h->key = key;
  if (b->len == 0)
    return 0; /* a tombstone */
  struct ov_reader r;
  if (record_open (b->data, b->len, rev_magic, REV_VERSION, "head revision", key, &r, err) < 0)
    return -1;
  uint8_t kind = rd_u8 (&r);
  uint16_t nl = rd_u16 (&r);
  const uint8_t *vn = rd_bytes (&r, nl);
  h->v.created_ns = (int64_t) rd_u64 (&r);
  h->v.max_inodes = rd_u64 (&r);
  uint8_t has_head = rd_u8 (&r);
  const uint8_t *head = rd_bytes (&r, 16);
  h->v.head.variant = rd_u8 (&r);
  uint8_t has_base = rd_u8 (&r);
  const uint8_t *base = rd_bytes (&r, 16);
  h->base.variant = rd_u8 (&r);
  uint16_t tl = rd_u16 (&r);
  const uint8_t *through = rd_bytes (&r, tl);
  if (r.bad || r.left != 0 || has_head > 1 || has_base > 1 || nl != strlen (name)
      || memcmp (vn, name, nl) != 0 || memchr (through, '\0', tl)
      || (kind == REV_COMMIT && (!has_head || tl != 0))
      || (kind == REV_CHECKPOINT && (has_base || tl == 0)) || (kind != REV_COMMIT && kind != REV_CHECKPOINT))
    return ov_corrupt (err, "%s: malformed head revision of volume '%s'", key, name);
  h->kind = kind;
  h->v.name = xstrdup (name);
  memcpy (h->v.head.b, head, 16);
  memcpy (h->base.b, base, 16);
  h->has_head = has_head;
  h->has_base = has_base;
  if (tl)
    h->through = xstrndup ((const char *) through, tl);
  if (h->through && strcmp (h->through, key) >= 0)
    {
      hrev_free (h);
      return ov_corrupt (err, "%s: a checkpoint of later revisions", key);
    }
  return 0;
}

/* ---- the memo: replays this node did, "ONTO REV RESULT" per line ---- */

struct memo
{
  struct ov_buf text;
  struct ov_buf added;
};

static bool
memo_find_in (const struct ov_buf *b, const char *line_start, struct ov_oid *out)
{
  size_t ll = strlen (line_start);
  const char *p = (const char *) b->data, *end = p + b->len;
  while (p < end)
    {
      const char *nl = memchr (p, '\n', end - p);
      if (nl == NULL)
        return false;
      size_t len = nl - p;
      char hex[OV_OID_STR];
      if (len > ll && len - ll < sizeof hex && memcmp (p, line_start, ll) == 0)
        {
          memcpy (hex, p + ll, len - ll);
          hex[len - ll] = '\0';
          if (oid_parse (hex, out) == 0)
            return true;
        }
      p = nl + 1;
    }
  return false;
}

static bool
memo_find (const struct memo *m, const char *line_start, struct ov_oid *out)
{
  return memo_find_in (&m->added, line_start, out) || memo_find_in (&m->text, line_start, out);
}

static char *
memo_line_start (const struct ov_oid *onto, const char *key)
{
  char hex[OV_OID_STR];
  oid_hex (onto, hex);
  const char *tail = strrchr (key, '/');
  return xasprintf ("%s %s ", hex, tail ? tail + 1 : key);
}

/* Keeps the newest MEMO_MAX lines. */
static void
memo_save (struct ov_store *s, const char *name, struct memo *m)
{
  if (m->added.len == 0)
    return;
  struct ov_buf all = { 0 };
  buf_put (&all, m->text.data, m->text.len);
  buf_put (&all, m->added.data, m->added.len);
  size_t lines = 0, skip = 0;
  for (size_t i = 0; i < all.len; i++)
    lines += all.data[i] == '\n';
  for (size_t i = 0; lines > MEMO_MAX && i < all.len; i++)
    if (all.data[i] == '\n')
      {
        lines--;
        skip = i + 1;
      }
  struct ov_buf keep = { 0 };
  buf_put (&keep, all.data + skip, all.len - skip);
  ov_store_memo_put (s, name, &keep);
  buf_free (&keep);
  buf_free (&all);
}

/* ---- the fold ---- */

struct fold
{
  struct ov_revs revs;
  struct hrev *h; /* decoded, one per revs.keys */
  bool exists;
  struct ov_volume vol;
  size_t cp; /* the checkpoint it started from, or NONE */
  /* the fold up to the last settled revision past cp */
  size_t settled_steps;
  bool settled_exists;
  struct ov_volume settled_vol;
  const char *settled_key;
  size_t settled_cp; /* the settled checkpoint reaching furthest, or NONE */
};

static void
fold_free (struct fold *f)
{
  for (size_t i = 0; f->h && i < f->revs.n; i++)
    hrev_free (&f->h[i]);
  free (f->h);
  ov_revs_free (&f->revs);
  volume_free (&f->vol);
  volume_free (&f->settled_vol);
  memset (f, 0, sizeof *f);
}

static void
vol_set (struct ov_volume *dst, const struct ov_volume *src)
{
  free (dst->name);
  *dst = *src;
  dst->name = xstrdup (src->name);
}

/* Lists and decodes every revision; a revision dropped between the listing
 * and the read (a checkpoint covers it now) makes it list again. */
static int
fold_read (struct ov_store *s, const char *name, bool want_settled, struct fold *f, ov_error_t *err)
{
  cleanup_free char *key = head_key (name);
  for (int attempt = 0;; attempt++)
    {
      fold_free (f);
      if (ov_store_list_revs (s, key, want_settled, &f->revs, err) < 0)
        return -1;
      f->h = xcalloc (f->revs.n + 1, sizeof *f->h);
      size_t i;
      int r = 0;
      ov_error_t e = NULL;
      struct ov_buf b = { 0 };
      for (i = 0; r == 0 && i < f->revs.n; i++)
        {
          r = ov_store_read_rev (s, f->revs.keys[i], &b, &e);
          if (r == 0)
            r = rev_decode (&b, name, f->revs.keys[i], &f->h[i], &e);
        }
      buf_free (&b);
      if (r == 0)
        return 0;
      if (e->errnum != ENOENT || attempt == 3)
        {
          *err = e;
          return -1;
        }
      ov_error_free (&e);
    }
}

/* The snapshot h made, replayed onto the fold if h raced (base differs). */
static int
replay_onto (struct ov_store *s, const struct ov_oid *onto_id, const struct hrev *h,
             struct memo *m, struct ov_oid *out, ov_error_t *err)
{
  cleanup_free char *line = memo_line_start (onto_id, h->key);
  if (memo_find (m, line, out))
    return 0;
  struct ov_snapshot onto, base, snap;
  if (ov_snapshot_load (s, onto_id, &onto, err) < 0)
    return -1;
  int r = ov_snapshot_load (s, &h->base, &base, err);
  if (r == 0)
    {
      r = ov_snapshot_load (s, &h->v.head, &snap, err);
      if (r == 0)
        {
          r = ov_replay (s, &onto, &base, &snap, out, err);
          snapshot_free (&snap);
        }
      snapshot_free (&base);
    }
  snapshot_free (&onto);
  if (r < 0)
    return ov_error_prefix (err, "replay %s", h->key);
  char hex[OV_OID_STR];
  oid_hex (out, hex);
  buf_put (&m->added, line, strlen (line));
  buf_put (&m->added, hex, strlen (hex));
  buf_put (&m->added, "\n", 1);
  return 0;
}

static int
fold_step (struct ov_store *s, struct fold *f, const struct hrev *h, struct memo *m,
           ov_error_t *err)
{
  if (h->kind == REV_TOMBSTONE)
    {
      f->exists = false;
      return 0;
    }
  if (!h->has_base)
    {
      vol_set (&f->vol, &h->v);
      f->exists = true;
      return 0;
    }
  if (!f->exists)
    return 0; /* an edit of a volume deleted meanwhile */
  struct ov_oid next = h->v.head;
  if (!oid_eq (&h->base, &f->vol.head) && replay_onto (s, &f->vol.head, h, m, &next, err) < 0)
    return -1;
  f->vol.head = next;
  f->vol.created_ns = h->v.created_ns;
  f->vol.max_inodes = h->v.max_inodes;
  return 0;
}

/* The checkpoint reaching furthest among the first n revisions, or NONE. */
static size_t
furthest_checkpoint (const struct fold *f, size_t n)
{
  size_t best = NONE;
  for (size_t i = 0; i < n; i++)
    if (f->h[i].kind == REV_CHECKPOINT
        && (best == NONE || strcmp (f->h[i].through, f->h[best].through) >= 0))
      best = i;
  return best;
}

static int
fold (struct ov_store *s, const char *name, bool want_settled, struct fold *f, ov_error_t *err)
{
  memset (f, 0, sizeof *f);
  if (fold_read (s, name, want_settled, f, err) < 0)
    return -1;
  f->vol.name = xstrdup (name);
  f->settled_vol.name = xstrdup (name);
  f->cp = furthest_checkpoint (f, f->revs.n);
  f->settled_cp = furthest_checkpoint (f, f->revs.settled);
  const char *through = NULL;
  if (f->cp != NONE)
    {
      struct hrev *c = &f->h[f->cp];
      through = c->through;
      vol_set (&f->vol, &c->v);
      f->exists = c->has_head;
    }
  struct memo m = { 0 };
  ov_store_memo_get (s, name, &m.text);
  int r = 0;
  for (size_t i = 0; r == 0 && i < f->revs.n; i++)
    {
      const struct hrev *h = &f->h[i];
      if ((through && strcmp (h->key, through) <= 0) || h->kind == REV_CHECKPOINT)
        continue;
      r = fold_step (s, f, h, &m, err);
      if (r == 0 && i < f->revs.settled)
        {
          f->settled_steps++;
          f->settled_exists = f->exists;
          vol_set (&f->settled_vol, &f->vol);
          f->settled_key = h->key;
        }
    }
  memo_save (s, name, &m);
  buf_free (&m.text);
  buf_free (&m.added);
  return r;
}

int
ov_heads_load (struct ov_store *s, const char *name, struct ov_volume *out, ov_error_t *err)
{
  struct fold f;
  int r = fold (s, name, false, &f, err);
  if (r == 0 && !f.exists)
    r = ov_error_set (err, OV_ENOTFOUND, 0, "volume '%s' not found", name);
  if (r == 0)
    {
      *out = f.vol;
      memset (&f.vol, 0, sizeof f.vol);
    }
  fold_free (&f);
  return r;
}

static int
publish (struct ov_store *s, enum rev_kind kind, const struct ov_volume *v, bool has_head,
         const struct ov_oid *base, const char *through, ov_error_t *err)
{
  cleanup_free char *key = head_key (v->name);
  struct ov_buf b = { 0 };
  rev_encode (kind, v, has_head, base, through, &b);
  char rev[OV_REV_MAX];
  int r = ov_store_put_rev (s, key, &b, NULL, rev, err);
  buf_free (&b);
  return r;
}

int
ov_heads_publish (struct ov_store *s, const struct ov_volume *v, const struct ov_oid *base,
                  ov_error_t *err)
{
  return publish (s, REV_COMMIT, v, true, base, NULL, err);
}

/* Revisions the settled checkpoint covers, and checkpoints it supersedes. */
static void
drop_covered (struct ov_store *s, const struct fold *f)
{
  const char *through = f->h[f->settled_cp].through;
  for (size_t i = 0; i < f->revs.settled; i++)
    {
      const struct hrev *h = &f->h[i];
      bool covered = h->kind == REV_CHECKPOINT ? i != f->settled_cp && strcmp (h->through, through) <= 0
                                               : strcmp (h->key, through) <= 0;
      ov_error_t e = NULL;
      if (covered && ov_store_drop_rev (s, h->key, &e) < 0)
        {
          ov_error_free (&e);
          return;
        }
    }
}

int
ov_heads_tidy (struct ov_store *s, const char *name, ov_error_t *err)
{
  struct fold f;
  ov_error_t e = NULL;
  if (fold (s, name, true, &f, &e) < 0)
    {
      ov_error_free (&e); /* the edit is published: the next fold does it */
      fold_free (&f);
      return 0;
    }
  int r = 0;
  if (!f.exists)
    r = ov_error_set (err, OV_ENOTFOUND, 0, "volume '%s' was deleted meanwhile", name);
  else
    {
      if (f.settled_steps >= CHECKPOINT_EVERY
          && publish (s, REV_CHECKPOINT, &f.settled_vol, f.settled_exists, NULL, f.settled_key, &e) < 0)
        ov_error_free (&e);
      if (f.settled_cp != NONE)
        drop_covered (s, &f);
    }
  fold_free (&f);
  return r;
}

int
ov_heads_published (struct ov_store *s, const char *name, const struct ov_oid *id, bool *has,
                    ov_error_t *err)
{
  struct fold f = { 0 };
  *has = false;
  int r = fold_read (s, name, false, &f, err);
  for (size_t i = 0; r == 0 && !*has && i < f.revs.n; i++)
    *has = f.h[i].kind == REV_COMMIT && oid_eq (&f.h[i].v.head, id);
  fold_free (&f);
  return r;
}

int
ov_heads_each_snapshot (struct ov_store *s, const char *name,
                        int (*cb) (const struct ov_oid *id, void *ctx), void *ctx, ov_error_t *err)
{
  struct fold f = { 0 };
  int r = fold_read (s, name, false, &f, err);
  for (size_t i = 0; r == 0 && i < f.revs.n; i++)
    {
      const struct hrev *h = &f.h[i];
      if (h->has_head)
        r = cb (&h->v.head, ctx);
      if (r == 0 && h->has_base)
        r = cb (&h->base, ctx);
    }
  fold_free (&f);
  return r;
}
