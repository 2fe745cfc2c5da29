#include "manifest.h"
#include "file.h"
#include "record.h"
#include "hash.h"
#include "store.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <xxhash.h>

static const char man_magic[8] = { 'O', 'V', 'S', 'N', 'M', 'A', 'N', 'I' };

void
sig_from_stat (struct ov_sig *s, const struct stat *st)
{
  memset (s, 0, sizeof *s);
  s->ino = st->st_ino;
  s->size = st->st_size;
  s->ctime_sec = st->st_ctim.tv_sec;
  s->ctime_nsec = st->st_ctim.tv_nsec;
  s->mtime_sec = st->st_mtim.tv_sec;
  s->mtime_nsec = st->st_mtim.tv_nsec;
  s->mode = st->st_mode;
}

bool
sig_eq (const struct ov_sig *a, const struct ov_sig *b)
{
  return a->ino == b->ino && a->size == b->size && a->ctime_sec == b->ctime_sec
         && a->ctime_nsec == b->ctime_nsec && a->mtime_sec == b->mtime_sec
         && a->mtime_nsec == b->mtime_nsec && a->mode == b->mode;
}

static size_t
slot (const char *path, size_t cap)
{
  return XXH3_64bits (path, strlen (path)) & (cap - 1);
}

const struct ov_sig *
manifest_get (const struct ov_manifest *m, const char *path)
{
  if (m == NULL || m->cap == 0)
    return NULL;
  for (size_t i = slot (path, m->cap);; i = (i + 1) & (m->cap - 1))
    {
      if (m->paths[i] == NULL)
        return NULL;
      if (strcmp (m->paths[i], path) == 0)
        return &m->sigs[i];
    }
}

void
manifest_put (struct ov_manifest *m, const char *path, const struct ov_sig *sig)
{
  if ((m->n + 1) * 2 > m->cap)
    {
      struct ov_manifest g = { .cap = m->cap ? m->cap * 2 : 256 };
      g.paths = xcalloc (g.cap, sizeof *g.paths);
      g.sigs = xcalloc (g.cap, sizeof *g.sigs);
      for (size_t i = 0; i < m->cap; i++)
        if (m->paths[i])
          {
            size_t k = slot (m->paths[i], g.cap);
            while (g.paths[k])
              k = (k + 1) & (g.cap - 1);
            g.paths[k] = m->paths[i];
            g.sigs[k] = m->sigs[i];
            g.n++;
          }
      free (m->paths);
      free (m->sigs);
      *m = g;
    }
  size_t i = slot (path, m->cap);
  while (m->paths[i] && strcmp (m->paths[i], path) != 0)
    i = (i + 1) & (m->cap - 1);
  if (m->paths[i] == NULL)
    {
      m->paths[i] = xstrdup (path);
      m->n++;
    }
  m->sigs[i] = *sig;
}

void
manifest_free (struct ov_manifest *m)
{
  for (size_t i = 0; i < m->cap; i++)
    free (m->paths[i]);
  free (m->paths);
  free (m->sigs);
  memset (m, 0, sizeof *m);
}

int
manifest_prepare (int dirfd, const char *name, const struct ov_manifest *m, ov_error_t *err)
{
  struct ov_buf b = { 0 };
  record_begin (&b, man_magic, 1);
  buf_u64 (&b, m->n);
  for (size_t i = 0; i < m->cap; i++)
    {
      if (m->paths[i] == NULL)
        continue;
      const struct ov_sig *s = &m->sigs[i];
      size_t l = strlen (m->paths[i]);
      buf_u32 (&b, l);
      buf_put (&b, m->paths[i], l);
      buf_u64 (&b, s->ino);
      buf_u64 (&b, s->size);
      buf_u64 (&b, (uint64_t) s->ctime_sec);
      buf_u32 (&b, s->ctime_nsec);
      buf_u64 (&b, (uint64_t) s->mtime_sec);
      buf_u32 (&b, s->mtime_nsec);
      buf_u32 (&b, s->mode);
      buf_u8 (&b, s->opaque);
    }
  record_seal (&b);
  cleanup_free char *tmp = xasprintf ("%s.tmp", name);
  int r = 0;
  int fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write_all (fd, b.data, b.len) < 0 || fsync (fd) < 0)
    r = ov_error (err, errno, "save manifest");
  if (fd >= 0)
    close (fd);
  buf_free (&b);
  return r;
}

int
manifest_publish (int dirfd, const char *name, ov_error_t *err)
{
  cleanup_free char *tmp = xasprintf ("%s.tmp", name);
  if (renameat (dirfd, tmp, dirfd, name) < 0)
    return ov_error (err, errno, "save manifest");
  return 0;
}

void
manifest_discard (int dirfd, const char *name)
{
  cleanup_free char *tmp = xasprintf ("%s.tmp", name);
  unlinkat (dirfd, tmp, 0);
}

int
manifest_save (int dirfd, const char *name, const struct ov_manifest *m, ov_error_t *err)
{
  if (manifest_prepare (dirfd, name, m, err) < 0)
    return -1;
  return manifest_publish (dirfd, name, err);
}

int
manifest_load (int dirfd, const char *name, struct ov_manifest *m, ov_error_t *err)
{
  memset (m, 0, sizeof *m);
  cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : ov_error (err, errno, "open manifest");
  struct ov_buf b = { 0 };
  if (ov_read_fd (fd, &b, 1u << 30) < 0)
    {
      buf_free (&b);
      return ov_error (err, errno, "read manifest");
    }
  struct ov_reader rd;
  int r = record_open (b.data, b.len, man_magic, 1, "manifest", "attachment manifest", &rd, err);
  uint64_t n = r == 0 ? rd_u64 (&rd) : 0;
  for (uint64_t i = 0; r == 0 && i < n; i++)
    {
      uint32_t l = rd_u32 (&rd);
      const uint8_t *p = l < 65536 ? rd_bytes (&rd, l) : NULL;
      struct ov_sig s = { 0 };
      s.ino = rd_u64 (&rd);
      s.size = rd_u64 (&rd);
      s.ctime_sec = (int64_t) rd_u64 (&rd);
      s.ctime_nsec = rd_u32 (&rd);
      s.mtime_sec = (int64_t) rd_u64 (&rd);
      s.mtime_nsec = rd_u32 (&rd);
      s.mode = rd_u32 (&rd);
      s.opaque = rd_u8 (&rd);
      if (rd.bad || p == NULL || memchr (p, '\0', l))
        {
          r = ov_corrupt (err, "attachment manifest: truncated");
          break;
        }
      cleanup_free char *path = xstrndup ((const char *) p, l);
      manifest_put (m, path, &s);
    }
  if (r == 0 && (rd.bad || rd.left != 0))
    r = ov_corrupt (err, "attachment manifest: truncated or trailing bytes");
  buf_free (&b);
  if (r < 0)
    manifest_free (m);
  return r;
}
