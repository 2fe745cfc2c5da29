/* The S3 operations over the transfer engine: GET, HEAD, PUT, DELETE,
 * LIST, the server's clock, the conditional-PUT probe, and batches. */
#include "s3-int.h"

#include <fcntl.h>
#include <stdio.h>
#include <strings.h>
#include <sys/random.h>

#define GET_MAX_DEFAULT (1ull << 30)

static void
get_req (struct s3_req *r, const char *key, uint64_t off, uint64_t len)
{
  *r = (struct s3_req) { .method = "GET", .key = key, .fd = -1, .date = -1 };
  if (off != 0 || len != OV_S3_TO_END)
    {
      r->ranged = true;
      r->off = off;
      r->len = len;
    }
}

/* a range that cannot be asked for is refused here, not by the server */
static int
check_range (struct ov_s3 *s, const char *key, uint64_t off, uint64_t len, ov_error_t *err)
{
  if (len == 0 || (len != OV_S3_TO_END && off + len < off))
    {
      cleanup_free char *k = s3_key_name (s, key, NULL);
      return ov_error_set (err, OV_EUSAGE, ERANGE, "S3 GET %s: empty or overflowing range", k);
    }
  return 0;
}

static uint64_t
range_limit (uint64_t len, uint64_t max)
{
  return len != OV_S3_TO_END && len < max ? len : max;
}

int
ov_s3_get (struct ov_s3 *s, const char *key, uint64_t off, uint64_t len, struct ov_buf *out,
           size_t max, ov_error_t *err)
{
  if (check_range (s, key, off, len, err) < 0)
    return -1;
  struct s3_req r;
  get_req (&r, key, off, len);
  r.buf = out;
  r.limit = range_limit (len, max ? max : GET_MAX_DEFAULT);
  int rc = s3_run_one (s, &r, err);
  s3_req_clean (&r);
  return rc;
}

int
ov_s3_get_fd (struct ov_s3 *s, const char *key, uint64_t off, uint64_t len, int fd, off_t fd_off,
              uint64_t *got, ov_error_t *err)
{
  if (check_range (s, key, off, len, err) < 0)
    return -1;
  struct s3_req r;
  get_req (&r, key, off, len);
  r.fd = fd;
  r.fd_off = fd_off;
  r.limit = range_limit (len, UINT64_MAX);
  int rc = s3_run_one (s, &r, err);
  if (got)
    *got = r.got;
  s3_req_clean (&r);
  return rc;
}

int
ov_s3_head (struct ov_s3 *s, const char *key, struct ov_s3_object *out, ov_error_t *err)
{
  struct s3_req r = { .method = "HEAD", .key = key, .fd = -1, .date = -1 };
  int rc = s3_run_one (s, &r, err);
  if (rc == 0 && out)
    *out = r.obj;
  s3_req_clean (&r);
  return rc;
}

/* the ETag of a single-part PUT is the MD5 of what the server stored */
static int
check_etag (struct ov_s3 *s, struct s3_req *r, const char *hex, ov_error_t *err)
{
  if (r->obj.etag[0] == '\0' || strcasecmp (r->obj.etag, hex) == 0)
    return 0;
  s3_fail (s, r, OV_ECORRUPT, 0, "the server stored ETag %s, not the MD5 %s of what was sent",
           r->obj.etag, hex);
  if (err && *err == NULL)
    *err = r->err;
  else
    ov_error_free (&r->err);
  r->err = NULL;
  return -1;
}

static void
put_req (struct s3_req *r, const char *key, const void *data, size_t n, int flags)
{
  *r = (struct s3_req) { .method = "PUT", .key = key, .fd = -1, .date = -1 };
  r->body = data;
  r->body_len = n;
  r->flags = flags;
}

int
ov_s3_put (struct ov_s3 *s, const char *key, const void *data, size_t n, int flags,
           struct ov_s3_object *out, ov_error_t *err)
{
  struct s3_req r;
  put_req (&r, key, data, n, flags);
  char b64[32], hex[33];
  s3_md5 (data, n, b64, hex);
  int rc = s3_run_one (s, &r, err);
  if (rc == 0)
    rc = check_etag (s, &r, hex, err);
  if (rc == 0 && out)
    {
      *out = r.obj;
      out->size = n;
    }
  s3_req_clean (&r);
  return rc;
}

int
ov_s3_delete (struct ov_s3 *s, const char *key, ov_error_t *err)
{
  struct s3_req r = { .method = "DELETE", .key = key, .fd = -1, .date = -1 };
  int rc = s3_run_one (s, &r, err);
  s3_req_clean (&r);
  if (rc < 0 && *err && (*err)->code == OV_ENOTFOUND)
    {
      /* S3 answers 204 for a missing key; Swift's s3api says NoSuchKey */
      if (strstr ((*err)->msg, "NoSuchBucket") == NULL)
        {
          ov_error_free (err);
          return 0;
        }
    }
  return rc;
}

int
ov_s3_server_time (struct ov_s3 *s, int64_t *out, ov_error_t *err)
{
  struct s3_req r = { .method = "HEAD", .fd = -1, .date = -1 };
  r.what = "HEAD (bucket)";
  int rc = s3_run_one (s, &r, err);
  if (rc == 0 && r.date < 0)
    {
      s3_fail (s, &r, 0, EPROTO, "the answer has no Date header");
      *err = r.err;
      r.err = NULL;
      rc = -1;
    }
  if (rc == 0)
    *out = r.date;
  s3_req_clean (&r);
  return rc;
}

static int
probe (struct ov_s3 *s, ov_error_t *err)
{
  uint8_t rnd[12];
  if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd)
    return ov_error (err, errno, "S3 probe: getrandom");
  char key[64] = ".probe/";
  for (size_t i = 0; i < sizeof rnd; i++)
    snprintf (key + 7 + 2 * i, 3, "%02x", rnd[i]);
  static const char body[] = "ovsnap conditional-PUT probe\n";
  ov_error_t e = NULL;
  if (ov_s3_put (s, key, body, sizeof body - 1, OV_S3_IF_ABSENT, NULL, &e) < 0)
    {
      if (e->errnum == ENOTSUP)
        {
          ov_error_free (&e);
          return 0;
        }
      *err = e;
      return ov_error_prefix (err, "probing conditional PUTs");
    }
  int again = ov_s3_put (s, key, body, sizeof body - 1, OV_S3_IF_ABSENT, NULL, &e);
  int verdict;
  if (again == 0)
    verdict = 0; /* the header was ignored: as good as unsupported */
  else if (e->errnum == EEXIST)
    verdict = 1;
  else if (e->errnum == ENOTSUP)
    verdict = 0;
  else
    verdict = -1;
  ov_error_t d = NULL;
  ov_s3_delete (s, key, &d);
  ov_error_free (&d);
  if (verdict < 0)
    {
      *err = e;
      return ov_error_prefix (err, "probing conditional PUTs");
    }
  ov_error_free (&e);
  return verdict;
}

int
ov_s3_conditional_put (struct ov_s3 *s, ov_error_t *err)
{
  pthread_mutex_lock (&s->probe_lock);
  if (s->conditional < 0)
    {
      int v = probe (s, err);
      if (v >= 0)
        s->conditional = v;
    }
  int v = s->conditional;
  pthread_mutex_unlock (&s->probe_lock);
  return v < 0 ? -1 : v;
}

void
ov_s3_list_free (struct ov_s3_list *l)
{
  for (size_t i = 0; i < l->n; i++)
    free (l->entries[i].key);
  for (size_t i = 0; i < l->nprefixes; i++)
    free (l->prefixes[i]);
  free (l->entries);
  free (l->prefixes);
  *l = (struct ov_s3_list) { 0 };
}

int
ov_s3_list (struct ov_s3 *s, const char *prefix, const char *delimiter, struct ov_s3_list *out,
            ov_error_t *err)
{
  *out = (struct ov_s3_list) { 0 };
  cleanup_free char *full = xasprintf ("%s%s", s->prefix, prefix ? prefix : "");
  cleanup_free char *token = NULL;
  for (int page_no = 0;; page_no++)
    {
      struct ov_buf body = { 0 };
      struct s3_req r = { .method = "GET", .what = "LIST", .fd = -1, .date = -1 };
      r.buf = &body;
      r.limit = 32u << 20;
      r.query = s3_query ("list-type", "2", "encoding-type", "url", "prefix", full,
                          delimiter ? "delimiter" : NULL, delimiter,
                          token ? "continuation-token" : NULL, token, NULL);
      if (delimiter == NULL && token)
        {
          free (r.query);
          r.query = s3_query ("list-type", "2", "encoding-type", "url", "prefix", full,
                              "continuation-token", token, NULL);
        }
      int rc = s3_run_one (s, &r, err);
      s3_req_clean (&r);
      struct s3_list_page pg = { 0 };
      if (rc == 0)
        rc = s3_xml_list_page (s, body.data, body.len, out, &pg, err);
      buf_free (&body);
      if (rc < 0)
        {
          ov_s3_list_free (out);
          return ov_error_prefix (err, "listing '%.200s'", prefix ? prefix : "");
        }
      if (!pg.truncated)
        {
          free (pg.token);
          return 0;
        }
      if (pg.token == NULL || *pg.token == '\0' || (token && strcmp (token, pg.token) == 0))
        {
          free (pg.token);
          ov_s3_list_free (out);
          return ov_error (err, EPROTO, "S3 LIST %s: page %d is truncated but gives no new "
                           "continuation token", s->name, page_no + 1);
        }
      free (token);
      token = pg.token;
    }
}

int
ov_s3_batch (struct ov_s3 *s, struct ov_s3_op *ops, size_t n, ov_error_t *err)
{
  if (n == 0)
    return 0;
  struct s3_req *reqs = xcalloc (n, sizeof *reqs);
  struct s3_req **pr = xcalloc (n, sizeof *pr);
  char (*md5)[33] = xcalloc (n, sizeof *md5);
  size_t nrun = 0;
  for (size_t i = 0; i < n; i++)
    {
      struct ov_s3_op *o = &ops[i];
      struct s3_req *r = &reqs[i];
      o->err = NULL;
      o->got = 0;
      *r = (struct s3_req) { .fd = -1 };
      if (o->kind == OV_S3_OP_GET && check_range (s, o->key, o->off, o->len, &r->err) < 0)
        continue;
      pr[nrun++] = r;
      if (o->kind == OV_S3_OP_GET)
        {
          get_req (r, o->key, o->off, o->len);
          r->buf = o->buf;
          r->fd = o->buf ? -1 : o->fd;
          r->fd_off = o->fd_off;
          r->limit = range_limit (o->len, o->buf ? (o->max ? o->max : GET_MAX_DEFAULT) : UINT64_MAX);
        }
      else
        {
          put_req (r, o->key, o->data, o->n, o->flags);
          char b64[32];
          s3_md5 (o->data, o->n, b64, md5[i]);
        }
    }
  s3_run (s, pr, nrun, s->parallel);
  size_t failed = 0;
  struct ov_s3_op *first = NULL;
  for (size_t i = 0; i < n; i++)
    {
      struct ov_s3_op *o = &ops[i];
      struct s3_req *r = &reqs[i];
      if (r->err == NULL && o->kind == OV_S3_OP_PUT)
        check_etag (s, r, md5[i], &o->err);
      else
        {
          o->err = r->err;
          r->err = NULL;
        }
      o->got = r->got;
      o->attempts = r->attempts;
      o->obj = r->obj;
      if (o->kind == OV_S3_OP_PUT)
        o->obj.size = o->n;
      if (o->err && failed++ == 0)
        first = o;
      s3_req_clean (r);
    }
  free (reqs);
  free (pr);
  free (md5);
  if (failed)
    {
      ov_error_set (err, first->err->code, 0, "%zu of %zu S3 transfers failed; the first: %s",
                    failed, n, first->err->msg);
      if (err && *err)
        (*err)->errnum = first->err->errnum;
      return -1;
    }
  return 0;
}

void
ov_s3_batch_free (struct ov_s3_op *ops, size_t n)
{
  for (size_t i = 0; i < n; i++)
    ov_error_free (&ops[i].err);
}
