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
  for (int i = 0; i < e->nxattrs; i++)
    {
      free (e->xattrs[i].name);
      free (e->xattrs[i].value);
    }
  free (e->xattrs);
  memset (e, 0, sizeof *e);
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

#define BAD(...)                                                                                   \
  do                                                                                               \
    {                                                                                              \
      ov_corrupt (err, __VA_ARGS__);                                                               \
      goto fail;                                                                                   \
    }                                                                                              \
  while (0)

int
entry_decode (struct ov_reader *r, struct ov_entry *e, bool named, const char *what, ov_error_t *err)
{
  memset (e, 0, sizeof *e);
  uint16_t nl = rd_u16 (r);
  const uint8_t *name = rd_bytes (r, nl);
  if (r->bad)
    BAD ("%s: truncated entry", what);
  if (named && !name_valid ((const char *) name, nl))
    BAD ("%s: invalid entry name (empty, '.', '..', or containing '/' or NUL)", what);
  if (!named && nl != 0)
    BAD ("%s: root entry has a name", what);
  e->name = xstrndup ((const char *) name, nl);
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
    BAD ("%s: entry '%s': symlink target too long", what, e->name);
  const uint8_t *target = rd_bytes (r, tl);
  if (r->bad)
    BAD ("%s: truncated entry '%s'", what, e->name);
  if (tl)
    {
      if (memchr (target, '\0', tl))
        BAD ("%s: entry '%s': NUL in symlink target", what, e->name);
      e->target = xstrndup ((const char *) target, tl);
    }
  uint16_t nx = rd_u16 (r);
  for (int i = 0; i < nx && !r->bad; i++)
    {
      uint16_t xl = rd_u16 (r);
      const uint8_t *xn = rd_bytes (r, xl);
      uint32_t vl = rd_u32 (r);
      if (r->bad || vl > OV_XATTR_VALUE_MAX)
        BAD ("%s: entry '%s': bad xattr", what, e->name);
      const uint8_t *xv = rd_bytes (r, vl);
      if (r->bad || xl == 0 || xl > 255 || memchr (xn, '\0', xl))
        BAD ("%s: entry '%s': bad xattr", what, e->name);
      char *xname = xstrndup ((const char *) xn, xl);
      if (e->nxattrs && strcmp (e->xattrs[e->nxattrs - 1].name, xname) >= 0)
        {
          free (xname);
          BAD ("%s: entry '%s': xattrs not sorted or duplicated", what, e->name);
        }
      entry_add_xattr (e, xname, xv, vl);
      free (xname);
    }
  if (r->bad)
    BAD ("%s: truncated entry '%s'", what, e->name);

  if (ov_type_from_mode (e->mode) != e->type || e->type == 0)
    BAD ("%s: entry '%s': type %u does not match mode %o", what, e->name, e->type, e->mode);
  if (e->mtime_nsec >= 1000000000u)
    BAD ("%s: entry '%s': bad mtime", what, e->name);
  bool has_oid = e->type == OV_REG || e->type == OV_DIR;
  if (!has_oid && !oid_is_zero (&e->oid))
    BAD ("%s: entry '%s': unexpected object id", what, e->name);
  if (e->type == OV_DIR && oid_is_zero (&e->oid))
    BAD ("%s: entry '%s': directory without tree", what, e->name);
  if (e->type != OV_DIR && e->inodes)
    BAD ("%s: entry '%s': inode count on a non-directory", what, e->name);
  if ((e->type == OV_LNK) != (e->target != NULL))
    BAD ("%s: entry '%s': symlink target mismatch", what, e->name);
  if (e->type == OV_LNK && e->size != tl)
    BAD ("%s: entry '%s': wrong symlink size", what, e->name);
  if (e->type != OV_CHR && e->type != OV_BLK && e->rdev)
    BAD ("%s: entry '%s': device number on a non-device", what, e->name);
  if (e->link_id && e->type == OV_DIR)
    BAD ("%s: entry '%s': hardlinked directory", what, e->name);
  return 0;
fail:
  entry_free (e);
  return -1;
}

void
tree_encode (const struct ov_tree *t, struct ov_buf *out)
{
  uint64_t inodes, bytes;
  tree_totals (t, &inodes, &bytes);
  buf_reserve (out, 64 + t->n * 96); /* an entry without xattrs is about 80 bytes + its name */
  record_begin (out, tree_magic, OV_TREE_VERSION);
  buf_u32 (out, t->n);
  buf_u64 (out, inodes);
  buf_u64 (out, bytes);
  for (size_t i = 0; i < t->n; i++)
    entry_encode (&t->e[i], out);
  record_seal (out);
}

int
tree_decode (const uint8_t *p, size_t n, struct ov_tree *t, const char *what, ov_error_t *err)
{
  memset (t, 0, sizeof *t);
  struct ov_reader r;
  if (record_open (p, n, tree_magic, OV_TREE_VERSION, "tree object", what, &r, err) < 0)
    return -1;
  uint32_t count = rd_u32 (&r);
  uint64_t inodes = rd_u64 (&r), bytes = rd_u64 (&r);
  if (r.bad)
    return ov_corrupt (err, "%s: truncated tree header", what);
  if (count > r.left / 60)
    return ov_corrupt (err, "%s: entry count %u exceeds record size", what, count);
  for (uint32_t i = 0; i < count; i++)
    {
      struct ov_entry *e = tree_add (t);
      if (entry_decode (&r, e, true, what, err) < 0)
        {
          t->n--;
          goto fail;
        }
      if (i > 0 && strcmp (t->e[i - 1].name, e->name) >= 0)
        {
          ov_corrupt (err, "%s: entries not sorted or duplicated at '%s'", what, e->name);
          goto fail;
        }
    }
  if (r.left != 0)
    {
      ov_corrupt (err, "%s: %zu trailing bytes", what, r.left);
      goto fail;
    }
  uint64_t ci, cb;
  tree_totals (t, &ci, &cb);
  if (ci != inodes || cb != bytes)
    {
      ov_corrupt (err, "%s: totals do not match entries", what);
      goto fail;
    }
  return 0;
fail:
  tree_free (t);
  return -1;
}
