/* The image writer's output (erofs-out.c): bytes appended front to back,
 * copied into its buffers or gathered in place, and written in large
 * batches: direct and asynchronous where the output is a regular file. */
#ifndef OVSNAP_EROFS_OUT_H
#define OVSNAP_EROFS_OUT_H

#include "error.h"
#include "util.h"

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define EOUT_SLOTS 3            /* batches: one filling, up to two being written */
#define EOUT_CAP (16u << 20)    /* buffered bytes per batch: eout_room's limit */
#define EOUT_IOVS 1024          /* pieces per batch (the kernel's UIO_MAXIOV) */

struct eout_batch
{
  uint8_t *buf;
  size_t len, seg; /* buffered bytes; those before seg are in iov already */
  struct iovec iov[EOUT_IOVS];
  int niov;
  uint64_t bytes; /* in iov */
  uint64_t at;    /* image offset of the batch's first byte */
  bool busy;      /* submitted, not reaped */
};

struct eout
{
  int fd;
  int flags; /* the file's status flags, restored after direct I/O */
  bool seekable, async, direct;
  off_t base; /* the output's position when the image began */
  struct io_uring ring;
  unsigned inflight;
  struct eout_batch b[EOUT_SLOTS];
  int cur;
  uint64_t flushed; /* bytes of the batches handed to the kernel */
  void (*seal) (uint8_t *first); /* called on the first seal_len bytes before they go out */
  size_t seal_len;
};

int eout_open (struct eout *o, int fd, void (*seal) (uint8_t *), size_t seal_len, ov_error_t *err);
/* n contiguous buffered bytes (n <= EOUT_CAP) at the end; the caller fills
 * them and then says how many it keeps with eout_used. */
uint8_t *eout_room (struct eout *o, size_t n, ov_error_t *err);
void eout_used (struct eout *o, size_t n);
/* n bytes copied from p, or n bytes of `byte` if p is NULL. */
int eout_fill (struct eout *o, const void *p, int byte, uint64_t n, ov_error_t *err);
/* n bytes written from p in place: p must stay unchanged until eout_close. */
int eout_ext (struct eout *o, const void *p, uint64_t n, ov_error_t *err);
uint64_t eout_pos (const struct eout *o);
int eout_flush (struct eout *o, ov_error_t *err);
/* Writes everything and waits for it; the output's position is then past the image. */
int eout_finish (struct eout *o, ov_error_t *err);
/* Waits for what is still being written (after a failure too), frees. */
void eout_close (struct eout *o);

#endif
