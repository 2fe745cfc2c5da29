/* The in-memory tree of an EROFS image: entries checked against the
 * format's limits as they are added, xattrs encoded once, here. The layout
 * and the image itself are erofs-write.c's. */
#include "erofs-int.h"

#include <stdio.h>

#define ARENA_CHUNK (256u << 10)

/* Names are many and small: they live in a bump arena freed at once. */
static void *
arena_alloc (struct ov_erofs *w, size_t n)
{
  struct ov_erofs_arena *a = w->arena;
  if (!a || a->cap - a->used < n)
    {
      size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
      a = xmalloc (sizeof *a + cap);
      a->used = 0;
      a->cap = cap;
      a->next = w->arena;
      w->arena = a;
    }
  void *p = a->data + a->used;
  a->used += n;
  return p;
}

static const char *
arena_dup (struct ov_erofs *w, const char *s, size_t n)
{
  char *p = arena_alloc (w, n);
  memcpy (p, s, n);
  return p;
}

static struct ov_erofs_node *
node_new (struct ov_erofs *w)
{
  if (w->nnodes == w->capnodes)
    {
      w->capnodes = w->capnodes ? 2 * w->capnodes : 1024;
      w->nodes = xrealloc (w->nodes, w->capnodes * sizeof *w->nodes);
    }
  struct ov_erofs_node *n = xcalloc (1, sizeof *n);
  n->fd = -1;
  w->nodes[w->nnodes++] = n;
  return n;
}

struct ov_erofs *
ov_erofs_new (void)
{
  struct ov_erofs *w = xcalloc (1, sizeof *w);
  struct ov_erofs_node *r = node_new (w);
  r->mode = S_IFDIR | 0755;
  r->parent = r;
  r->name = "";
  w->root = r;
  return w;
}

void
ov_erofs_free (struct ov_erofs *w)
{
  if (!w)
    return;
  for (size_t i = 0; i < w->nnodes; i++)
    {
      struct ov_erofs_node *n = w->nodes[i];
      free (n->mem);
      free (n->xattr);
      free (n->ents);
      free (n->blk_first);
      free (n);
    }
  free (w->nodes);
  while (w->arena)
    {
      struct ov_erofs_arena *next = w->arena->next;
      free (w->arena);
      w->arena = next;
    }
  free (w);
}

void
ov_erofs_set_verify (struct ov_erofs *w, ov_erofs_verify_fn fn, void *ctx)
{
  w->verify = fn;
  w->verify_ctx = ctx;
}

struct ov_erofs_node *
ov_erofs_root (struct ov_erofs *w)
{
  return w->root;
}

uint64_t
ov_erofs_image_size (const struct ov_erofs *w)
{
  return w->image_size;
}

uint64_t
ov_erofs_inode_count (const struct ov_erofs *w)
{
  return w->nnodes;
}

const char *
ov_erofs_path (const struct ov_erofs_node *n, char *buf, size_t size)
{
  size_t at = size - 1;
  buf[at] = 0;
  if (n->parent == n)
    {
      buf[--at] = '/';
      return buf + at;
    }
  for (; n->parent != n; n = n->parent)
    {
      if (at < (size_t) n->namelen + 1 + 3)
        {
          memcpy (buf + at - 3, "...", 3);
          return buf + at - 3;
        }
      at -= n->namelen;
      memcpy (buf + at, n->name, n->namelen);
      buf[--at] = '/';
    }
  return buf + at;
}

/* The short name prefixes of erofs_fs.h; a name under another namespace
 * would need the long-prefix table, which this writer does not emit. */
static const struct
{
  const char *prefix;
  uint8_t index;
  bool exact; /* the whole name, nothing after it */
} xattr_prefixes[] = {
  { "user.", 1, false },
  { "system.posix_acl_access", 2, true },
  { "system.posix_acl_default", 3, true },
  { "trusted.", 4, false },
  { "security.", 6, false },
};

static int
xattr_split (const char *name, uint8_t *index, const char **suffix)
{
  for (size_t i = 0; i < ARRAY_SIZE (xattr_prefixes); i++)
    {
      size_t pl = strlen (xattr_prefixes[i].prefix);
      if (strncmp (name, xattr_prefixes[i].prefix, pl) != 0)
        continue;
      if (xattr_prefixes[i].exact ? name[pl] != 0 : name[pl] == 0)
        continue;
      *index = xattr_prefixes[i].index;
      *suffix = name + pl;
      return 0;
    }
  return -1;
}

/* The inline xattr area: a 12-byte header (no shared xattrs, name filter
 * 0 = "may be present"), then the entries, each padded to 4 bytes. */
static int
xattrs_encode (struct ov_erofs_node *n, const struct ov_erofs_xattr *xa, size_t count, const char *path,
               ov_error_t *err)
{
  if (!count)
    return 0;
  uint64_t size = EROFS_XATTR_HDR_SIZE;
  for (size_t i = 0; i < count; i++)
    {
      uint8_t index;
      const char *suffix;
      if (!xa[i].name || xattr_split (xa[i].name, &index, &suffix) < 0)
        return ov_error_set (err, OV_EUSAGE, 0,
                             "erofs image: %s: xattr %s: namespace not supported (user., trusted., "
                             "security., system.posix_acl_*)",
                             path, xa[i].name ? xa[i].name : "(null)");
      size_t sl = strlen (suffix);
      if (sl > OV_EROFS_NAME_MAX || strlen (xa[i].name) > OV_EROFS_NAME_MAX)
        return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: xattr %.40s...: name longer than %u bytes",
                             path, xa[i].name, OV_EROFS_NAME_MAX);
      if (xa[i].len > OV_EROFS_XATTR_VALUE_MAX)
        return ov_error_set (err, OV_EUSAGE, 0,
                             "erofs image: %s: xattr %s: value of %zu bytes, the format holds at most %u",
                             path, xa[i].name, xa[i].len, OV_EROFS_XATTR_VALUE_MAX);
      if (xa[i].len && !xa[i].value)
        return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: xattr %s: no value", path, xa[i].name);
      for (size_t j = 0; j < i; j++)
        if (strcmp (xa[i].name, xa[j].name) == 0)
          return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: xattr %s set twice", path, xa[i].name);
      size += (EROFS_XATTR_ENTRY_SIZE + sl + xa[i].len + 3) & ~(uint64_t) 3;
    }
  if (size > EROFS_XATTR_IBODY_MAX)
    return ov_error_set (err, OV_EUSAGE, 0,
                         "erofs image: %s: %zu xattrs take %llu bytes, more than the %u an inode holds",
                         path, count, (unsigned long long) size, EROFS_XATTR_IBODY_MAX);
  uint8_t *p = xcalloc (1, size);
  size_t at = EROFS_XATTR_HDR_SIZE;
  for (size_t i = 0; i < count; i++)
    {
      uint8_t index = 0;
      const char *suffix = "";
      xattr_split (xa[i].name, &index, &suffix);
      size_t sl = strlen (suffix);
      p[at] = sl;
      p[at + 1] = index;
      put_le (p + at + 2, xa[i].len, 2);
      memcpy (p + at + EROFS_XATTR_ENTRY_SIZE, suffix, sl);
      if (xa[i].len)
        memcpy (p + at + EROFS_XATTR_ENTRY_SIZE + sl, xa[i].value, xa[i].len);
      at += (EROFS_XATTR_ENTRY_SIZE + sl + xa[i].len + 3) & ~(size_t) 3;
    }
  n->xattr = p;
  n->xsize = size;
  return 0;
}

/* Fills n from m; n->name and n->parent are set, so that messages name it. */
static int
meta_apply (struct ov_erofs *w, struct ov_erofs_node *n, const struct ov_erofs_meta *m, ov_error_t *err)
{
  char pb[512];
  const char *path = ov_erofs_path (n, pb, sizeof pb);
  if (m->mode & ~(uint32_t) (S_IFMT | 07777) || ov_erofs_ftype (m->mode) == EROFS_FT_UNKNOWN)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: mode 0%o is not a file type and permissions",
                         path, m->mode);
  if (m->mtime_nsec >= 1000000000u)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: mtime nanoseconds %u out of range", path,
                         m->mtime_nsec);
  n->mode = m->mode;
  n->uid = m->uid;
  n->gid = m->gid;
  n->mtime = m->mtime;
  n->mtime_nsec = m->mtime_nsec;
  switch (m->mode & S_IFMT)
    {
    case S_IFCHR:
    case S_IFBLK:
      if (m->rdev_major >= 4096 || m->rdev_minor >= (1u << 20))
        return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: device %u:%u out of range", path,
                             m->rdev_major, m->rdev_minor);
      /* the kernel's new_encode_dev */
      n->rdev = (m->rdev_minor & 0xff) | (m->rdev_major << 8) | ((m->rdev_minor & ~0xffu) << 12);
      break;
    case S_IFLNK:
      if (m->linklen == 0 || m->linklen > OV_EROFS_LINK_MAX || !m->link || memchr (m->link, 0, m->linklen))
        return ov_error_set (err, OV_EUSAGE, 0,
                             "erofs image: %s: symlink target of %zu bytes (1-%u, no NUL)", path, m->linklen,
                             OV_EROFS_LINK_MAX);
      n->kind = OV_EROFS_DATA_MEM;
      n->mem = xmalloc (m->linklen);
      memcpy (n->mem, m->link, m->linklen);
      n->size = m->linklen;
      break;
    case S_IFREG:
      {
        const struct ov_erofs_data *d = &m->data;
        n->kind = d->kind;
        n->tag = d->tag;
        switch (d->kind)
          {
          case OV_EROFS_DATA_NONE:
            break;
          case OV_EROFS_DATA_MEM:
            if (d->len && !d->mem)
              return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: no content buffer", path);
            if (d->len > SIZE_MAX / 2)
              return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: content too large", path);
            n->mem = xmalloc (d->len);
            if (d->len)
              memcpy (n->mem, d->mem, d->len);
            n->size = d->len;
            break;
          case OV_EROFS_DATA_AT:
            if (!d->path || !*d->path)
              return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: no source path", path);
            n->path = arena_dup (w, d->path, strlen (d->path) + 1);
            /* fall through */
          case OV_EROFS_DATA_FD: /* fd -1: ov_erofs_set_source tells it later */
            if (d->fd < 0 && d->kind == OV_EROFS_DATA_AT)
              return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: no source fd", path);
            if (d->off > INT64_MAX || d->len > INT64_MAX - d->off)
              return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: source range %llu+%llu out of range",
                                   path, (unsigned long long) d->off, (unsigned long long) d->len);
            n->fd = d->fd;
            n->off = d->off;
            n->size = d->len;
            break;
          case OV_EROFS_DATA_SPARSE:
            if (d->len > INT64_MAX)
              return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: size %llu out of range", path,
                                   (unsigned long long) d->len);
            n->size = d->len;
            break;
          default:
            return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: unknown content kind %d", path,
                                 (int) d->kind);
          }
        break;
      }
    default:
      break;
    }
  return xattrs_encode (n, m->xattrs, m->nxattrs, path, err);
}

int
ov_erofs_set_root (struct ov_erofs *w, const struct ov_erofs_meta *m, ov_error_t *err)
{
  if ((m->mode & S_IFMT) != S_IFDIR)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: the root must be a directory (mode 0%o)", m->mode);
  struct ov_erofs_node *r = w->root;
  free (r->xattr);
  r->xattr = NULL;
  r->xsize = 0;
  return meta_apply (w, r, m, err);
}

static int
check_name (struct ov_erofs *w, struct ov_erofs_node *parent, const char *name, size_t namelen,
            ov_error_t *err)
{
  char pb[512];
  if (w->written)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: the image was already written");
  if (!parent || (parent->mode & S_IFMT) != S_IFDIR)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: not a directory",
                         parent ? ov_erofs_path (parent, pb, sizeof pb) : "(null)");
  const char *pp = ov_erofs_path (parent, pb, sizeof pb);
  if (namelen == 0 || namelen > OV_EROFS_NAME_MAX)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: a name of %zu bytes (1-%u)", pp, namelen,
                         OV_EROFS_NAME_MAX);
  if (memchr (name, '/', namelen) || memchr (name, 0, namelen))
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: name %.*s holds '/' or NUL", pp, (int) namelen,
                         name);
  if ((namelen == 1 && name[0] == '.') || (namelen == 2 && name[0] == '.' && name[1] == '.'))
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: %s: %.*s is not a name", pp, (int) namelen, name);
  if (w->nnodes >= UINT32_MAX - 1)
    return ov_error_set (err, OV_ENOSPACE, 0, "erofs image: more than %u inodes", UINT32_MAX - 2);
  if (parent->nents >= UINT32_MAX - 2)
    return ov_error_set (err, OV_ENOSPACE, 0, "erofs image: %s: too many entries", pp);
  return 0;
}

static void
dent_add (struct ov_erofs_node *dir, const char *name, size_t len, struct ov_erofs_node *node)
{
  if (dir->nents == dir->cap)
    {
      dir->cap = dir->cap ? 2 * dir->cap : 8;
      dir->ents = xrealloc (dir->ents, dir->cap * sizeof *dir->ents);
    }
  dir->ents[dir->nents++] = (struct ov_erofs_dent) { name, len, node };
}

struct ov_erofs_node *
ov_erofs_add (struct ov_erofs *w, struct ov_erofs_node *parent, const char *name, size_t namelen,
              const struct ov_erofs_meta *m, ov_error_t *err)
{
  if (check_name (w, parent, name, namelen, err) < 0)
    return NULL;
  struct ov_erofs_node *n = node_new (w);
  n->parent = parent;
  n->name = arena_dup (w, name, namelen);
  n->namelen = namelen;
  if (meta_apply (w, n, m, err) < 0)
    {
      /* the newest node, linked nowhere yet */
      w->nnodes--;
      free (n->mem);
      free (n->xattr);
      free (n);
      return NULL;
    }
  n->nlink = 1;
  dent_add (parent, n->name, namelen, n);
  if ((n->mode & S_IFMT) == S_IFDIR)
    parent->nsubdirs++;
  return n;
}

void
ov_erofs_set_source (struct ov_erofs_node *node, int fd, uint64_t off, void *tag)
{
  node->fd = fd;
  node->off = off;
  node->tag = tag;
}

void
ov_erofs_map_sources (struct ov_erofs *w)
{
  w->map_sources = true;
}

int
ov_erofs_link (struct ov_erofs *w, struct ov_erofs_node *parent, const char *name, size_t namelen,
               struct ov_erofs_node *target, ov_error_t *err)
{
  if (check_name (w, parent, name, namelen, err) < 0)
    return -1;
  if (!target || !target->mode || (target->mode & S_IFMT) == S_IFDIR)
    return ov_error_set (err, OV_EUSAGE, 0, "erofs image: link %.*s: the target is a directory or not an entry",
                         (int) namelen, name);
  if (target->nlink == UINT32_MAX)
    return ov_error_set (err, OV_ENOSPACE, 0, "erofs image: link %.*s: too many links", (int) namelen, name);
  target->nlink++;
  dent_add (parent, arena_dup (w, name, namelen), namelen, target);
  return 0;
}
