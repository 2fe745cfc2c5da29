/* Tree objects and entries: in-memory form, encoding and strict decoding. */
#include "tree.h"
#include "record.h"

#include <stdio.h>

static const char tree_magic[8] = { 'O', 'V', 'S', 'N', 'T', 'R', 'E', 'E' };

const char *
ov_type_name (uint8_t type)
{
  switch (type)
    {
    case OV_REG:
      return "file";
    case OV_DIR:
      return "dir";
    case OV_LNK:
      return "symlink";
    case OV_FIFO:
      return "fifo";
    case OV_CHR:
      return "char";
    case OV_BLK:
      return "block";
    case OV_SOCK:
      return "socket";
    }
  return "unknown";
}

uint8_t
ov_type_from_mode (mode_t mode)
{
  switch (mode & S_IFMT)
    {
    case S_IFREG:
      return OV_REG;
    case S_IFDIR:
      return OV_DIR;
    case S_IFLNK:
      return OV_LNK;
    case S_IFIFO:
      return OV_FIFO;
    case S_IFCHR:
      return OV_CHR;
    case S_IFBLK:
      return OV_BLK;
    case S_IFSOCK:
      return OV_SOCK;
    }
  return 0;
}

void
entry_free (struct ov_entry *e)
{
  free (e->name);
  free (e->target);
  entry_clear_xattrs (e);
  memset (e, 0, sizeof *e);
}

void
entry_clear_xattrs (struct ov_entry *e)
{
  for (int i = 0; i < e->nxattrs; i++)
    {
      free (e->xattrs[i].name);
      free (e->xattrs[i].value);
    }
  free (e->xattrs);
  e->xattrs = NULL;
  e->nxattrs = 0;
}

void
entry_copy (struct ov_entry *dst, const struct ov_entry *src)
{
  *dst = *src;
  dst->name = src->name ? xstrdup (src->name) : NULL;
  dst->target = src->target ? xstrdup (src->target) : NULL;
  dst->xattrs = NULL;
  if (src->nxattrs)
    {
      dst->xattrs = xcalloc (src->nxattrs, sizeof *dst->xattrs);
      for (int i = 0; i < src->nxattrs; i++)
        {
          dst->xattrs[i].name = xstrdup (src->xattrs[i].name);
          dst->xattrs[i].len = src->xattrs[i].len;
          dst->xattrs[i].value = xmalloc (src->xattrs[i].len);
          memcpy (dst->xattrs[i].value, src->xattrs[i].value, src->xattrs[i].len);
        }
    }
}

bool
entry_same (const struct ov_entry *a, const struct ov_entry *b)
{
  if (a->type != b->type || a->mode != b->mode || a->uid != b->uid || a->gid != b->gid
      || a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec || a->size != b->size
      || a->inodes != b->inodes || a->rdev != b->rdev || !oid_eq (&a->oid, &b->oid)
      || a->link_id != b->link_id || a->nxattrs != b->nxattrs)
    return false;
  if ((a->target == NULL) != (b->target == NULL) || (a->target && strcmp (a->target, b->target)))
    return false;
  for (int i = 0; i < a->nxattrs; i++)
    if (strcmp (a->xattrs[i].name, b->xattrs[i].name) || a->xattrs[i].len != b->xattrs[i].len
        || memcmp (a->xattrs[i].value, b->xattrs[i].value, a->xattrs[i].len))
      return false;
  return true;
}

bool
entry_meta_same (const struct ov_entry *a, const struct ov_entry *b)
{
  struct ov_entry x = *a, y = *b;
  x.oid = y.oid;
  x.inodes = y.inodes;
  x.size = y.size;
  x.link_id = y.link_id;
  return entry_same (&x, &y);
}

uint64_t
entry_inodes (const struct ov_entry *e)
{
  return 1 + (e->type == OV_DIR ? e->inodes : 0);
}

uint64_t
entry_bytes (const struct ov_entry *e)
{
  return e->type == OV_REG || e->type == OV_DIR ? e->size : 0;
}

void
entry_add_xattr (struct ov_entry *e, const char *name, const void *val, uint32_t len)
{
  e->xattrs = xrealloc (e->xattrs, (e->nxattrs + 1) * sizeof *e->xattrs);
  struct ov_xattr *x = &e->xattrs[e->nxattrs++];
  x->name = xstrdup (name);
  x->len = len;
  x->value = xmalloc (len);
  if (len)
    memcpy (x->value, val, len);
}

static int
xattr_cmp (const void *a, const void *b)
{
  return strcmp (((const struct ov_xattr *) a)->name, ((const struct ov_xattr *) b)->name);
}

void
entry_sort_xattrs (struct ov_entry *e)
{
  if (e->nxattrs > 1)
    qsort (e->xattrs, e->nxattrs, sizeof *e->xattrs, xattr_cmp);
}

void
tree_free (struct ov_tree *t)
{
  for (size_t i = 0; i < t->n; i++)
    entry_free (&t->e[i]);
  free (t->e);
  memset (t, 0, sizeof *t);
}

struct ov_entry *
tree_add (struct ov_tree *t)
{
  if (t->n == t->cap)
    {
      t->cap = t->cap ? t->cap * 2 : 16;
      t->e = xrealloc (t->e, t->cap * sizeof *t->e);
    }
  struct ov_entry *e = &t->e[t->n++];
  memset (e, 0, sizeof *e);
  return e;
}

static int
entry_name_cmp (const void *a, const void *b)
{
  return strcmp (((const struct ov_entry *) a)->name, ((const struct ov_entry *) b)->name);
}

void
tree_sort (struct ov_tree *t)
{
  if (t->n > 1)
    qsort (t->e, t->n, sizeof *t->e, entry_name_cmp);
}

struct ov_entry *
tree_find (const struct ov_tree *t, const char *name)
{
  size_t lo = 0, hi = t->n;
  while (lo < hi)
    {
      size_t mid = (lo + hi) / 2;
      int c = strcmp (name, t->e[mid].name);
      if (c == 0)
        return &t->e[mid];
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  return NULL;
}

void
tree_totals (const struct ov_tree *t, uint64_t *inodes, uint64_t *bytes)
{
  *inodes = *bytes = 0;
  for (size_t i = 0; i < t->n; i++)
    {
      *inodes += entry_inodes (&t->e[i]);
      *bytes += entry_bytes (&t->e[i]);
    }
}

bool
name_valid (const char *name, size_t len)
{
  if (len == 0 || len > OV_NAME_MAX)
    return false;
  if (memchr (name, '/', len) || memchr (name, '\0', len))
    return false;
  if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
    return false;
  return true;
}

void
entry_encode (const struct ov_entry *e, struct ov_buf *out)
{
  size_t nl = e->name ? strlen (e->name) : 0;
  buf_u16 (out, nl);
  buf_put (out, e->name, nl);
  buf_u8 (out, e->type);
  buf_u32 (out, e->mode);
  buf_u32 (out, e->uid);
  buf_u32 (out, e->gid);
  buf_u64 (out, (uint64_t) e->mtime_sec);
  buf_u32 (out, e->mtime_nsec);
  buf_u64 (out, e->size);
  buf_u64 (out, e->inodes);
  buf_u64 (out, e->rdev);
  buf_put (out, e->oid.b, 16);
  buf_u8 (out, e->oid.variant);
  buf_u64 (out, e->link_id);
  size_t tl = e->target ? strlen (e->target) : 0;
  buf_u32 (out, tl);
  buf_put (out, e->target, tl);
  buf_u16 (out, e->nxattrs);
  for (int i = 0; i < e->nxattrs; i++)
    {
      size_t xl = strlen (e->xattrs[i].name);
      buf_u16 (out, xl);
      buf_put (out, e->xattrs[i].name, xl);
      buf_u32 (out, e->xattrs[i].len);
      buf_put (out, e->xattrs[i].value, e->xattrs[i].len);
    }
}

int
name_cmp (const void *a, size_t al, const void *b, size_t bl)
{
  int c = memcmp (a, b, al < bl ? al : bl);
  return c ? c : (al > bl) - (al < bl);
}

#define BAD(...) return ov_corrupt (err, __VA_ARGS__)

int
entry_scan (struct ov_reader *r, struct ov_entry_raw *x, bool named, const char *what,
            ov_error_t *err)
{
  memset (x, 0, sizeof *x);
  x->start = r->p;
  struct ov_entry *e = &x->e;
  uint16_t nl = rd_u16 (r);
  const uint8_t *name = rd_bytes (r, nl);
  if (r->bad)
    BAD ("%s: truncated entry", what);
  if (named && !name_valid ((const char *) name, nl))
    BAD ("%s: invalid entry name (empty, '.', '..', or containing '/' or NUL)", what);
  if (!named && nl != 0)
    BAD ("%s: root entry has a name", what);
  x->name = (const char *) name;
  x->name_len = nl;
  /* error messages name the entry: at most OV_NAME_MAX bytes, no NUL */
  char nm[OV_NAME_MAX + 1];
  memcpy (nm, name, nl);
  nm[nl] = '\0';
  e->type = rd_u8 (r);
  e->mode = rd_u32 (r);
  e->uid = rd_u32 (r);
  e->gid = rd_u32 (r);
  e->mtime_sec = (int64_t) rd_u64 (r);
  e->mtime_nsec = rd_u32 (r);
  e->size = rd_u64 (r);
  e->inodes = rd_u64 (r);
  e->rdev = rd_u64 (r);
  const uint8_t *oid = rd_bytes (r, 16);
  if (!r->bad)
    memcpy (e->oid.b, oid, 16);
  e->oid.variant = rd_u8 (r);
  e->link_id = rd_u64 (r);
  uint32_t tl = rd_u32 (r);
  if (tl > OV_TARGET_MAX)
    BAD ("%s: entry '%s': symlink target too long", what, nm);
  const uint8_t *target = rd_bytes (r, tl);
  if (r->bad)
    BAD ("%s: truncated entry '%s'", what, nm);
  if (tl && memchr (target, '\0', tl))
    BAD ("%s: entry '%s': NUL in symlink target", what, nm);
  x->target = tl ? (const char *) target : NULL;
  x->target_len = tl;
  uint16_t nx = rd_u16 (r);
  x->xattrs = r->p;
  x->nxattrs = nx;
  const uint8_t *prev = NULL;
  uint16_t prev_len = 0;
  for (int i = 0; i < nx && !r->bad; i++)
    {
      uint16_t xl = rd_u16 (r);
      const uint8_t *xn = rd_bytes (r, xl);
      uint32_t vl = rd_u32 (r);
      if (r->bad || vl > OV_XATTR_VALUE_MAX)
        BAD ("%s: entry '%s': bad xattr", what, nm);
      rd_bytes (r, vl);
      if (r->bad || xl == 0 || xl > 255 || memchr (xn, '\0', xl))
        BAD ("%s: entry '%s': bad xattr", what, nm);
      if (prev && name_cmp (prev, prev_len, xn, xl) >= 0)
        BAD ("%s: entry '%s': xattrs not sorted or duplicated", what, nm);
      prev = xn;
      prev_len = xl;
    }
  if (r->bad)
    BAD ("%s: truncated entry '%s'", what, nm);
  x->len = r->p - x->start;

  if (ov_type_from_mode (e->mode) != e->type || e->type == 0)
    BAD ("%s: entry '%s': type %u does not match mode %o", what, nm, e->type, e->mode);
  if (e->mtime_nsec >= 1000000000u)
    BAD ("%s: entry '%s': bad mtime", what, nm);
  bool has_oid = e->type == OV_REG || e->type == OV_DIR;
  if (!has_oid && !oid_is_zero (&e->oid))
    BAD ("%s: entry '%s': unexpected object id", what, nm);
  if (e->type == OV_DIR && oid_is_zero (&e->oid))
    BAD ("%s: entry '%s': directory without tree", what, nm);
  if (e->type != OV_DIR && e->inodes)
    BAD ("%s: entry '%s': inode count on a non-directory", what, nm);
  if ((e->type == OV_LNK) != (tl != 0))
    BAD ("%s: entry '%s': symlink target mismatch", what, nm);
  if (e->type == OV_LNK && e->size != tl)
    BAD ("%s: entry '%s': wrong symlink size", what, nm);
  if (e->type != OV_CHR && e->type != OV_BLK && e->rdev)
    BAD ("%s: entry '%s': device number on a non-device", what, nm);
  if (e->link_id && e->type == OV_DIR)
    BAD ("%s: entry '%s': hardlinked directory", what, nm);
  return 0;
}

#undef BAD

void
entry_from_raw (const struct ov_entry_raw *x, struct ov_entry *e)
{
  *e = x->e;
  e->name = xstrndup (x->name, x->name_len);
  e->target = x->target ? xstrndup (x->target, x->target_len) : NULL;
  e->xattrs = NULL;
  e->nxattrs = 0;
  struct ov_reader r = { x->xattrs, SIZE_MAX, 0 };
  if (x->nxattrs)
    e->xattrs = xcalloc (x->nxattrs, sizeof *e->xattrs);
  for (int i = 0; i < x->nxattrs; i++)
    {
      struct ov_xattr *a = &e->xattrs[e->nxattrs++];
      uint16_t xl = rd_u16 (&r);
      a->name = xstrndup ((const char *) rd_bytes (&r, xl), xl);
      a->len = rd_u32 (&r);
      a->value = xmalloc (a->len);
      memcpy (a->value, rd_bytes (&r, a->len), a->len);
    }
}

int
entry_decode (struct ov_reader *r, struct ov_entry *e, bool named, const char *what, ov_error_t *err)
{
  struct ov_entry_raw x;
  memset (e, 0, sizeof *e);
  if (entry_scan (r, &x, named, what, err) < 0)
    return -1;
  entry_from_raw (&x, e);
  return 0;
}

void
tree_begin (struct ov_buf *out, size_t n_hint)
{
  buf_reserve (out, 64 + n_hint * 96); /* an entry without xattrs is about 80 bytes + its name */
  record_begin (out, tree_magic, OV_TREE_VERSION);
  buf_u32 (out, 0);
  buf_u64 (out, 0);
  buf_u64 (out, 0);
}

void
tree_finish (struct ov_buf *out, uint32_t count, uint64_t inodes, uint64_t bytes)
{
  uint8_t *h = out->data + 12;
  for (int i = 0; i < 4; i++)
    h[i] = count >> (8 * i);
  for (int i = 0; i < 8; i++)
    {
      h[4 + i] = inodes >> (8 * i);
      h[12 + i] = bytes >> (8 * i);
    }
  record_seal (out);
}

void
tree_encode (const struct ov_tree *t, struct ov_buf *out)
{
  uint64_t inodes, bytes;
  tree_totals (t, &inodes, &bytes);
  tree_begin (out, t->n);
  for (size_t i = 0; i < t->n; i++)
    entry_encode (&t->e[i], out);
  tree_finish (out, t->n, inodes, bytes);
}

int
tree_scan_open (const uint8_t *p, size_t n, struct ov_tree_scan *ts, const char *what,
                ov_error_t *err)
{
  memset (ts, 0, sizeof *ts);
  ts->what = what;
  if (record_open (p, n, tree_magic, OV_TREE_VERSION, "tree object", what, &ts->r, err) < 0)
    return -1;
  ts->left = rd_u32 (&ts->r);
  ts->inodes = rd_u64 (&ts->r);
  ts->bytes = rd_u64 (&ts->r);
  if (ts->r.bad)
    return ov_corrupt (err, "%s: truncated tree header", what);
  if (ts->left > ts->r.left / 60)
    return ov_corrupt (err, "%s: entry count %u exceeds record size", what, ts->left);
  ts->count = ts->left;
  return 0;
}

int
tree_scan_next (struct ov_tree_scan *ts, struct ov_entry_raw *x, ov_error_t *err)
{
  if (ts->left == 0)
    {
      if (ts->r.left != 0)
        return ov_corrupt (err, "%s: %zu trailing bytes", ts->what, ts->r.left);
      if (ts->seen_inodes != ts->inodes || ts->seen_bytes != ts->bytes)
        return ov_corrupt (err, "%s: totals do not match entries", ts->what);
      return 0;
    }
  if (entry_scan (&ts->r, x, true, ts->what, err) < 0)
    return -1;
  if (ts->prev && name_cmp (ts->prev, ts->prev_len, x->name, x->name_len) >= 0)
    return ov_corrupt (err, "%s: entries not sorted or duplicated at '%.*s'", ts->what,
                       (int) x->name_len, x->name);
  ts->prev = x->name;
  ts->prev_len = x->name_len;
  ts->left--;
  ts->seen_inodes += entry_inodes (&x->e);
  ts->seen_bytes += entry_bytes (&x->e);
  return 1;
}

int
tree_decode (const uint8_t *p, size_t n, struct ov_tree *t, const char *what, ov_error_t *err)
{
  memset (t, 0, sizeof *t);
  struct ov_tree_scan ts;
  if (tree_scan_open (p, n, &ts, what, err) < 0)
    return -1;
  if (ts.count)
    {
      t->cap = ts.count;
      t->e = xmalloc (t->cap * sizeof *t->e);
    }
  struct ov_entry_raw x;
  int r;
  while ((r = tree_scan_next (&ts, &x, err)) > 0)
    entry_from_raw (&x, &t->e[t->n++]);
  if (r < 0)
    tree_free (t);
  return r;
}
