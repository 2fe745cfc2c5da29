#include "uring.h"
#include "util.h"

int
ov_uring_init (struct ov_uring *u, unsigned depth, ov_error_t *err)
{
  memset (u, 0, sizeof *u);
  struct io_uring_params p = { 0 };
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int r = io_uring_queue_init_params (depth, &u->ring, &p);
  if (r < 0)
    {
      /* older kernels: a plain ring */
      memset (&p, 0, sizeof p);
      r = io_uring_queue_init_params (depth, &u->ring, &p);
    }
  if (r < 0)
    return ov_error (err, -r, "io_uring setup");
  u->depth = depth;
  return 0;
}

void
ov_uring_exit (struct ov_uring *u)
{
  io_uring_queue_exit (&u->ring);
  ov_error_free (&u->err);
}

static void
reap_one (struct ov_uring *u, struct io_uring_cqe *cqe)
{
  struct ov_uring_op *op = io_uring_cqe_get_data (cqe);
  int res = cqe->res;
  io_uring_cqe_seen (&u->ring, cqe);
  u->inflight--;
  if (op && op->done && u->err == NULL)
    op->done (op, res, &u->err);
}

int
ov_uring_submit (struct ov_uring *u)
{
  int r;
  while ((r = io_uring_submit (&u->ring)) == -EINTR)
    ;
  if (r < 0 && u->err == NULL)
    ov_error (&u->err, -r, "io_uring submit");
  return r < 0 ? -1 : 0;
}

/* Submit and reap until at most `keep` ops are in flight. */
static void
settle (struct ov_uring *u, unsigned keep)
{
  if (ov_uring_submit (u) < 0)
    return;
  while (u->inflight > keep)
    {
      struct io_uring_cqe *cqe;
      int r = io_uring_wait_cqe (&u->ring, &cqe);
      if (r == -EINTR)
        continue;
      if (r < 0)
        {
          ov_error (&u->err, -r, "io_uring wait");
          return;
        }
      reap_one (u, cqe);
      /* take whatever else is ready without waiting */
      while (io_uring_peek_cqe (&u->ring, &cqe) == 0)
        reap_one (u, cqe);
    }
}

struct io_uring_sqe *
ov_uring_sqe (struct ov_uring *u, struct ov_uring_op *op)
{
  if (u->err)
    return NULL;
  if (u->inflight >= u->depth)
    settle (u, u->depth / 2);
  struct io_uring_sqe *sqe = io_uring_get_sqe (&u->ring);
  if (sqe == NULL)
    {
      settle (u, u->inflight);
      sqe = io_uring_get_sqe (&u->ring);
    }
  if (sqe == NULL || u->err)
    return NULL;
  io_uring_sqe_set_data (sqe, op);
  u->inflight++;
  return sqe;
}

int
ov_uring_chain (struct ov_uring *u, struct ov_uring_op **ops, unsigned n,
                struct io_uring_sqe **sqes)
{
  if (u->err)
    return -1;
  if (n > u->depth || n > u->ring.sq.ring_entries)
    return ov_error_set (&u->err, OV_EGENERIC, EINVAL, "io_uring chain of %u", n);
  if (u->inflight + n > u->depth)
    settle (u, u->depth - n);
  if (io_uring_sq_space_left (&u->ring) < n)
    settle (u, u->inflight); /* submit what is queued, wait for nothing */
  if (u->err || io_uring_sq_space_left (&u->ring) < n)
    return u->err ? -1 : ov_error_set (&u->err, OV_EGENERIC, EBUSY, "io_uring: no room for a chain");
  for (unsigned i = 0; i < n; i++)
    {
      sqes[i] = io_uring_get_sqe (&u->ring);
      io_uring_sqe_set_data (sqes[i], ops[i]);
    }
  u->inflight += n;
  return 0;
}

int
ov_uring_drain (struct ov_uring *u, ov_error_t *err)
{
  settle (u, 0);
  if (u->err)
    {
      if (*err == NULL)
        {
          *err = u->err;
          u->err = NULL;
        }
      return -1;
    }
  return 0;
}
