/* The transfer engine: a set of requests over one curl multi handle, at
 * most `parallel` in flight, each retried with exponential backoff and
 * full jitter until its deadline (OVSNAP_S3_TIMEOUT after its first
 * attempt). Every request of the client goes through here, a lone GET as
 * much as a batch of a thousand ranges, so there is one retry policy. */
#include "s3-int.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>

#define BACKOFF_BASE 0.1 /* seconds before the first retry, at most */
#define BACKOFF_CAP 2.0  /* the most any one wait may be */
#define ERRBODY_MAX (64 * 1024)

enum
{
  R_QUEUED,
  R_RUNNING,
  R_WAITING,
  R_DONE,
};

static double
jitter (void)
{
  /* splitmix64 over a shared counter: cheap, thread-safe, good enough to
   * spread the retries of many clients */
  static _Atomic uint64_t state;
  uint64_t z = atomic_fetch_add (&state, 0x9E3779B97F4A7C15ull) + (uint64_t) now_ns ();
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double) (z >> 11) / (double) (1ull << 53);
}

void
s3_req_clean (struct s3_req *r)
{
  if (r->h)
    curl_easy_cleanup (r->h);
  r->h = NULL;
  curl_slist_free_all (r->hdrs);
  r->hdrs = NULL;
  free (r->url);
  r->url = NULL;
  free (r->query);
  r->query = NULL;
  buf_free (&r->errbody);
}

static void
trim_copy (char *dst, size_t cap, const char *v, size_t n)
{
  while (n && (*v == ' ' || *v == '\t'))
    v++, n--;
  while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
    n--;
  if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
    v++, n -= 2;
  if (n >= cap)
    n = cap - 1;
  for (size_t i = 0; i < n; i++)
    dst[i] = (unsigned char) v[i] < 0x20 ? '?' : v[i];
  dst[n] = '\0';
}

static bool
parse_u64 (const char *s, uint64_t *out)
{
  if (*s < '0' || *s > '9')
    return false;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++)
    {
      if (v > (UINT64_MAX - 9) / 10)
        return false;
      v = v * 10 + (*s - '0');
    }
  *out = v;
  return *s == '\0';
}

static size_t
on_header (char *p, size_t size, size_t nmemb, void *ud)
{
  struct s3_req *r = ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp (p, "HTTP/", 5) == 0)
    {
      /* a new response (after a 100 Continue, say): forget the last one's */
      r->obj = (struct ov_s3_object) { 0 };
      r->have_range = false;
      r->date = -1;
      r->request_id[0] = '\0';
      return n;
    }
  const char *colon = memchr (p, ':', n);
  if (colon == NULL)
    return n;
  size_t nl = colon - p;
  const char *v = colon + 1;
  size_t vl = n - nl - 1;
  char val[256];
  trim_copy (val, sizeof val, v, vl);
#define IS(h) (nl == sizeof h - 1 && strncasecmp (p, h, nl) == 0)
  if (IS ("etag"))
    trim_copy (r->obj.etag, sizeof r->obj.etag, v, vl);
  else if (IS ("x-amz-request-id"))
    trim_copy (r->request_id, sizeof r->request_id, v, vl);
  else if (IS ("content-length"))
    {
      uint64_t u;
      if (parse_u64 (val, &u) && !r->have_range)
        r->obj.size = u;
    }
  else if (IS ("content-range"))
    {
      /* bytes START-END/TOTAL */
      unsigned long long a, b, t;
      int used = 0;
      if (sscanf (val, "bytes %llu-%llu/%llu%n", &a, &b, &t, &used) == 3 && val[used] == '\0'
          && a <= b && b < t)
        {
          r->have_range = true;
          r->range_start = a, r->range_end = b, r->range_total = t;
          r->obj.size = t;
        }
    }
  else if (IS ("last-modified"))
    r->obj.mtime = curl_getdate (val, NULL);
  else if (IS ("date"))
    r->date = curl_getdate (val, NULL);
#undef IS
  return n;
}

static size_t
on_body (char *p, size_t size, size_t nmemb, void *ud)
{
  struct s3_req *r = ud;
  size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo (r->h, CURLINFO_RESPONSE_CODE, &code);
  /* an error's body; or a reply to a request that asked for no bytes
   * (a PUT, a DELETE): Swift answers racing PUTs of one key 200 with a
   * body now and then. Kept, bounded, for judge. */
  if (code < 200 || code > 299 || (r->buf == NULL && r->fd < 0))
    {
      size_t room = ERRBODY_MAX - r->errbody.len;
      buf_put (&r->errbody, p, n < room ? n : room);
      return n;
    }
  if (n > r->limit - r->got)
    {
      r->sink_errno = EFBIG;
      return 0;
    }
  if (r->buf)
    buf_put (r->buf, p, n);
  else if (r->fd >= 0)
    {
      if (pwrite_all (r->fd, p, n, r->fd_off + (off_t) r->got) < 0)
        {
          r->sink_errno = errno ? errno : EIO;
          return 0;
        }
    }
  r->got += n;
  return n;
}

static size_t
on_read (char *p, size_t size, size_t nmemb, void *ud)
{
  struct s3_req *r = ud;
  size_t n = size * nmemb, left = r->body_len - r->body_pos;
  if (n > left)
    n = left;
  memcpy (p, r->body + r->body_pos, n);
  r->body_pos += n;
  return n;
}

static int
on_seek (void *ud, curl_off_t off, int origin)
{
  struct s3_req *r = ud;
  if (origin != SEEK_SET || off < 0 || (uint64_t) off > r->body_len)
    return CURL_SEEKFUNC_CANTSEEK;
  r->body_pos = off;
  return CURL_SEEKFUNC_OK;
}

static int
add_header (struct s3_req *r, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
add_header (struct s3_req *r, const char *fmt, ...)
{
  va_list ap;
  char *h;
  va_start (ap, fmt);
  if (vasprintf (&h, fmt, ap) < 0)
    abort ();
  va_end (ap);
  struct curl_slist *l = curl_slist_append (r->hdrs, h);
  explicit_bzero (h, strlen (h)); /* a session token may be in it */
  free (h);
  if (l == NULL)
    abort ();
  r->hdrs = l;
  return 0;
}

/* The easy handle for r, set up once; an attempt only resets the state. */
static int
setup (struct ov_s3 *s, struct s3_req *r)
{
  const char *k = r->raw_key ? r->raw_key : r->key;
  if (k && strlen (k) + strlen (r->raw_key ? "" : s->prefix) > 1024)
    return s3_fail (s, r, OV_EUSAGE, 0, "key longer than 1024 bytes");
  struct ov_buf u = { 0 };
  buf_put (&u, s->endpoint, strlen (s->endpoint));
  buf_u8 (&u, '/');
  buf_put (&u, s->bucket, strlen (s->bucket));
  if (k)
    {
      buf_u8 (&u, '/');
      if (!r->raw_key)
        s3_encode (&u, s->prefix, true);
      s3_encode (&u, k, true);
    }
  if (r->query && *r->query)
    {
      buf_u8 (&u, '?');
      buf_put (&u, r->query, strlen (r->query));
    }
  buf_u8 (&u, 0);
  r->url = (char *) u.data;

  CURL *h = r->h = curl_easy_init ();
  if (h == NULL)
    return s3_fail (s, r, 0, ENOMEM, "curl_easy_init");
  curl_easy_setopt (h, CURLOPT_URL, r->url);
  curl_easy_setopt (h, CURLOPT_SHARE, s->share);
  curl_easy_setopt (h, CURLOPT_PRIVATE, (char *) r);
  curl_easy_setopt (h, CURLOPT_PATH_AS_IS, 1L); /* a key may hold "/../" */
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_USERAGENT, "ovsnap-s3/1");
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt (h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt (h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_TIME, (long) (s->stall + 0.999));
  if (s->access_key)
    {
      curl_easy_setopt (h, CURLOPT_AWS_SIGV4, s->sigv4);
      curl_easy_setopt (h, CURLOPT_USERNAME, s->access_key);
      curl_easy_setopt (h, CURLOPT_PASSWORD, s->secret_key);
    }
  /* curl 7.88 would hash the payload only for POSTFIELDS; S3 (and Swift)
   * accept an unsigned payload, whose integrity Content-MD5 covers */
  add_header (r, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  /* no "Expect:" to turn 100-continue off: curl 7.88 signs that empty
   * header, does not send it, and the signature no longer matches */
  if (s->session_token)
    add_header (r, "x-amz-security-token: %s", s->session_token);
  if (r->ranged)
    {
      if (r->len == OV_S3_TO_END)
        add_header (r, "Range: bytes=%llu-", (unsigned long long) r->off);
      else
        add_header (r, "Range: bytes=%llu-%llu", (unsigned long long) r->off,
                    (unsigned long long) (r->off + r->len - 1));
    }
  if (r->flags & OV_S3_IF_ABSENT)
    add_header (r, "If-None-Match: *");

  if (strcmp (r->method, "HEAD") == 0)
    curl_easy_setopt (h, CURLOPT_NOBODY, 1L);
  else if (strcmp (r->method, "PUT") == 0 || strcmp (r->method, "POST") == 0)
    {
      char b64[32], hex[33];
      s3_md5 (r->body, r->body_len, b64, hex);
      add_header (r, "Content-MD5: %s", b64);
      add_header (r, "Content-Type: %s",
                  r->content_type ? r->content_type : "application/octet-stream");
      curl_easy_setopt (h, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt (h, CURLOPT_READDATA, r);
      curl_easy_setopt (h, CURLOPT_SEEKFUNCTION, on_seek);
      curl_easy_setopt (h, CURLOPT_SEEKDATA, r);
      if (r->method[1] == 'U')
        {
          curl_easy_setopt (h, CURLOPT_UPLOAD, 1L);
          curl_easy_setopt (h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) r->body_len);
        }
      else
        {
          curl_easy_setopt (h, CURLOPT_POST, 1L);
          curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_len);
        }
    }
  else if (strcmp (r->method, "GET") != 0)
    curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, r->method);
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, r->hdrs);
  if (r->buf)
    r->buf_base = r->buf->len;
  return 0;
}

/* reset what an attempt left behind and bound it by the deadline */
static void
begin_attempt (struct ov_s3 *s, struct s3_req *r, double now)
{
  if (r->attempts == 0)
    {
      r->started = now;
      r->deadline = now + s->timeout;
    }
  r->attempts++;
  r->status = 0;
  r->got = 0;
  r->body_pos = 0;
  r->sink_errno = 0;
  r->errbody.len = 0;
  r->errbuf[0] = '\0';
  r->date = -1;
  r->have_range = false;
  r->obj = (struct ov_s3_object) { 0 };
  if (r->buf)
    r->buf->len = r->buf_base;
  long left = (long) ((r->deadline - now) * 1000) + 1;
  curl_easy_setopt (r->h, CURLOPT_TIMEOUT_MS, left);
  curl_easy_setopt (r->h, CURLOPT_CONNECTTIMEOUT_MS, left < 10000 ? left : 10000L);
}

static bool
retryable_curl (CURLcode c)
{
  switch (c)
    {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UPLOAD_FAILED:
      return true;
    default:
      return false;
    }
}

static int
errnum_for_curl (CURLcode c)
{
  switch (c)
    {
    case CURLE_COULDNT_CONNECT:
      return ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
      return ETIMEDOUT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return ECONNRESET;
    case CURLE_COULDNT_RESOLVE_HOST:
      return EHOSTUNREACH;
    default:
      return EIO;
    }
}

enum verdict
{
  V_OK,
  V_RETRY,
  V_FAIL, /* r->err set */
};

/* what one finished attempt means */
static enum verdict
judge (struct ov_s3 *s, struct s3_req *r, CURLcode cc, int *retry_errnum)
{
  curl_easy_getinfo (r->h, CURLINFO_RESPONSE_CODE, &r->status);
  if (r->sink_errno)
    {
      if (r->sink_errno == EFBIG)
        return s3_fail (s, r, 0, EFBIG, "the server sent more than the %llu bytes expected",
                        (unsigned long long) r->limit),
               V_FAIL;
      return s3_fail (s, r, 0, r->sink_errno, "writing the body"), V_FAIL;
    }
  if (cc != CURLE_OK)
    {
      snprintf (r->cause, sizeof r->cause, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror (cc));
      *retry_errnum = errnum_for_curl (cc);
      if (retryable_curl (cc))
        return V_RETRY;
      return s3_fail (s, r, 0, *retry_errnum, "%s", r->cause), V_FAIL;
    }
  long st = r->status;
  if (st >= 200 && st <= 299 && r->errbody.len
      && memmem (r->errbody.data, r->errbody.len, "<Error>", 7) != NULL)
    {
      /* S3 may report a failure in the body of a 200: try again */
      snprintf (r->cause, sizeof r->cause, "HTTP %ld with an error in its body", st);
      *retry_errnum = EIO;
      return V_RETRY;
    }
  if (st >= 200 && st <= 299)
    {
      if (r->ranged && r->off > 0 && st != 206)
        return s3_fail (s, r, 0, EPROTO, "HTTP %ld for a ranged GET (206 expected)", st), V_FAIL;
      if (st == 206)
        {
          if (!r->have_range || r->range_start != r->off
              || r->got != r->range_end - r->range_start + 1)
            return s3_fail (s, r, 0, EPROTO,
                            "HTTP 206 whose Content-Range does not match the %llu bytes "
                            "from %llu received",
                            (unsigned long long) r->got, (unsigned long long) r->off),
                   V_FAIL;
        }
      return V_OK;
    }

  struct s3_xml_error xe = { "", "" };
  if (r->errbody.len)
    s3_xml_error (r->errbody.data, r->errbody.len, &xe);
  char detail[480];
  snprintf (detail, sizeof detail, "HTTP %ld%s%.63s%s%.255s%s%.79s%s", st, xe.code[0] ? " " : "", xe.code,
            xe.message[0] ? ": " : "", xe.message, r->request_id[0] ? " (request " : "",
            r->request_id, r->request_id[0] ? ")" : "");
  memcpy (r->cause, detail, sizeof detail);
  if (st >= 500 || st == 429 || st == 408 || strcmp (xe.code, "RequestTimeout") == 0
      || strcmp (xe.code, "SlowDown") == 0 || strcmp (xe.code, "InternalError") == 0)
    {
      if (st != 501 && st != 507)
        {
          *retry_errnum = st == 429 || strcmp (xe.code, "SlowDown") == 0 ? EAGAIN : EIO;
          return V_RETRY;
        }
    }
  switch (st)
    {
    case 404:
      if (strcmp (xe.code, "NoSuchBucket") == 0 || (r->key == NULL && r->raw_key == NULL))
        return s3_fail (s, r, OV_ENOTFOUND, 0, "no such bucket (%s)", detail), V_FAIL;
      return s3_fail (s, r, OV_ENOTFOUND, 0, "not found (%s)", detail), V_FAIL;
    case 403:
      return s3_fail (s, r, OV_EGENERIC, EACCES, "%s", detail), V_FAIL;
    case 412:
      return s3_fail (s, r, OV_EGENERIC, EEXIST, "%s", detail), V_FAIL;
    case 416:
      return s3_fail (s, r, OV_EGENERIC, ERANGE, "range from byte %llu: %s",
                      (unsigned long long) r->off, detail),
             V_FAIL;
    case 501:
      return s3_fail (s, r, OV_EGENERIC, ENOTSUP, "%s", detail), V_FAIL;
    case 507:
      return s3_fail (s, r, OV_ENOSPACE, ENOSPC, "%s", detail), V_FAIL;
    }
  if (strcmp (xe.code, "EntityTooLarge") == 0)
    return s3_fail (s, r, OV_ENOSPACE, EFBIG, "%s", detail), V_FAIL;
  return s3_fail (s, r, OV_EGENERIC, 0, "%s", detail), V_FAIL;
}

static double
backoff (int attempts)
{
  double ceiling = BACKOFF_BASE;
  for (int i = 1; i < attempts && ceiling < BACKOFF_CAP; i++)
    ceiling *= 2;
  if (ceiling > BACKOFF_CAP)
    ceiling = BACKOFF_CAP;
  return ceiling * jitter ();
}

static void
count (struct ov_s3 *s, const struct s3_req *r, enum verdict v)
{
  struct ov_s3_stats *c = s->stats;
  __atomic_add_fetch (&c->requests, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch (&c->bytes_down, r->got, __ATOMIC_RELAXED);
  __atomic_add_fetch (&c->bytes_up, r->body_pos, __ATOMIC_RELAXED);
  if (v == V_RETRY)
    __atomic_add_fetch (&c->retries, 1, __ATOMIC_RELAXED);
  else if (v == V_FAIL)
    __atomic_add_fetch (&c->failed, 1, __ATOMIC_RELAXED);
}

void
ov_s3_stats (struct ov_s3 *s, struct ov_s3_stats *out)
{
  struct ov_s3_stats *c = s->stats;
  out->requests = __atomic_load_n (&c->requests, __ATOMIC_RELAXED);
  out->retries = __atomic_load_n (&c->retries, __ATOMIC_RELAXED);
  out->failed = __atomic_load_n (&c->failed, __ATOMIC_RELAXED);
  out->bytes_down = __atomic_load_n (&c->bytes_down, __ATOMIC_RELAXED);
  out->bytes_up = __atomic_load_n (&c->bytes_up, __ATOMIC_RELAXED);
}

size_t
s3_run (struct ov_s3 *s, struct s3_req **reqs, size_t n, int parallel)
{
  size_t failed = 0, done = 0, next = 0;
  if (parallel < 1)
    parallel = 1;
  for (size_t i = 0; i < n; i++)
    {
      reqs[i]->state = R_QUEUED;
      reqs[i]->attempts = 0;
      if (reqs[i]->h == NULL && setup (s, reqs[i]) < 0)
        {
          reqs[i]->state = R_DONE;
          failed++, done++;
        }
    }
  CURLM *m = curl_multi_init ();
  if (m == NULL)
    {
      for (size_t i = 0; i < n; i++)
        if (reqs[i]->state != R_DONE)
          {
            s3_fail (s, reqs[i], 0, ENOMEM, "curl_multi_init");
            failed++;
          }
      return failed;
    }
  int running = 0;
  while (done < n)
    {
      double now = mono_seconds ();
      double wake = now + 1.0;
      /* start what may start: waiting ones whose time has come, then new ones */
      for (size_t i = 0; i < n && running < parallel; i++)
        {
          struct s3_req *r = reqs[i];
          if (r->state != R_WAITING)
            continue;
          if (r->not_before > now)
            {
              if (r->not_before < wake)
                wake = r->not_before;
              continue;
            }
          begin_attempt (s, r, now);
          curl_multi_add_handle (m, r->h);
          r->state = R_RUNNING;
          running++;
        }
      while (running < parallel && next < n)
        {
          struct s3_req *r = reqs[next++];
          if (r->state != R_QUEUED)
            continue;
          begin_attempt (s, r, now);
          curl_multi_add_handle (m, r->h);
          r->state = R_RUNNING;
          running++;
        }
      int still;
      curl_multi_perform (m, &still);
      CURLMsg *msg;
      int left;
      while ((msg = curl_multi_info_read (m, &left)))
        {
          if (msg->msg != CURLMSG_DONE)
            continue;
          struct s3_req *r = NULL;
          curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &r);
          CURLcode cc = msg->data.result;
          curl_multi_remove_handle (m, msg->easy_handle);
          running--;
          int rerr = 0;
          enum verdict v = judge (s, r, cc, &rerr);
          count (s, r, v);
          if (v == V_RETRY)
            {
              double t = mono_seconds ();
              double wait = backoff (r->attempts);
              if (t + wait >= r->deadline)
                {
                  /* the last cause's errno, so callers that keep only errno
                   * still say "Connection refused" or "timed out" */
                  s3_fail (s, r, OV_EGENERIC, rerr, "%s; gave up after %d attempt%s in %.1f s",
                           r->cause, r->attempts, r->attempts == 1 ? "" : "s", t - r->started);
                  v = V_FAIL;
                }
              else
                {
                  r->state = R_WAITING;
                  r->not_before = t + wait;
                  continue;
                }
            }
          r->state = R_DONE;
          done++;
          if (v == V_FAIL)
            failed++;
        }
      if (done == n)
        break;
      now = mono_seconds ();
      int ms = (int) ((wake - now) * 1000);
      if (ms < 0)
        ms = 0;
      if (ms > 1000)
        ms = 1000;
      if (running)
        curl_multi_poll (m, NULL, 0, ms, NULL);
      else if (ms)
        usleep (ms * 1000);
    }
  curl_multi_cleanup (m);
  return failed;
}

int
s3_run_one (struct ov_s3 *s, struct s3_req *r, ov_error_t *err)
{
  struct s3_req *one = r;
  if (s3_run (s, &one, 1, 1) == 0)
    return 0;
  if (err && *err == NULL)
    *err = r->err;
  else
    ov_error_free (&r->err);
  r->err = NULL;
  return -1;
}
