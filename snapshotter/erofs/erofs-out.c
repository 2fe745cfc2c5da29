/* The image's output: a gather list of bytes in our buffers (metadata,
 * tails, padding) and of bytes the caller keeps in place (file contents in
 * mapped pack files), written front to back in batches of up to
 * EOUT_BATCH bytes. On a regular file the batches go out through io_uring
 * as positioned writevs punted to the kernel's worker (IOSQE_ASYNC): the
 * copy into the page cache runs on the other core while the writer hashes
 * and gathers the next batch. A pipe, or a machine without io_uring, gets
 * the same batches by plain writev, in order. */
#include "erofs-out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define EOUT_BATCH (8u << 20) /* bytes per writev */

static int
write_error (uint64_t at, int e, ov_error_t *err)
{
  return ov_error (err, e, "erofs image: write at byte %llu", (unsigned long long) at);
}

/* Writes what is left of batch b after its first `done` bytes, by plain
 * (p)writev: a whole batch, or the rest of a short asynchronous write. */
static int
write_rest (struct eout *o, struct eout_batch *b, uint64_t done, ov_error_t *err)
{
  struct iovec *iov = b->iov;
  int n = b->niov;
  uint64_t at = b->at, left = b->bytes;
  for (;;)
    {
      while (done && n)
        {
          size_t k = done < iov->iov_len ? done : iov->iov_len;
          iov->iov_base = (uint8_t *) iov->iov_base + k;
          iov->iov_len -= k;
          done -= k, at += k, left -= k;
          if (iov->iov_len == 0)
            iov++, n--;
        }
      if (left == 0)
        return 0;
      int k = n < IOV_MAX ? n : IOV_MAX;
      ssize_t r = o->seekable ? pwritev (o->fd, iov, k, o->base + at) : writev (o->fd, iov, k);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return write_error (at, r < 0 ? errno : ENOSPC, err);
      done = r;
    }
}

/* Waits for one asynchronous batch and finishes it. */
static int
reap (struct eout *o, ov_error_t *err)
{
  struct io_uring_cqe *cqe;
  int e = io_uring_wait_cqe (&o->ring, &cqe);
  if (e < 0)
    return ov_error (err, -e, "erofs image: wait for a write");
  struct eout_batch *b = io_uring_cqe_get_data (cqe);
  int res = cqe->res;
  io_uring_cqe_seen (&o->ring, cqe);
  o->inflight--;
  b->busy = false;
  if (res < 0)
    return write_error (b->at, -res, err);
  if ((uint64_t) res < b->bytes)
    return write_rest (o, b, res, err);
  return 0;
}

static struct eout_batch *
cur (struct eout *o)
{
  return &o->b[o->cur];
}

/* The buffered bytes not yet in the gather list go in as one piece. */
static void
close_seg (struct eout_batch *b)
{
  if (b->len > b->seg)
    {
      b->iov[b->niov++] = (struct iovec){ b->buf + b->seg, b->len - b->seg };
      b->bytes += b->len - b->seg;
      b->seg = b->len;
    }
}

static int
submit (struct eout *o, struct eout_batch *b, ov_error_t *err)
{
  if (!o->async)
    return write_rest (o, b, 0, err);
  struct io_uring_sqe *sqe = io_uring_get_sqe (&o->ring);
  if (sqe == NULL)
    return ov_error_set (err, OV_EGENERIC, 0, "erofs image: internal error: no submission slot");
  io_uring_prep_writev (sqe, o->fd, b->iov, b->niov, o->base + b->at);
  sqe->flags |= IOSQE_ASYNC;
  io_uring_sqe_set_data (sqe, b);
  int e = io_uring_submit (&o->ring);
  if (e < 0)
    return ov_error (err, -e, "erofs image: submit a write");
  b->busy = true;
  o->inflight++;
  return 0;
}

int
eout_flush (struct eout *o, ov_error_t *err)
{
  struct eout_batch *b = cur (o);
  close_seg (b);
  if (b->niov == 0)
    return 0;
  if (o->seal && b->at == 0)
    {
      if (b->iov[0].iov_base != b->buf || b->iov[0].iov_len < o->seal_len)
        return ov_error_set (err, OV_EGENERIC, 0, "erofs image: internal error: block 0 flushed in pieces");
      o->seal (b->buf);
    }
  if (submit (o, b, err) < 0)
    return -1;
  o->flushed += b->bytes;
  o->cur = (o->cur + 1) % EOUT_SLOTS;
  b = cur (o);
  while (b->busy)
    if (reap (o, err) < 0)
      return -1;
  b->at = o->flushed;
  b->len = b->seg = b->bytes = 0;
  b->niov = 0;
  return 0;
}

int
eout_open (struct eout *o, int fd, void (*seal) (uint8_t *), size_t seal_len, ov_error_t *err)
{
  memset (o, 0, sizeof *o);
  o->fd = fd;
  o->seal = seal;
  o->seal_len = seal_len;
  struct stat st;
  if (fstat (fd, &st) < 0)
    return ov_error (err, errno, "erofs image: stat the output");
  if (S_ISREG (st.st_mode))
    {
      o->base = lseek (fd, 0, SEEK_CUR);
      if (o->base < 0)
        return ov_error (err, errno, "erofs image: position of the output");
      o->seekable = true;
      /* without io_uring (a sandbox may forbid it), plain writes */
      o->async = io_uring_queue_init (EOUT_SLOTS, &o->ring, 0) == 0;
    }
  for (int i = 0; i < EOUT_SLOTS; i++)
    o->b[i].buf = xmalloc (EOUT_CAP);
  return 0;
}

uint8_t *
eout_room (struct eout *o, size_t n, ov_error_t *err)
{
  struct eout_batch *b = cur (o);
  if ((EOUT_CAP - b->len < n || b->niov + 1 >= EOUT_IOVS) && eout_flush (o, err) < 0)
    return NULL;
  return cur (o)->buf + cur (o)->len;
}

void
eout_used (struct eout *o, size_t n)
{
  cur (o)->len += n;
}

int
eout_fill (struct eout *o, const void *p, int byte, uint64_t n, ov_error_t *err)
{
  const uint8_t *src = p;
  while (n)
    {
      struct eout_batch *b = cur (o);
      if ((b->len == EOUT_CAP || b->niov + 1 >= EOUT_IOVS) && eout_flush (o, err) < 0)
        return -1;
      b = cur (o);
      size_t k = EOUT_CAP - b->len < n ? EOUT_CAP - b->len : n;
      if (src)
        {
          memcpy (b->buf + b->len, src, k);
          src += k;
        }
      else
        memset (b->buf + b->len, byte, k);
      b->len += k;
      n -= k;
    }
  return 0;
}

int
eout_ext (struct eout *o, const void *p, uint64_t n, ov_error_t *err)
{
  const uint8_t *src = p;
  while (n)
    {
      struct eout_batch *b = cur (o);
      if (b->niov + 2 > EOUT_IOVS && eout_flush (o, err) < 0)
        return -1;
      b = cur (o);
      close_seg (b);
      size_t k = n < EOUT_BATCH ? n : EOUT_BATCH;
      b->iov[b->niov++] = (struct iovec){ (void *) src, k };
      b->bytes += k;
      src += k;
      n -= k;
      if (b->bytes >= EOUT_BATCH && eout_flush (o, err) < 0)
        return -1;
    }
  return 0;
}

uint64_t
eout_pos (const struct eout *o)
{
  const struct eout_batch *b = &o->b[o->cur];
  return o->flushed + b->bytes + (b->len - b->seg);
}

int
eout_finish (struct eout *o, ov_error_t *err)
{
  if (eout_flush (o, err) < 0)
    return -1;
  while (o->inflight)
    if (reap (o, err) < 0)
      return -1;
  if (o->seekable && lseek (o->fd, o->base + o->flushed, SEEK_SET) < 0)
    return ov_error (err, errno, "erofs image: position the output after the image");
  return 0;
}

void
eout_close (struct eout *o)
{
  /* the kernel may still be reading our buffers (and the caller's) */
  while (o->inflight)
    {
      ov_error_t e = NULL;
      reap (o, &e);
      ov_error_free (&e);
    }
  if (o->async)
    io_uring_queue_exit (&o->ring);
  for (int i = 0; i < EOUT_SLOTS; i++)
    free (o->b[i].buf);
}
