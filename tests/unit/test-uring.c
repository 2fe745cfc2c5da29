/* The io_uring batch keeps a linked chain in one submission: a READ from a
 * pipe that has no data yet, linked to a WRITE of the same buffer into a
 * file, must not let the WRITE run first. With the SQEs taken one at a
 * time (ov_uring_sqe), a ring that fills in the middle of the chain
 * submits the READ alone, the link is cut, and the file gets the stale
 * buffer. usage: test-uring SCRATCH_DIR */
#include "tap.h"
#include "uring.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>

static int
done_ok (struct ov_uring_op *op, int res, ov_error_t *err)
{
  (void) op;
  if (res < 0)
    return ov_error (err, -res, "op");
  return 0;
}

/* a READ(pipe) -> WRITE(file) chain through a ring of depth 6, behind a
 * filler chain of 5 NOPs, so that it meets a full ring half-way */
static int
run (const char *dir, int round)
{
  struct ov_uring u;
  ov_error_t err = NULL;
  if (ov_uring_init (&u, 6, &err) < 0)
    {
      fprintf (stderr, "%s\n", err->msg);
      return -1;
    }
  struct ov_uring_op op = { done_ok };
  struct ov_uring_op *nops[5] = { &op, &op, &op, &op, &op }, *pair[2] = { &op, &op };
  struct io_uring_sqe *sqe[5];
  int pfd[2];
  if (pipe (pfd) < 0)
    return -1;
  char path[4096];
  snprintf (path, sizeof path, "%s/out.%d", dir, round);
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  char buf[8] = "stale!";
  int r = ov_uring_chain (&u, nops, 5, sqe);
  for (int i = 0; r == 0 && i < 5; i++)
    io_uring_prep_nop (sqe[i]);
  if (r == 0)
    r = ov_uring_chain (&u, pair, 2, sqe);
  if (r == 0)
    {
      io_uring_prep_read (sqe[0], pfd[0], buf, 6, 0);
      sqe[0]->flags |= IOSQE_IO_LINK;
      io_uring_prep_write (sqe[1], fd, buf, 6, 0);
      r = ov_uring_submit (&u);
    }
  /* the READ can only finish now */
  if (r == 0 && write (pfd[1], "fresh!", 6) != 6)
    r = -1;
  if (r == 0)
    r = ov_uring_drain (&u, &err);
  char got[8] = "";
  if (r == 0 && pread (fd, got, 6, 0) != 6)
    r = -1;
  close (fd);
  close (pfd[0]);
  close (pfd[1]);
  ov_uring_exit (&u);
  ov_error_free (&err);
  return r < 0 ? -1 : memcmp (got, "fresh!", 6) == 0;
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    return 2;
  int good = 1;
  for (int i = 0; i < 20; i++)
    good &= run (argv[1], i) == 1;
  ok (good, "a READ -> WRITE chain meeting a full ring stays linked: the WRITE sees the READ's data");
  struct ov_uring u;
  ov_error_t err = NULL;
  struct ov_uring_op op = { done_ok };
  struct ov_uring_op *ops[8] = { &op, &op, &op, &op, &op, &op, &op, &op };
  struct io_uring_sqe *sqe[8];
  ok (ov_uring_init (&u, 4, &err) == 0 && ov_uring_chain (&u, ops, 8, sqe) < 0 && u.err != NULL,
      "a chain longer than the ring is refused, not split");
  ov_uring_exit (&u);
  return failures != 0;
}
