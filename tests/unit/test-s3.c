/* The S3 client against a real server (scripts/s3-server, Swift with
 * s3api), started by tests/t6000-s3-client.sh, which passes the
 * environment (AWS_*, OVSNAP_STORE) and: test-s3 S3-SERVER-SCRIPT DIR
 * SCRATCH. The server is stopped and restarted in the middle of a batch.
 * Prints TAP; every error message is checked for the credentials. */
#include "s3.h"
#include "tap.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

static const char *server, *dir, *scratch;
static struct ov_s3 *s3;
static char secrets[4][256];

/* no message may hold a credential */
static int leaks;

static void
check_msg (ov_error_t e)
{
  if (e == NULL)
    return;
  printf ("# error: %s\n", e->msg);
  for (size_t i = 0; i < ARRAY_SIZE (secrets); i++)
    if (secrets[i][0] && strstr (e->msg, secrets[i]))
      leaks++;
}

static void
fill (uint8_t *p, size_t n, uint64_t seed)
{
  for (size_t i = 0; i < n; i++)
    {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      p[i] = seed >> 56;
    }
}

static int
server_cmd (const char *verb)
{
  char cmd[4096];
  snprintf (cmd, sizeof cmd, "'%s' %s '%s' >/dev/null 2>>'%s/server.err'", server, verb, dir,
            scratch);
  return system (cmd);
}

static void
test_basic (void)
{
  ov_error_t e = NULL;
  const char msg[] = "hello, s3\n";
  struct ov_s3_object o = { 0 };
  ok (ov_s3_put (s3, "basic/hello", msg, sizeof msg - 1, 0, &o, &e) == 0, "put a small object");
  check_msg (e), ov_error_free (&e);
  ok (strcmp (o.etag, "b3ae52ea6dc96c9bda8d8e6ab9ba0ac3") == 0 || strlen (o.etag) == 32,
      "put returns the object's ETag");
  struct ov_s3_object h = { 0 };
  ok (ov_s3_head (s3, "basic/hello", &h, &e) == 0 && h.size == sizeof msg - 1
          && strcmp (h.etag, o.etag) == 0 && h.mtime > 0,
      "head gives size, ETag and Last-Modified");
  check_msg (e), ov_error_free (&e);
  struct ov_buf b = { 0 };
  ok (ov_s3_get (s3, "basic/hello", 0, OV_S3_TO_END, &b, 0, &e) == 0 && b.len == sizeof msg - 1
          && memcmp (b.data, msg, b.len) == 0,
      "get returns the bytes put");
  check_msg (e), ov_error_free (&e);
  int64_t now = 0;
  ok (ov_s3_server_time (s3, &now, &e) == 0 && now >= h.mtime - 5 && now < h.mtime + 3600,
      "the server's clock is its Date header, in line with Last-Modified");
  check_msg (e), ov_error_free (&e);
  ok (ov_s3_delete (s3, "basic/hello", &e) == 0, "delete");
  check_msg (e), ov_error_free (&e);
  ok (ov_s3_head (s3, "basic/hello", &h, &e) < 0 && e->code == OV_ENOTFOUND,
      "head of a deleted key: not found (exit 3)");
  check_msg (e), ov_error_free (&e);
  b.len = 0;
  ok (ov_s3_get (s3, "basic/hello", 0, OV_S3_TO_END, &b, 0, &e) < 0 && e->code == OV_ENOTFOUND
          && strstr (e->msg, "basic/hello") && strstr (e->msg, "NoSuchKey"),
      "get of a missing key: not found, naming the key and S3's code");
  check_msg (e), ov_error_free (&e);
  ok (ov_s3_delete (s3, "basic/hello", &e) == 0, "deleting a missing key succeeds");
  check_msg (e), ov_error_free (&e);
  buf_free (&b);
}

static void
test_ranges (void)
{
  ov_error_t e = NULL;
  uint8_t data[1000];
  fill (data, sizeof data, 7);
  ok (ov_s3_put (s3, "range/obj", data, sizeof data, 0, NULL, &e) == 0, "put 1000 bytes");
  check_msg (e), ov_error_free (&e);
  struct
  {
    uint64_t off, len, want_off, want_len;
  } cases[] = {
    { 0, 1, 0, 1 },                       /* first byte */
    { 999, 1, 999, 1 },                   /* last byte */
    { 0, 1000, 0, 1000 },                 /* exactly all */
    { 500, OV_S3_TO_END, 500, 500 },      /* open-ended */
    { 990, 100, 990, 10 },                /* past the end: up to the end */
    { 1, 998, 1, 998 },                   /* all but the edges */
  };
  int good = 1;
  for (size_t i = 0; i < ARRAY_SIZE (cases); i++)
    {
      struct ov_buf b = { 0 };
      if (ov_s3_get (s3, "range/obj", cases[i].off, cases[i].len, &b, 0, &e) < 0
          || b.len != cases[i].want_len || memcmp (b.data, data + cases[i].want_off, b.len))
        {
          printf ("# range %llu+%llu: got %zu bytes\n", (unsigned long long) cases[i].off,
                  (unsigned long long) cases[i].len, b.len);
          good = 0;
        }
      check_msg (e), ov_error_free (&e);
      buf_free (&b);
    }
  ok (good, "ranged gets at the edges: first, last, all, open-ended, past the end");
  struct ov_buf b = { 0 };
  ok (ov_s3_get (s3, "range/obj", 1000, 1, &b, 0, &e) < 0 && e->errnum == ERANGE,
      "a range starting at the end is refused (ERANGE)");
  check_msg (e), ov_error_free (&e);
  ok (ov_s3_get (s3, "range/obj", 0, OV_S3_TO_END, &b, 999, &e) < 0 && e->errnum == EFBIG,
      "a body larger than the caller's limit is refused");
  check_msg (e), ov_error_free (&e);
  buf_free (&b);

  char path[4096];
  snprintf (path, sizeof path, "%s/range.out", scratch);
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  uint64_t got = 0;
  uint8_t back[300];
  ok (fd >= 0 && ov_s3_get_fd (s3, "range/obj", 100, 300, fd, 50, &got, &e) == 0 && got == 300
          && pread (fd, back, 300, 50) == 300 && memcmp (back, data + 100, 300) == 0,
      "a ranged get into a file at an offset");
  check_msg (e), ov_error_free (&e);
  close (fd);
}

static const char *odd_keys[] = {
  "odd/a b",        "odd/ünïcödé ☃", "odd/plus+sign", "odd/100%",    "odd/a=b&c=d",
  "odd/what?x=1",   "odd/tilde~x",   "odd/semi;colon", "odd/hash#frag", "odd/dots/../x",
  "odd/quote\"'",   "odd/star*",     "odd/%2F",        "odd/<tag>",     "odd/back\\slash",
};

static int
cmpstr (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
test_odd_keys (void)
{
  ov_error_t e = NULL;
  int good = 1;
  for (size_t i = 0; i < ARRAY_SIZE (odd_keys); i++)
    {
      const char *k = odd_keys[i];
      struct ov_buf b = { 0 };
      if (ov_s3_put (s3, k, k, strlen (k), 0, NULL, &e) < 0
          || ov_s3_get (s3, k, 0, OV_S3_TO_END, &b, 0, &e) < 0 || b.len != strlen (k)
          || memcmp (b.data, k, b.len))
        {
          printf ("# key '%s' did not round-trip\n", k);
          good = 0;
        }
      check_msg (e), ov_error_free (&e);
      buf_free (&b);
    }
  ok (good, "keys with spaces, unicode, + % = & ? # ; quotes and .. round-trip");
  struct ov_s3_list l;
  const char *sorted[ARRAY_SIZE (odd_keys)];
  memcpy (sorted, odd_keys, sizeof sorted);
  qsort (sorted, ARRAY_SIZE (sorted), sizeof sorted[0], cmpstr);
  int same = ov_s3_list (s3, "odd/", NULL, &l, &e) == 0 && l.n == ARRAY_SIZE (odd_keys);
  for (size_t i = 0; same && i < l.n; i++)
    same = strcmp (l.entries[i].key, sorted[i]) == 0 && l.entries[i].size == strlen (sorted[i]);
  ok (same, "the listing gives exactly those keys back, in byte order");
  check_msg (e), ov_error_free (&e);
  ov_s3_list_free (&l);
}

static void
test_list (void)
{
  ov_error_t e = NULL;
  enum
  {
    N = 1105
  };
  struct ov_s3_op *ops = xcalloc (N + 3, sizeof *ops);
  char (*keys)[32] = xcalloc (N + 3, sizeof *keys);
  for (int i = 0; i < N; i++)
    {
      snprintf (keys[i], sizeof keys[i], "many/k%05d", i);
      ops[i] = (struct ov_s3_op) { .kind = OV_S3_OP_PUT, .key = keys[i], .data = keys[i],
                                   .n = strlen (keys[i]) };
    }
  snprintf (keys[N], sizeof keys[0], "many/sub1/x");
  snprintf (keys[N + 1], sizeof keys[0], "many/sub1/y");
  snprintf (keys[N + 2], sizeof keys[0], "many/sub2/z");
  for (int i = N; i < N + 3; i++)
    ops[i] = (struct ov_s3_op) { .kind = OV_S3_OP_PUT, .key = keys[i], .data = "x", .n = 1 };
  ok (ov_s3_batch (s3, ops, N + 3, &e) == 0, "a batch of 1108 parallel PUTs");
  check_msg (e), ov_error_free (&e);
  ov_s3_batch_free (ops, N + 3);
  struct ov_s3_list l;
  int good = ov_s3_list (s3, "many/k", NULL, &l, &e) == 0 && l.n == N;
  for (size_t i = 0; good && i < l.n; i++)
    good = strcmp (l.entries[i].key, keys[i]) == 0 && l.entries[i].size == strlen (keys[i])
           && l.entries[i].mtime > 0 && strlen (l.entries[i].etag) == 32;
  ok (good, "a list of 1105 keys follows the continuation token past 1000");
  check_msg (e), ov_error_free (&e);
  ov_s3_list_free (&l);
  good = ov_s3_list (s3, "many/", "/", &l, &e) == 0 && l.n == N && l.nprefixes == 2
         && strcmp (l.prefixes[0], "many/sub1/") == 0 && strcmp (l.prefixes[1], "many/sub2/") == 0;
  ok (good, "with a delimiter: the keys and the common prefixes");
  check_msg (e), ov_error_free (&e);
  ov_s3_list_free (&l);
  free (ops);
  free (keys);
}

#define BIG (70u << 20)

static uint8_t *big;

static void
test_multipart (void)
{
  ov_error_t e = NULL;
  big = xmalloc (BIG);
  fill (big, BIG, 42);
  char path[4096];
  snprintf (path, sizeof path, "%s/big.in", scratch);
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  ok (fd >= 0 && write_all (fd, big, BIG) == 0, "a 70 MiB source file");
  struct ov_s3_object o = { 0 };
  ok (ov_s3_put_fd (s3, "big/obj", fd, 0, BIG, 0, &o, &e) == 0 && strchr (o.etag, '-'),
      "put_fd of 70 MiB is a multipart upload (ETag with a part count)");
  check_msg (e), ov_error_free (&e);
  printf ("# multipart ETag %s\n", o.etag);
  close (fd);
  struct ov_s3_object h = { 0 };
  ok (ov_s3_head (s3, "big/obj", &h, &e) == 0 && h.size == BIG, "head: the whole size");
  check_msg (e), ov_error_free (&e);
  snprintf (path, sizeof path, "%s/big.out", scratch);
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  uint64_t got = 0;
  uint8_t *back = xmalloc (BIG);
  ok (fd >= 0 && ov_s3_get_fd (s3, "big/obj", 0, OV_S3_TO_END, fd, 0, &got, &e) == 0
          && got == BIG && pread_all (fd, back, BIG, 0) == BIG && memcmp (back, big, BIG) == 0,
      "get_fd of the whole object gives every byte back");
  check_msg (e), ov_error_free (&e);
  close (fd);
  free (back);
  struct ov_buf b = { 0 };
  uint64_t at = (16u << 20) - 100; /* across the first part boundary */
  ok (ov_s3_get (s3, "big/obj", at, 200, &b, 0, &e) == 0 && b.len == 200
          && memcmp (b.data, big + at, 200) == 0,
      "a range across a part boundary");
  check_msg (e), ov_error_free (&e);
  buf_free (&b);
}

static void
test_batch (void)
{
  ov_error_t e = NULL;
  enum
  {
    N = 64
  };
  struct ov_s3_op ops[N];
  struct ov_buf bufs[N];
  memset (bufs, 0, sizeof bufs);
  for (int i = 0; i < N; i++)
    ops[i] = (struct ov_s3_op) { .kind = OV_S3_OP_GET, .key = "big/obj",
                                 .off = (uint64_t) i * (BIG / N) + i, .len = 65536,
                                 .buf = &bufs[i] };
  int good = ov_s3_batch (s3, ops, N, &e) == 0;
  for (int i = 0; good && i < N; i++)
    good = bufs[i].len == 65536 && memcmp (bufs[i].data, big + ops[i].off, 65536) == 0
           && ops[i].obj.size == BIG;
  ok (good, "a batch of 64 ranged GETs in parallel, each with its own bytes");
  check_msg (e), ov_error_free (&e);
  for (int i = 0; i < N; i++)
    buf_free (&bufs[i]);
  ov_s3_batch_free (ops, N);
}

static void
test_conditional (void)
{
  ov_error_t e = NULL;
  int v = ov_s3_conditional_put (s3, &e);
  ok (v == 0 || v == 1, "the conditional-PUT probe answers");
  check_msg (e), ov_error_free (&e);
  printf ("# conditional PUT (If-None-Match: *): %s\n", v == 1 ? "supported" : "unsupported");
  ok (ov_s3_conditional_put (s3, &e) == v, "the probe's answer is kept");
  ov_s3_put (s3, "cond/x", "a", 1, 0, NULL, &e);
  ov_error_free (&e);
  int rc = ov_s3_put (s3, "cond/x", "b", 1, OV_S3_IF_ABSENT, NULL, &e);
  ok (rc < 0 && e->errnum == (v == 1 ? EEXIST : ENOTSUP),
      "a conditional PUT over an existing key fails as the probe said (EEXIST or ENOTSUP)");
  check_msg (e), ov_error_free (&e);
  struct ov_s3_list l;
  ok (ov_s3_list (s3, ".probe/", NULL, &l, &e) == 0 && l.n == 0, "the probe left no object");
  check_msg (e), ov_error_free (&e);
  ov_s3_list_free (&l);
}

/* the batch below runs in this thread while the main one stops and
 * restarts the server */
struct batch_run
{
  struct ov_s3_op *ops;
  size_t n;
  int rc;
  ov_error_t err;
};

static void *
run_batch (void *p)
{
  struct batch_run *b = p;
  b->rc = ov_s3_batch (s3, b->ops, b->n, &b->err);
  return NULL;
}

/* GETs the proxy has logged so far under a key prefix */
static int
logged (const char *what)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/log/proxy.log", dir);
  FILE *f = fopen (path, "r");
  if (f == NULL)
    return 0;
  char line[4096];
  int n = 0;
  while (fgets (line, sizeof line, f))
    if (strstr (line, what))
      n++;
  fclose (f);
  return n;
}

static void
test_restart (void)
{
  ov_error_t e = NULL;
  enum
  {
    N = 1500
  };
  struct ov_s3_op *ops = xcalloc (N, sizeof *ops);
  struct ov_buf *bufs = xcalloc (N, sizeof *bufs);
  char (*keys)[32] = xcalloc (N, sizeof *keys);
  for (int i = 0; i < N; i++)
    {
      snprintf (keys[i], sizeof keys[i], "many/k%05d", i % 1105);
      ops[i] = (struct ov_s3_op) { .kind = OV_S3_OP_GET, .key = keys[i], .off = 0,
                                   .len = OV_S3_TO_END, .buf = &bufs[i] };
    }
  int before = logged ("GET /ovsnap/many/k");
  struct batch_run br = { ops, N, 0, NULL };
  pthread_t t;
  pthread_create (&t, NULL, run_batch, &br);
  /* stop once the server has served a hundred of them */
  for (int i = 0; i < 3000 && logged ("GET /ovsnap/many/k") < before + 100; i++)
    usleep (5000);
  int stopped = server_cmd ("stop") == 0;
  usleep (500 * 1000);
  int started = server_cmd ("start") == 0;
  pthread_join (t, NULL);
  ok (stopped && started, "the server stopped and started again during the batch");
  int good = br.rc == 0, retried = 0;
  for (int i = 0; good && i < N; i++)
    {
      good = bufs[i].len == strlen (keys[i]) && memcmp (bufs[i].data, keys[i], bufs[i].len) == 0;
      retried += ops[i].attempts > 1;
    }
  check_msg (br.err);
  ov_error_free (&br.err);
  printf ("# %d of %d GETs were retried\n", retried, N);
  ok (good && retried > 0, "every GET of the batch succeeds, some after retries");
  ov_s3_batch_free (ops, N);
  for (int i = 0; i < N; i++)
    buf_free (&bufs[i]);
  free (ops);
  free (bufs);
  free (keys);

  /* with the server gone for good, a bounded time, then a clear error */
  ok (server_cmd ("stop") == 0, "the server stopped");
  struct ov_s3_config c = { .endpoint = getenv ("AWS_ENDPOINT_URL"),
                            .region = getenv ("AWS_REGION"),
                            .access_key = getenv ("AWS_ACCESS_KEY_ID"),
                            .secret_key = getenv ("AWS_SECRET_ACCESS_KEY"),
                            .bucket = "ovsnap",
                            .timeout = 2 };
  struct ov_s3 *quick = ov_s3_open_config (&c, &e);
  struct ov_buf b = { 0 };
  double t0 = mono_seconds ();
  int rc = quick ? ov_s3_get (quick, "many/k00001", 0, OV_S3_TO_END, &b, 0, &e) : 0;
  double took = mono_seconds () - t0;
  printf ("# gave up after %.1f s (bound 2 s)\n", took);
  ok (rc < 0 && strstr (e->msg, "GET") && strstr (e->msg, "s3://ovsnap/many/k00001")
          && strstr (e->msg, c.endpoint) && strstr (e->msg, "gave up after"),
      "server down: after the bounded time, an error naming operation, key and endpoint");
  check_msg (e), ov_error_free (&e);
  buf_free (&b);
  ov_s3_close (quick);
  ok (server_cmd ("start") == 0, "the server started again");
  b.len = 0;
  ok (ov_s3_get (s3, "many/k00001", 0, OV_S3_TO_END, &b, 0, &e) == 0 && b.len == 11,
      "after the restart, the same data is there");
  check_msg (e), ov_error_free (&e);
  buf_free (&b);
}

/* a server that accepts and then says nothing (SIGSTOP): the stall limit
 * cuts the request, the retry gets through once it answers again */
static void *
cont_later (void *p)
{
  usleep (2500 * 1000);
  kill (-*(pid_t *) p, SIGCONT);
  return NULL;
}

static void
test_hung (void)
{
  ov_error_t e = NULL;
  char path[4096];
  snprintf (path, sizeof path, "%s/run/proxy.pid", dir);
  FILE *f = fopen (path, "r");
  int pid = 0;
  if (f == NULL || fscanf (f, "%d", &pid) != 1 || pid <= 1)
    {
      ok (0, "the proxy's pid");
      if (f)
        fclose (f);
      return;
    }
  fclose (f);
  struct ov_s3_config c = { .endpoint = getenv ("AWS_ENDPOINT_URL"),
                            .region = getenv ("AWS_REGION"),
                            .access_key = getenv ("AWS_ACCESS_KEY_ID"),
                            .secret_key = getenv ("AWS_SECRET_ACCESS_KEY"),
                            .bucket = "ovsnap",
                            .timeout = 30,
                            .stall = 1 };
  struct ov_s3 *h = ov_s3_open_config (&c, &e);
  pid_t pg = pid;
  ok (h && kill (-pg, SIGSTOP) == 0, "the proxy hangs (SIGSTOP)");
  pthread_t t;
  pthread_create (&t, NULL, cont_later, &pg);
  struct ov_buf b = { 0 };
  int rc = ov_s3_get (h, "many/k00002", 0, OV_S3_TO_END, &b, 0, &e);
  pthread_join (t, NULL);
  kill (-pg, SIGCONT);
  ok (rc == 0 && b.len == 11 && memcmp (b.data, "many/k00002", 11) == 0,
      "a hung request is cut by the stall limit and retried");
  check_msg (e), ov_error_free (&e);
  buf_free (&b);
  ov_s3_close (h);
}

static void
test_denied (void)
{
  ov_error_t e = NULL;
  struct ov_s3_config c = { .endpoint = getenv ("AWS_ENDPOINT_URL"),
                            .region = getenv ("AWS_REGION"),
                            .access_key = getenv ("AWS_ACCESS_KEY_ID"),
                            .secret_key = "Wr0ng-Secret-Never-Printed",
                            .session_token = "Session-Token-Never-Printed",
                            .bucket = "ovsnap" };
  snprintf (secrets[1], sizeof secrets[1], "%s", c.secret_key);
  snprintf (secrets[2], sizeof secrets[2], "%s", c.session_token);
  struct ov_s3 *bad = ov_s3_open_config (&c, &e);
  int rc = bad ? ov_s3_put (bad, "denied/x", "x", 1, 0, NULL, &e) : 0;
  ok (rc < 0 && e->errnum == EACCES && e->code == OV_EGENERIC
          && (strstr (e->msg, "SignatureDoesNotMatch") || strstr (e->msg, "AccessDenied")
              || strstr (e->msg, "InvalidToken"))
          && strstr (e->msg, "HTTP 403") && strstr (e->msg, "denied/x"),
      "a wrong secret: HTTP 403 with S3's code, naming the key");
  check_msg (e), ov_error_free (&e);
  ov_s3_close (bad);

  c.secret_key = getenv ("AWS_SECRET_ACCESS_KEY");
  c.session_token = NULL;
  c.bucket = "ovsnap-no-such-bucket";
  struct ov_s3 *nb = ov_s3_open_config (&c, &e);
  struct ov_buf b = { 0 };
  rc = nb ? ov_s3_get (nb, "x", 0, OV_S3_TO_END, &b, 0, &e) : 0;
  ok (rc < 0 && e->code == OV_ENOTFOUND && strstr (e->msg, "no such bucket")
          && strstr (e->msg, "ovsnap-no-such-bucket"),
      "a missing bucket: not found, named");
  check_msg (e), ov_error_free (&e);
  int64_t t;
  rc = nb ? ov_s3_server_time (nb, &t, &e) : 0;
  ok (rc < 0 && e->code == OV_ENOTFOUND && strstr (e->msg, "no such bucket"),
      "the bucket check (HEAD) names a missing bucket too");
  check_msg (e), ov_error_free (&e);
  buf_free (&b);
  ov_s3_close (nb);

  setenv ("AWS_ENDPOINT_URL", "http://user:Pw-In-Url@127.0.0.1:1", 1);
  snprintf (secrets[0], sizeof secrets[0], "Pw-In-Url");
  struct ov_s3 *u = ov_s3_open ("s3://ovsnap", &e);
  ok (u == NULL && e->code == OV_EUSAGE, "credentials inside AWS_ENDPOINT_URL are refused");
  check_msg (e), ov_error_free (&e);
  ov_s3_close (u);
}

int
main (int argc, char **argv)
{
  if (argc != 4)
    {
      fprintf (stderr, "usage: test-s3 S3-SERVER-SCRIPT DIR SCRATCH (with the server's env)\n");
      return 2;
    }
  server = argv[1], dir = argv[2], scratch = argv[3];
  setvbuf (stdout, NULL, _IOLBF, 0);
  ov_error_t e = NULL;
  const char *secret = getenv ("AWS_SECRET_ACCESS_KEY");
  snprintf (secrets[3], sizeof secrets[3], "%s", secret ? secret : "");
  s3 = ov_s3_open (NULL, &e);
  ok (s3 != NULL, "open the store named by OVSNAP_STORE and AWS_*");
  check_msg (e), ov_error_free (&e);
  if (s3 == NULL)
    return 1;
  printf ("# %s\n", ov_s3_name (s3));
  test_basic ();
  test_ranges ();
  test_odd_keys ();
  test_list ();
  test_multipart ();
  test_batch ();
  test_conditional ();
  test_restart ();
  test_hung ();
  test_denied ();
  ok (leaks == 0, "no error message holds a credential");
  ov_s3_close (s3);
  free (big);
  printf ("1..%d\n", tests);
  return failures ? 1 : 0;
}
