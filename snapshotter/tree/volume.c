#include "volume.h"
#include "record.h"
#include "changeset.h"
#include "fault.h"
#include "heads.h"
#include "path.h"

#include <signal.h>
#include <stdio.h>

static const char vol_magic[8] = { 'O', 'V', 'S', 'N', 'V', 'O', 'L', 'M' };
#define OV_VOLUME_VERSION 1

void
volume_free (struct ov_volume *v)
{
  free (v->name);
  memset (v, 0, sizeof *v);
}

static void
volume_encode (const struct ov_volume *v, struct ov_buf *out)
{
  record_begin (out, vol_magic, OV_VOLUME_VERSION);
  size_t nl = strlen (v->name);
  buf_u16 (out, nl);
  buf_put (out, v->name, nl);
  buf_u64 (out, (uint64_t) v->created_ns);
  buf_u64 (out, v->max_inodes);
  buf_put (out, v->head.b, 16);
  buf_u8 (out, v->head.variant);
  record_seal (out);
}

static int
volume_decode (const uint8_t *p, size_t n, struct ov_volume *v, const char *what, ov_error_t *err)
{
  memset (v, 0, sizeof *v);
  struct ov_reader r;
  if (record_open (p, n, vol_magic, OV_VOLUME_VERSION, "volume record", what, &r, err) < 0)
    return -1;
  uint16_t nl = rd_u16 (&r);
  const uint8_t *name = rd_bytes (&r, nl);
  v->created_ns = (int64_t) rd_u64 (&r);
  v->max_inodes = rd_u64 (&r);
  const uint8_t *head = rd_bytes (&r, 16);
  uint8_t variant = rd_u8 (&r);
  if (r.bad || r.left != 0 || nl == 0)
    return ov_corrupt (err, "%s: malformed volume record", what);
  v->name = xstrndup ((const char *) name, nl);
  if (!ov_volume_name_valid (v->name))
    {
      volume_free (v);
      return ov_corrupt (err, "%s: invalid volume name in record", what);
    }
  memcpy (v->head.b, head, 16);
  v->head.variant = variant;
  return 0;
}

static char *
volume_key (const char *name)
{
  return xasprintf ("volumes/%s", name);
}

static int
check_name (const char *name, ov_error_t *err)
{
  if (!ov_volume_name_valid (name))
    return ov_error_set (err, OV_EUSAGE, 0,
                         "invalid volume name '%s': use 1-64 of A-Z a-z 0-9 . _ -, not starting with . or -",
                         name);
  return 0;
}

int
ov_volume_load (struct ov_store *s, const char *name, struct ov_volume *out, ov_error_t *err)
{
  if (check_name (name, err) < 0)
    return -1;
  if (ov_store_has_revs (s))
    return ov_heads_load (s, name, out, err);
  cleanup_free char *key = volume_key (name);
  struct ov_buf b = { 0 };
  ov_error_t e = NULL;
  if (ov_store_get_named (s, key, &b, &e) < 0)
    {
      buf_free (&b);
      if (e->errnum == ENOENT)
        {
          ov_error_free (&e);
          return ov_error_set (err, OV_ENOTFOUND, 0, "volume '%s' not found", name);
        }
      *err = e;
      return -1;
    }
  int r = volume_decode (b.data, b.len, out, key, err);
  if (r == 0 && strcmp (out->name, name) != 0)
    {
      r = ov_corrupt (err, "%s: record names volume '%s'", key, out->name);
      volume_free (out);
    }
  buf_free (&b);
  return r;
}

/* base: the head v->head was computed from (NULL: a new volume). */
static int
volume_save (struct ov_store *s, const struct ov_volume *v, const struct ov_oid *base,
             ov_error_t *err)
{
  if (ov_store_has_revs (s))
    return ov_heads_publish (s, v, base, err);
  cleanup_free char *key = volume_key (v->name);
  struct ov_buf b = { 0 };
  volume_encode (v, &b);
  int r = ov_store_put_named (s, key, &b, err);
  buf_free (&b);
  return r;
}

static int
lock_volume (struct ov_store *s, const char *name, ov_error_t *err)
{
  cleanup_free char *lname = xasprintf ("volume.%s", name);
  return ov_store_lock_name (s, lname, err);
}

int
ov_volume_create (struct ov_store *s, const char *name, uint64_t max_inodes,
                  struct ov_volume *out, ov_error_t *err)
{
  if (check_name (name, err) < 0)
    return -1;
  cleanup_close int lock = lock_volume (s, name, err);
  if (lock < 0)
    return -1;
  struct ov_volume existing;
  ov_error_t e = NULL;
  if (ov_volume_load (s, name, &existing, &e) == 0)
    {
      volume_free (&existing);
      return ov_error_set (err, OV_EGENERIC, 0, "volume '%s' already exists", name);
    }
  if (e->code != OV_ENOTFOUND)
    {
      *err = e;
      return -1;
    }
  ov_error_free (&e);

  /* Every volume starts with an empty snapshot, so a head always exists. */
  struct ov_snapshot snap = { 0 };
  struct ov_tree empty = { 0 };
  snap.volume = xstrdup (name);
  snap.time_ns = now_ns ();
  snap.next_link_id = 1;
  snap.message = xstrdup ("volume created");
  default_dir_meta (&snap.root);
  int r = tree_store (s, &empty, &snap.root, err);
  if (r == 0)
    r = ov_store_sync (s, err);
  if (r == 0)
    r = ov_snapshot_store (s, &snap, err);
  if (r == 0)
    r = ov_store_sync (s, err);
  if (r == 0)
    {
      out->name = xstrdup (name);
      out->created_ns = snap.time_ns;
      out->max_inodes = max_inodes;
      out->head = snap.id;
      r = volume_save (s, out, NULL, err);
      if (r < 0)
        volume_free (out);
    }
  snapshot_free (&snap);
  return r;
}

int
ov_volume_delete (struct ov_store *s, const char *name, ov_error_t *err)
{
  struct ov_volume v;
  if (ov_volume_load (s, name, &v, err) < 0)
    return -1;
  volume_free (&v);
  cleanup_close int lock = lock_volume (s, name, err);
  if (lock < 0)
    return -1;
  cleanup_free char *key = volume_key (name);
  return ov_store_remove_named (s, key, err);
}

struct list_ctx
{
  char **names;
  size_t n;
};

static int
list_cb (const char *key, uint64_t size UNUSED, void *ctx)
{
  struct list_ctx *l = ctx;
  const char *name = strrchr (key, '/');
  name = name ? name + 1 : key;
  if (!ov_volume_name_valid (name))
    return 0;
  l->names = xrealloc (l->names, (l->n + 1) * sizeof *l->names);
  l->names[l->n++] = xstrdup (name);
  return 0;
}

static int
strp_cmp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
ov_volume_list (struct ov_store *s, int (*cb) (const struct ov_volume *v, void *ctx), void *ctx,
                ov_error_t *err)
{
  struct list_ctx l = { 0 };
  int r = ov_store_list_named (s, "volumes/", list_cb, &l, err);
  if (r == 0 && l.n)
    qsort (l.names, l.n, sizeof *l.names, strp_cmp);
  for (size_t i = 0; r == 0 && i < l.n; i++)
    {
      struct ov_volume v;
      ov_error_t e = NULL;
      r = ov_volume_load (s, l.names[i], &v, &e);
      if (r == 0)
        {
          r = cb (&v, ctx);
          volume_free (&v);
        }
      else if (e->code == OV_ENOTFOUND)
        {
          ov_error_free (&e); /* deleted meanwhile */
          r = 0;
        }
      else
        *err = e;
    }
  for (size_t i = 0; i < l.n; i++)
    free (l.names[i]);
  free (l.names);
  return r < 0 ? -1 : 0;
}

int
ov_volume_update (struct ov_store *s, const char *name, const char *message, ov_edit_fn fn,
                  void *ctx, struct ov_snapshot *result, ov_error_t *err)
{
  return ov_volume_update_ex (s, name, message, fn, NULL, ctx, result, err);
}

int
ov_volume_update_ex (struct ov_store *s, const char *name, const char *message, ov_edit_fn fn,
                     ov_before_head_fn before_head, void *ctx, struct ov_snapshot *result,
                     ov_error_t *err)
{
  cleanup_close int lock = lock_volume (s, name, err);
  if (lock < 0)
    return -1;
  struct ov_volume v;
  if (ov_volume_load (s, name, &v, err) < 0)
    return -1;
  struct ov_snapshot head, snap = { 0 };
  int r = ov_snapshot_load (s, &v.head, &head, err);
  if (r < 0)
    {
      ov_error_prefix (err, "volume '%s': head snapshot", name);
      volume_free (&v);
      return -1;
    }
  uint64_t next_link_id = head.next_link_id;
  r = fn (s, &head, &snap.root, &next_link_id, ctx, err);
  if (r == 1)
    {
      *result = head;
      volume_free (&v);
      return 0;
    }
  if (r == 0 && snap.root.inodes > v.max_inodes)
    r = ov_error_set (err, OV_ENOSPACE, ENOSPC,
                      "volume '%s': inode limit %llu exceeded (the result would hold %llu files and directories); nothing was changed",
                      name, (unsigned long long) v.max_inodes, (unsigned long long) snap.root.inodes);
  if (r == 0)
    {
      snap.volume = xstrdup (name);
      snap.has_parent = true;
      snap.parent = head.id;
      snap.time_ns = now_ns ();
      if (snap.time_ns <= head.time_ns)
        snap.time_ns = head.time_ns + 1;
      snap.next_link_id = next_link_id;
      snap.message = xstrndup (message ? message : "", OV_MESSAGE_MAX);
      ov_fault ("update-before-sync");
      r = ov_store_sync (s, err);
      ov_trace ("update: objects durable");
    }
  if (r == 0)
    r = ov_snapshot_store (s, &snap, err);
  if (r == 0)
    {
      ov_fault ("update-before-head");
      r = ov_store_sync (s, err);
    }
  if (r == 0 && before_head)
    r = before_head (&snap, ctx, err);
  if (r == 0 && before_head)
    ov_fault ("update-before-head-moves");
  if (r == 0)
    {
      v.head = snap.id;
      r = volume_save (s, &v, &head.id, err);
      ov_fault ("update-after-head");
    }
  /* On a store of revisions the edit is published now, whatever this
   * writer does next: the fold of every reader replays it if it raced
   * (tree/heads.h). Tidying only bounds what readers list. */
  if (r == 0 && ov_store_has_revs (s))
    r = ov_heads_tidy (s, name, err);
  snapshot_free (&head);
  volume_free (&v);
  if (r < 0)
    {
      snapshot_free (&snap);
      return -1;
    }
  *result = snap;
  return 0;
}

struct has_ctx
{
  const struct ov_oid *id;
  int64_t time_ns; /* older snapshots than this cannot be it */
  bool found;
};

static int
has_cb (const struct ov_snapshot *snap, void *ctx)
{
  struct has_ctx *h = ctx;
  h->found = oid_eq (&snap->id, h->id);
  return h->found || snap->time_ns < h->time_ns;
}

int
ov_volume_has (struct ov_store *s, const char *name, const struct ov_oid *id, bool *has,
               ov_error_t *err)
{
  *has = false;
  struct ov_snapshot snap;
  ov_error_t e = NULL;
  if (ov_snapshot_load (s, id, &snap, &e) < 0)
    {
      int missing = e->code == OV_ENOTFOUND;
      if (missing)
        ov_error_free (&e);
      else
        *err = e;
      return missing ? 0 : -1; /* never stored: never the head */
    }
  struct ov_volume v;
  int r = ov_volume_load (s, name, &v, err);
  struct has_ctx h = { id, snap.time_ns, false };
  snapshot_free (&snap);
  if (r == 0)
    r = ov_volume_history (s, &v, has_cb, &h, err);
  if (r == 0)
    volume_free (&v);
  *has = h.found;
  /* a raced edit is in the head as its replay, under another id */
  if (r == 0 && !*has && ov_store_has_revs (s))
    r = ov_heads_published (s, name, id, has, err);
  return r;
}

int
ov_volume_history (struct ov_store *s, const struct ov_volume *v,
                   int (*cb) (const struct ov_snapshot *snap, void *ctx), void *ctx,
                   ov_error_t *err)
{
  struct ov_oid id = v->head;
  for (;;)
    {
      struct ov_snapshot snap;
      if (ov_snapshot_load (s, &id, &snap, err) < 0)
        return ov_error_prefix (err, "volume '%s' history", v->name);
      int r = cb (&snap, ctx);
      bool more = snap.has_parent;
      id = snap.parent;
      snapshot_free (&snap);
      if (r)
        return r < 0 ? -1 : 0;
      if (!more)
        return 0;
    }
}

struct resolve_ctx
{
  const char *prefix;
  size_t plen;
  long steps; /* head~N: remaining */
  int matches;
  struct ov_oid found;
};

static int
resolve_cb (const struct ov_snapshot *snap, void *ctx)
{
  struct resolve_ctx *r = ctx;
  if (r->prefix == NULL)
    {
      if (r->steps-- == 0)
        {
          r->found = snap->id;
          r->matches = 1;
          return 1;
        }
      return 0;
    }
  char hex[OV_OID_STR];
  oid_hex (&snap->id, hex);
  if (strncmp (hex, r->prefix, r->plen) == 0)
    {
      r->matches++;
      r->found = snap->id;
    }
  return 0;
}

int
ov_volume_resolve (struct ov_store *s, const struct ov_volume *v, const char *spec,
                   struct ov_oid *out, ov_error_t *err)
{
  struct resolve_ctx r = { 0 };
  if (strcmp (spec, "head") == 0)
    {
      *out = v->head;
      return 0;
    }
  if (strncmp (spec, "head~", 5) == 0)
    {
      char *end;
      r.steps = strtol (spec + 5, &end, 10);
      if (*end || end == spec + 5 || r.steps < 0)
        return ov_error_set (err, OV_EUSAGE, 0, "invalid snapshot '%s'", spec);
    }
  else
    {
      size_t len = strlen (spec);
      if (len < 4 || len > 32 || strspn (spec, "0123456789abcdef") != len)
        return ov_error_set (err, OV_EUSAGE, 0,
                             "invalid snapshot '%s': use head, head~N or 4-32 hex digits", spec);
      r.prefix = spec;
      r.plen = len;
    }
  if (ov_volume_history (s, v, resolve_cb, &r, err) < 0)
    return -1;
  if (r.matches == 0)
    return ov_error_set (err, OV_ENOTFOUND, 0, "snapshot '%s' not found in volume '%s'", spec,
                         v->name);
  if (r.matches > 1)
    return ov_error_set (err, OV_EUSAGE, 0, "snapshot prefix '%s' is ambiguous in volume '%s'",
                         spec, v->name);
  *out = r.found;
  return 0;
}
