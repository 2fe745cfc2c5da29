/* ovsnap put NAME LOCAL [REMOTE] | NAME --batch FILE */
#include "cli.h"
#include "file.h"
#include "maint.h"
#include "pack.h"
#include "put.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>

static const struct cli_opts put_opts = {
  "NAME LOCAL [REMOTE] [-m MESSAGE] | NAME --batch FILE",
  "Copies a local file or directory tree into volume NAME as one new snapshot.\n"
  "LOCAL `-` reads standard input (REMOTE is then required).\n"
  "Paths in the volume start at its root, with or without a leading /.\n"
  "Without REMOTE, LOCAL lands at the root under its base name; a REMOTE that\n"
  "ends in / receives LOCAL under its base name (so does an existing directory,\n"
  "for a file). A LOCAL directory puts its contents at REMOTE (as modal volume\n"
  "put does), and so does one ending in / (rsync style) anywhere.\n"
  "Directories merge with what the volume has; files replace.\n"
  "  -m, --message MSG  snapshot message\n"
  "  --batch FILE       put every LOCAL, REMOTE pair in FILE (- for standard\n"
  "                     input; each path ends in a NUL byte), in order, as one\n"
  "                     snapshot\n",
};

struct put_args
{
  const char *message, *batch;
};

static int
put_opt (int opt, const char *arg, void *ctx)
{
  struct put_args *a = ctx;
  if (opt == 'm')
    a->message = arg;
  else if (opt == 'b')
    a->batch = arg;
  else
    return -1;
  return 0;
}

/* --batch FILE: NUL-separated LOCAL, REMOTE pairs, as items (pointing into buf). */
static int
read_batch (const char *file, struct ov_buf *buf, struct ov_put_item **items, size_t *n,
            ov_error_t *err)
{
  int fd = strcmp (file, "-") == 0 ? STDIN_FILENO : open (file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "%s", file);
  int r = ov_read_fd (fd, buf, 64u << 20);
  if (fd != STDIN_FILENO)
    close (fd);
  if (r < 0)
    return ov_error (err, errno, "read %s", file);
  buf_put (buf, "", 1);
  const char *end = (const char *) buf->data + buf->len - 1;
  size_t k = 0;
  for (const char *q = (const char *) buf->data; q < end; q += strlen (q) + 1, k++)
    if (k % 2 == 0)
      {
        *items = xrealloc (*items, (*n + 1) * sizeof **items);
        (*items)[(*n)++] = (struct ov_put_item){ q, NULL };
        if (q[0] == '\0' || strcmp (q, "-") == 0)
          return ov_error_set (err, OV_EUSAGE, 0, "%s: entry %zu: a LOCAL path is needed", file, *n);
      }
    else
      (*items)[*n - 1].remote = q;
  if (k % 2)
    return ov_error_set (err, OV_EUSAGE, 0, "%s: LOCAL '%s' has no REMOTE", file, (*items)[*n - 1].local);
  if (*n == 0)
    return ov_error_set (err, OV_EUSAGE, 0, "%s: nothing to put", file);
  return 0;
}

int
cli_put (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "message", required_argument, NULL, 'm' },
                                      { "batch", required_argument, NULL, 'b' },
                                      { 0 } };
  struct put_args a = { 0 };
  int i = cli_parse (c, argc, argv, "put", &put_opts, "m:", lo, put_opt, &a, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (a.batch ? argc - i != 1 : (argc - i < 2 || argc - i > 3))
    return cli_usage_error (&put_opts, "put", err,
                            a.batch ? "expected NAME with --batch" : "expected NAME LOCAL [REMOTE]"), -1;
  struct ov_put_item one = { argv[i + 1], argc - i == 3 ? argv[i + 2] : NULL };
  struct ov_put_item *items = a.batch ? NULL : &one;
  size_t n = a.batch ? 0 : 1;
  struct ov_buf batch = { 0 };
  int r = a.batch ? read_batch (a.batch, &batch, &items, &n, err) : 0;
  if (r == 0)
    r = cli_open_store (c, err);
  struct ov_snapshot snap;
  struct ov_progress progress = { 0 };
  if (r == 0)
    {
      ov_progress_start (&progress, "put");
      r = ov_put (c->store, argv[i], items, n, a.message, &progress, &snap, err);
      ov_progress_end (&progress);
    }
  if (a.batch)
    free (items);
  buf_free (&batch);
  if (r < 0)
    return -1;
  ov_packs_consolidate_later (c->store);
  cli_print_snapshot (c, &snap);
  snapshot_free (&snap);
  return 0;
}
