/* Small helpers shared by every module: scope-bound cleanup, allocation that
 * cannot fail silently, byte buffers and little-endian packing. */
#ifndef OVSNAP_UTIL_H
#define OVSNAP_UTIL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <limits.h>

#define cleanup_free __attribute__ ((cleanup (ov_freep)))
#define cleanup_close __attribute__ ((cleanup (ov_closep)))
#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))
#define UNUSED __attribute__ ((unused))

static inline void
ov_freep (void *p)
{
  free (*(void **) p);
}

static inline void
ov_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
}

void *xmalloc (size_t n);
void *xcalloc (size_t n, size_t m);
void *xrealloc (void *p, size_t n);
char *xstrdup (const char *s);
char *xstrndup (const char *s, size_t n);
char *xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* A growable byte buffer; records are encoded into one and decoded from one. */
struct ov_buf
{
  uint8_t *data;
  size_t len;
  size_t cap;
};

void buf_reserve (struct ov_buf *b, size_t extra);
void buf_free (struct ov_buf *b);

/* The small writers and readers are inline: trees encode and decode every
 * entry through them. Numbers are little endian. */
static inline void
buf_put (struct ov_buf *b, const void *p, size_t n)
{
  if (b->len + n > b->cap)
    buf_reserve (b, n);
  if (n)
    memcpy (b->data + b->len, p, n);
  b->len += n;
}

static inline void
buf_u8 (struct ov_buf *b, uint8_t v)
{
  buf_put (b, &v, 1);
}

/* n bytes of v, least significant first */
static inline void
buf_le (struct ov_buf *b, uint64_t v, int n)
{
  uint8_t x[8];
  for (int i = 0; i < n; i++)
    x[i] = v >> (8 * i);
  buf_put (b, x, n);
}

static inline void
buf_u16 (struct ov_buf *b, uint16_t v)
{
  buf_le (b, v, 2);
}

static inline void
buf_u32 (struct ov_buf *b, uint32_t v)
{
  buf_le (b, v, 4);
}

static inline void
buf_u64 (struct ov_buf *b, uint64_t v)
{
  buf_le (b, v, 8);
}

/* A bounds-checked reader over a record; any overrun sets `bad` and
 * returns zeros, so decoders check once at the end. */
struct ov_reader
{
  const uint8_t *p;
  size_t left;
  int bad;
};

extern const uint8_t ov_zeros[8];

static inline const uint8_t *
rd_bytes (struct ov_reader *r, size_t n)
{
  if (r->bad || n > r->left)
    {
      r->bad = 1;
      return n <= sizeof ov_zeros ? ov_zeros : NULL;
    }
  const uint8_t *p = r->p;
  r->p += n;
  r->left -= n;
  return p;
}

static inline uint8_t
rd_u8 (struct ov_reader *r)
{
  return rd_bytes (r, 1)[0];
}

static inline uint64_t
rd_le (struct ov_reader *r, int n)
{
  const uint8_t *p = rd_bytes (r, n);
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static inline uint16_t
rd_u16 (struct ov_reader *r)
{
  return rd_le (r, 2);
}

static inline uint32_t
rd_u32 (struct ov_reader *r)
{
  return rd_le (r, 4);
}

static inline uint64_t
rd_u64 (struct ov_reader *r)
{
  return rd_le (r, 8);
}

/* I/O that retries short reads/writes and EINTR. */
ssize_t read_all (int fd, void *buf, size_t n); /* bytes read (< n at EOF) or -1 */
int write_all (int fd, const void *buf, size_t n);
ssize_t pread_all (int fd, void *buf, size_t n, off_t off);
int pwrite_all (int fd, const void *buf, size_t n, off_t off);

int64_t now_ns (void);
double mono_seconds (void);

/* OVSNAP_TRACE set: print to stderr, at each named step, the time since
 * the first step (where the time of a command goes). */
void ov_trace (const char *step);

#endif
