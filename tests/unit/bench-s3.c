/* Throughput of the S3 client (scripts/bench-s3 builds and runs it with a
 * server's environment): PUT and GET of COUNT small objects and of BIG
 * large ones, one at a time and in a parallel batch. A benchmark, not a
 * test. Usage: bench-s3 PREFIX SMALL_COUNT SMALL_SIZE BIG_COUNT BIG_SIZE PARALLEL */
#include "s3.h"

#include <stdio.h>

static struct ov_s3 *s3;

static void
die (ov_error_t e)
{
  fprintf (stderr, "bench-s3: %s\n", e ? e->msg : "failed");
  exit (1);
}

static void
report (const char *what, size_t n, size_t size, double t)
{
  printf ("%-34s %6zu x %9zu B  %7.3f s  %8.1f MB/s  %8.0f req/s\n", what, n, size, t,
          (double) n * size / t / 1e6, n / t);
}

static void
run (const char *prefix, size_t n, size_t size, int parallel, const char *label)
{
  ov_error_t e = NULL;
  uint8_t *data = xmalloc (size);
  for (size_t i = 0; i < size; i++)
    data[i] = (uint8_t) (i * 131 + 7);
  char (*keys)[64] = xcalloc (n, sizeof *keys);
  for (size_t i = 0; i < n; i++)
    snprintf (keys[i], sizeof keys[i], "%s/%s/%06zu", prefix, label, i);
  struct ov_s3_op *ops = xcalloc (n, sizeof *ops);
  struct ov_buf *bufs = xcalloc (n, sizeof *bufs);
  char what[64];

  double t0 = mono_seconds ();
  for (size_t i = 0; i < n; i++)
    if (ov_s3_put (s3, keys[i], data, size, 0, NULL, &e) < 0)
      die (e);
  snprintf (what, sizeof what, "PUT %s, one at a time", label);
  report (what, n, size, mono_seconds () - t0);

  for (size_t i = 0; i < n; i++)
    ops[i] = (struct ov_s3_op) { .kind = OV_S3_OP_PUT, .key = keys[i], .data = data, .n = size };
  t0 = mono_seconds ();
  if (ov_s3_batch (s3, ops, n, &e) < 0)
    die (e);
  snprintf (what, sizeof what, "PUT %s, batch of %d", label, parallel);
  report (what, n, size, mono_seconds () - t0);

  t0 = mono_seconds ();
  for (size_t i = 0; i < n; i++)
    {
      bufs[i].len = 0;
      if (ov_s3_get (s3, keys[i], 0, OV_S3_TO_END, &bufs[i], size, &e) < 0 || bufs[i].len != size)
        die (e);
    }
  snprintf (what, sizeof what, "GET %s, one at a time", label);
  report (what, n, size, mono_seconds () - t0);

  for (size_t i = 0; i < n; i++)
    {
      bufs[i].len = 0;
      ops[i] = (struct ov_s3_op) { .kind = OV_S3_OP_GET, .key = keys[i], .len = OV_S3_TO_END,
                                   .buf = &bufs[i], .max = size };
    }
  t0 = mono_seconds ();
  if (ov_s3_batch (s3, ops, n, &e) < 0)
    die (e);
  snprintf (what, sizeof what, "GET %s, batch of %d", label, parallel);
  report (what, n, size, mono_seconds () - t0);
  for (size_t i = 0; i < n; i++)
    if (bufs[i].len != size || memcmp (bufs[i].data, data, size))
      die (NULL);

  for (size_t i = 0; i < n; i++)
    buf_free (&bufs[i]);
  free (bufs);
  free (ops);
  free (keys);
  free (data);
}

int
main (int argc, char **argv)
{
  if (argc != 7)
    {
      fprintf (stderr, "usage: bench-s3 PREFIX SMALL_COUNT SMALL_SIZE BIG_COUNT BIG_SIZE PARALLEL\n");
      return 2;
    }
  char env[16];
  snprintf (env, sizeof env, "%s", argv[6]);
  setenv ("OVSNAP_S3_PARALLEL", env, 1);
  ov_error_t e = NULL;
  s3 = ov_s3_open (NULL, &e);
  if (s3 == NULL)
    die (e);
  int parallel = atoi (argv[6]);
  run (argv[1], strtoull (argv[2], NULL, 10), strtoull (argv[3], NULL, 10), parallel, "small");
  run (argv[1], strtoull (argv[4], NULL, 10), strtoull (argv[5], NULL, 10), parallel, "big");
  ov_s3_close (s3);
  return 0;
}
