/* The image's output, written front to back in batches of about
 * EOUT_BATCH bytes, two in flight through io_uring while the writer hashes
 * and gathers the next.
 *
 * On a file that takes it, the image is written with O_DIRECT, from our
 * aligned buffers (contents copied in, batches cut at block boundaries):
 * an image is written once and read back by the kernel as it needs, and
 * filling 400 MB of new page cache cost 3-4x the disk's own time here
 * (measured: 274 MB/s buffered against 956 MB/s direct for the same pack,
 * on a VM whose memory is not yet backed; 0.5-1.1 s of a 50,000-file first
 * mount). Elsewhere (tmpfs, memfd) the batches are gather lists of our
 * buffers and of bytes the caller keeps in place (mapped packs), written
 * by the kernel's worker (IOSQE_ASYNC) so the page-cache copy runs on the
 * other core. A pipe, or no io_uring, gets the same batches by plain
 * writev, in order. */
#include "erofs-out.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define EOUT_BATCH (8u << 20) /* bytes per write */
#define EOUT_ALIGN 4096u      /* direct I/O: offsets, lengths and buffers */

static int
write_error (uint64_t at, int e, ov_error_t *err)
{
  return ov_error (err, e, "erofs image: write at byte %llu", (unsigned long long) at);
}

/* Back to the page cache: for a write the file refused direct, and for the
 * caller once the image is out. */
static void
drop_direct (struct eout *o)
{
  if (o->direct)
    fcntl (o->fd, F_SETFL, o->flags);
  o->direct = false;
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
      if (r < 0 && errno == EINVAL && o->direct)
        {
          drop_direct (o);
          continue;
        }
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
  if (res == -EINVAL && o->direct)
    res = 0; /* the file takes direct I/O only in some cases: the rest goes buffered */
  else if (res < 0)
    return write_error (b->at, -res, err);
  if ((uint64_t) res < b->bytes)
    {
      drop_direct (o); /* the rest may not be aligned */
      return write_rest (o, b, res, err);
    }
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
  if (!o->direct)
    sqe->flags |= IOSQE_ASYNC; /* direct writes are asynchronous as they are */
  io_uring_sqe_set_data (sqe, b);
  int e = io_uring_submit (&o->ring);
  if (e < 0)
    return ov_error (err, -e, "erofs image: submit a write");
  b->busy = true;
  o->inflight++;
  return 0;
}

/* Is the batch due: full, or (direct) big enough to go. */
static bool
due (const struct eout *o, const struct eout_batch *b, size_t room)
{
  return EOUT_CAP - b->len < room || b->niov + 2 > EOUT_IOVS || (o->direct && b->len >= EOUT_BATCH);
}

int
eout_flush (struct eout *o, ov_error_t *err)
{
  struct eout_batch *b = cur (o);
  /* direct: whole blocks go, the partial one moves to the next batch */
  size_t carry = o->direct ? b->len % EOUT_ALIGN : 0;
  b->len -= carry;
  close_seg (b);
  if (b->niov == 0)
    {
      b->len += carry;
      return 0;
    }
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
  struct eout_batch *next = cur (o);
  while (next->busy)
    if (reap (o, err) < 0)
      return -1;
  next->at = o->flushed;
  next->seg = next->bytes = 0;
  next->niov = 0;
  /* the kernel reads b's first b->len bytes only */
  memcpy (next->buf, b->buf + b->len, carry);
  next->len = carry;
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
      o->flags = fcntl (fd, F_GETFL);
      o->direct = o->flags >= 0 && o->base % EOUT_ALIGN == 0 && fcntl (fd, F_SETFL, o->flags | O_DIRECT) == 0;
      /* without io_uring (a sandbox may forbid it), plain writes */
      o->async = io_uring_queue_init (EOUT_SLOTS, &o->ring, 0) == 0;
      /* one worker: a second would only spin on the image's inode lock */
      unsigned workers[2] = { 1, 1 };
      if (o->async)
        io_uring_register_iowq_max_workers (&o->ring, workers);
    }
  for (int i = 0; i < EOUT_SLOTS; i++)
    {
      void *p;
      if (posix_memalign (&p, EOUT_ALIGN, EOUT_CAP) != 0)
        {
          fputs ("ovsnap: out of memory\n", stderr);
          abort ();
        }
      o->b[i].buf = p;
    }
  return 0;
}

uint8_t *
eout_room (struct eout *o, size_t n, ov_error_t *err)
{
  if (due (o, cur (o), n) && eout_flush (o, err) < 0)
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
      if (due (o, cur (o), 1) && eout_flush (o, err) < 0)
        return -1;
      struct eout_batch *b = cur (o);
      size_t k = EOUT_CAP - b->len < n ? EOUT_CAP - b->len : n;
      if (o->direct && b->len < EOUT_BATCH && EOUT_BATCH - b->len < k)
        k = EOUT_BATCH - b->len;
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
  if (o->direct)
    return eout_fill (o, p, 0, n, err); /* direct I/O wants aligned memory */
  const uint8_t *src = p;
  while (n)
    {
      if (due (o, cur (o), 0) && eout_flush (o, err) < 0)
        return -1;
      struct eout_batch *b = cur (o);
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
  if (o->direct && cur (o)->len % EOUT_ALIGN)
    drop_direct (o); /* a partial last block: not an image, but written as asked */
  if (eout_flush (o, err) < 0)
    return -1;
  while (o->inflight)
    if (reap (o, err) < 0)
      return -1;
  drop_direct (o);
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
  drop_direct (o);
  if (o->async)
    io_uring_queue_exit (&o->ring);
  for (int i = 0; i < EOUT_SLOTS; i++)
    free (o->b[i].buf);
}
