#include "snapshot.h"
#include "record.h"

#include <stdio.h>

static const char snap_magic[8] = { 'O', 'V', 'S', 'N', 'S', 'N', 'A', 'P' };

void
snapshot_free (struct ov_snapshot *s)
{
  free (s->volume);
  free (s->message);
  entry_free (&s->root);
  memset (s, 0, sizeof *s);
}

uint64_t
snapshot_inodes (const struct ov_snapshot *s)
{
  return s->root.inodes;
}

void
snapshot_encode (const struct ov_snapshot *s, struct ov_buf *out)
{
  record_begin (out, snap_magic, OV_SNAPSHOT_VERSION);
  size_t vl = strlen (s->volume);
  buf_u16 (out, vl);
  buf_put (out, s->volume, vl);
  buf_u8 (out, s->has_parent);
  buf_put (out, s->parent.b, 16);
  buf_u8 (out, s->parent.variant);
  buf_u64 (out, (uint64_t) s->time_ns);
  buf_u64 (out, s->next_link_id);
  size_t ml = s->message ? strlen (s->message) : 0;
  buf_u32 (out, ml);
  buf_put (out, s->message, ml);
  entry_encode (&s->root, out);
  record_seal (out);
}

int
snapshot_decode (const uint8_t *p, size_t n, struct ov_snapshot *s, const char *what,
                 ov_error_t *err)
{
  memset (s, 0, sizeof *s);
  struct ov_reader r;
  if (record_open (p, n, snap_magic, OV_SNAPSHOT_VERSION, "snapshot record", what, &r, err) < 0)
    return -1;
  uint16_t vl = rd_u16 (&r);
  const uint8_t *vol = rd_bytes (&r, vl);
  uint8_t has_parent = rd_u8 (&r);
  s->has_parent = has_parent == 1;
  const uint8_t *parent = rd_bytes (&r, 16);
  uint8_t parent_variant = rd_u8 (&r);
  s->time_ns = (int64_t) rd_u64 (&r);
  s->next_link_id = rd_u64 (&r);
  uint32_t ml = rd_u32 (&r);
  const uint8_t *msg = ml <= OV_MESSAGE_MAX ? rd_bytes (&r, ml) : NULL;
  if (r.bad || msg == NULL || vl == 0 || has_parent > 1 || memchr (vol, '\0', vl)
      || memchr (msg, '\0', ml))
    return ov_corrupt (err, "%s: malformed snapshot header", what);
  s->volume = xstrndup ((const char *) vol, vl);
  s->message = xstrndup ((const char *) msg, ml);
  memcpy (s->parent.b, parent, 16);
  s->parent.variant = parent_variant;
  if (entry_decode (&r, &s->root, false, what, err) < 0)
    goto fail;
  if (s->root.type != OV_DIR)
    {
      ov_corrupt (err, "%s: root is not a directory", what);
      goto fail;
    }
  if (r.left != 0)
    {
      ov_corrupt (err, "%s: trailing bytes", what);
      goto fail;
    }
  return 0;
fail:
  snapshot_free (s);
  return -1;
}

int
ov_snapshot_load (struct ov_store *st, const struct ov_oid *id, struct ov_snapshot *out,
                  ov_error_t *err)
{
  struct ov_buf b = { 0 };
  char key[PATH_MAX];
  ov_key (OV_SNAPSHOT_REC, id, key, sizeof key);
  int r = ov_store_get_record (st, OV_SNAPSHOT_REC, id, &b, err);
  if (r == 0)
    r = snapshot_decode (b.data, b.len, out, key, err);
  buf_free (&b);
  if (r == 0)
    out->id = *id;
  return r;
}

int
ov_snapshot_store (struct ov_store *st, struct ov_snapshot *s, ov_error_t *err)
{
  struct ov_buf b = { 0 };
  snapshot_encode (s, &b);
  int r = ov_store_put_record (st, OV_SNAPSHOT_REC, &b, &s->id, err);
  buf_free (&b);
  return r;
}
