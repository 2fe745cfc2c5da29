/* A bounded io_uring batch: callers take SQEs, tag each with a completion
 * callback, and the batch submits when the ring fills and reaps as it goes,
 * keeping at most `depth` operations in flight (liburing's discipline: one
 * ring per thread, submit many, reap in a loop, check every cqe->res). */
#ifndef OVSNAP_URING_H
#define OVSNAP_URING_H

#include "error.h"
#include <liburing.h>

struct ov_uring_op
{
  /* Called with cqe->res; returns -1 (with the batch error set) to fail. */
  int (*done) (struct ov_uring_op *op, int res, ov_error_t *err);
};

struct ov_uring
{
  struct io_uring ring;
  unsigned inflight, depth;
  ov_error_t err; /* first failure */
};

int ov_uring_init (struct ov_uring *u, unsigned depth, ov_error_t *err);
void ov_uring_exit (struct ov_uring *u);
/* An SQE for `op`; may submit and reap to make room. NULL once the batch failed. */
struct io_uring_sqe *ov_uring_sqe (struct ov_uring *u, struct ov_uring_op *op);
/* n SQEs at once for one linked chain, sqes[i] completing into ops[i]:
 * room is made first, so a chain is never split across two submissions
 * (the kernel would run its second half unlinked, a WRITE before the READ
 * that fills its buffer). The caller sets IOSQE_IO_LINK. -1 once the
 * batch failed, or if n exceeds the ring. */
int ov_uring_chain (struct ov_uring *u, struct ov_uring_op **ops, unsigned n,
                    struct io_uring_sqe **sqes);
/* Submit what is queued; a failure fails the batch. */
int ov_uring_submit (struct ov_uring *u);
/* Submit everything and wait for every completion; returns -1 if any op failed. */
int ov_uring_drain (struct ov_uring *u, ov_error_t *err);

#endif
