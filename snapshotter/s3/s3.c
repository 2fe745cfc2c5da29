/* The S3 client's handle: configuration from the AWS conventions, the
 * shared connection cache, and the encoding helpers every request uses. */
#include "s3-int.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>

#define MIB (1024ull * 1024)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void
global_init (void)
{
  global_rc = curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
  s3_xml_init ();
}

static void
share_lock (CURL *h UNUSED, curl_lock_data data, curl_lock_access a UNUSED, void *ud)
{
  struct ov_s3 *s = ud;
  pthread_mutex_lock (&s->locks[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void
share_unlock (CURL *h UNUSED, curl_lock_data data, void *ud)
{
  struct ov_s3 *s = ud;
  pthread_mutex_unlock (&s->locks[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

/* S3 bucket names: 3-63 of a-z 0-9 . - (what path-style addressing needs) */
static bool
valid_bucket (const char *b)
{
  size_t n = strlen (b);
  if (n < 3 || n > 63 || b[0] == '.' || b[0] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!(islower ((unsigned char) b[i]) || isdigit ((unsigned char) b[i]) || b[i] == '.'
          || b[i] == '-'))
      return false;
  return true;
}

static int
check_endpoint (const char *e, ov_error_t *err)
{
  const char *rest;
  if (strncmp (e, "http://", 7) == 0)
    rest = e + 7;
  else if (strncmp (e, "https://", 8) == 0)
    rest = e + 8;
  else
    return ov_error_set (err, OV_EUSAGE, 0, "S3 endpoint: wants http:// or https://, not '%.64s'",
                         e);
  size_t host = strcspn (rest, "/?#");
  /* user:password@ would put a credential where messages show the endpoint */
  if (memchr (rest, '@', host))
    return ov_error_set (err, OV_EUSAGE, 0,
                         "S3 endpoint: credentials in AWS_ENDPOINT_URL are refused "
                         "(use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
  if (host == 0)
    return ov_error_set (err, OV_EUSAGE, 0, "S3 endpoint: no host in '%.64s'", e);
  if (strpbrk (rest, "?#") || strpbrk (rest, " \t\r\n"))
    return ov_error_set (err, OV_EUSAGE, 0,
                         "S3 endpoint: no query, fragment or spaces allowed in '%.64s'", e);
  return 0;
}

static double
env_seconds (const char *name, double dflt, ov_error_t *err, int *bad)
{
  const char *v = getenv (name);
  if (v == NULL || *v == '\0')
    return dflt;
  char *end;
  errno = 0;
  double d = strtod (v, &end);
  if (errno || *end || !(d > 0) || d > 86400 * 7)
    {
      *bad = 1;
      ov_error_set (err, OV_EUSAGE, 0, "%s: wants seconds (0 < N <= 604800), not '%.32s'", name, v);
      return 0;
    }
  return d;
}

static uint64_t
env_u64 (const char *name, uint64_t dflt, uint64_t lo, uint64_t hi, ov_error_t *err, int *bad)
{
  const char *v = getenv (name);
  if (v == NULL || *v == '\0')
    return dflt;
  char *end;
  errno = 0;
  unsigned long long u = strtoull (v, &end, 10);
  if (errno || *end || !isdigit ((unsigned char) *v) || u < lo || u > hi)
    {
      *bad = 1;
      ov_error_set (err, OV_EUSAGE, 0, "%s: wants a number from %llu to %llu, not '%.32s'", name,
                    (unsigned long long) lo, (unsigned long long) hi, v);
      return 0;
    }
  return u;
}

struct ov_s3 *
ov_s3_open (const char *url, ov_error_t *err)
{
  if (url == NULL)
    url = getenv ("OVSNAP_STORE");
  if (url == NULL || *url == '\0')
    return ov_error_set (err, OV_EUSAGE, 0, "S3 store: no s3://BUCKET given (OVSNAP_STORE)"),
           NULL;
  if (strncmp (url, "s3://", 5) != 0)
    return ov_error_set (err, OV_EUSAGE, 0, "S3 store: wants s3://BUCKET[/PREFIX], not '%.64s'",
                         url),
           NULL;
  const char *b = url + 5;
  const char *slash = strchr (b, '/');
  cleanup_free char *bucket = slash ? xstrndup (b, slash - b) : xstrdup (b);
  const char *prefix = slash ? slash + 1 : "";

  struct ov_s3_config c = { 0 };
  c.endpoint = getenv ("AWS_ENDPOINT_URL");
  if (c.endpoint == NULL || *c.endpoint == '\0')
    {
      /* AWS itself: path-style on the regional endpoint */
      const char *r = getenv ("AWS_REGION");
      static __thread char aws[128];
      snprintf (aws, sizeof aws, "https://s3.%s.amazonaws.com", r && *r ? r : "us-east-1");
      c.endpoint = aws;
    }
  c.region = getenv ("AWS_REGION");
  c.access_key = getenv ("AWS_ACCESS_KEY_ID");
  c.secret_key = getenv ("AWS_SECRET_ACCESS_KEY");
  c.session_token = getenv ("AWS_SESSION_TOKEN");
  c.bucket = bucket;
  c.prefix = prefix;
  int bad = 0;
  c.timeout = env_seconds ("OVSNAP_S3_TIMEOUT", 60, err, &bad);
  c.stall = env_seconds ("OVSNAP_S3_STALL", 15, err, &bad);
  c.parallel = env_u64 ("OVSNAP_S3_PARALLEL", 8, 1, 256, err, &bad);
  c.multipart_threshold
      = env_u64 ("OVSNAP_S3_MULTIPART_THRESHOLD", 64 * MIB, 5 * MIB, 5ull << 30, err, &bad);
  c.part_size = env_u64 ("OVSNAP_S3_PART_SIZE", 16 * MIB, 5 * MIB, 5ull << 30, err, &bad);
  if (bad)
    return NULL;
  return ov_s3_open_config (&c, err);
}

struct ov_s3 *
ov_s3_open_config (const struct ov_s3_config *c, ov_error_t *err)
{
  pthread_once (&global_once, global_init);
  if (global_rc < 0)
    return ov_error (err, 0, "S3: curl_global_init failed"), NULL;
  if (c->endpoint == NULL || check_endpoint (c->endpoint, err) < 0)
    return c->endpoint ? NULL : (ov_error_set (err, OV_EUSAGE, 0, "S3: no endpoint"), NULL);
  if (c->bucket == NULL || !valid_bucket (c->bucket))
    return ov_error_set (err, OV_EUSAGE, 0,
                         "S3 store: bucket '%.64s': wants 3-63 of a-z 0-9 . - (path-style)",
                         c->bucket ? c->bucket : ""),
           NULL;
  bool have_id = c->access_key && *c->access_key, have_secret = c->secret_key && *c->secret_key;
  if (have_id != have_secret)
    return ov_error_set (err, OV_EUSAGE, 0, "S3: %s is set but %s is not",
                         have_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                         have_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID"),
           NULL;
  const char *region = c->region && *c->region ? c->region : "us-east-1";
  for (const char *p = region; *p; p++)
    if (!(isalnum ((unsigned char) *p) || *p == '-'))
      return ov_error_set (err, OV_EUSAGE, 0, "S3: region '%.32s': wants a-z 0-9 -", region),
             NULL;
  const char *prefix = c->prefix ? c->prefix : "";
  while (*prefix == '/')
    prefix++;
  if (strlen (prefix) > 512)
    return ov_error_set (err, OV_EUSAGE, 0, "S3 store: prefix longer than 512 bytes"), NULL;

  struct ov_s3 *s = xcalloc (1, sizeof *s);
  s->stats = mmap (NULL, sizeof *s->stats, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s->stats == MAP_FAILED)
    {
      free (s);
      return ov_error (err, errno, "S3: counters"), NULL;
    }
  s->endpoint = xstrdup (c->endpoint);
  size_t el = strlen (s->endpoint);
  while (el > 0 && s->endpoint[el - 1] == '/')
    s->endpoint[--el] = '\0';
  s->region = xstrdup (region);
  s->access_key = have_id ? xstrdup (c->access_key) : NULL;
  s->secret_key = have_id ? xstrdup (c->secret_key) : NULL;
  s->session_token = c->session_token && *c->session_token ? xstrdup (c->session_token) : NULL;
  s->bucket = xstrdup (c->bucket);
  size_t pl = strlen (prefix);
  while (pl > 0 && prefix[pl - 1] == '/')
    pl--;
  s->prefix = pl ? xasprintf ("%.*s/", (int) pl, prefix) : xstrdup ("");
  s->sigv4 = xasprintf ("aws:amz:%s:s3", s->region);
  s->name = xasprintf ("s3://%s%s%.*s at %s", s->bucket, pl ? "/" : "", (int) pl, s->prefix,
                       s->endpoint);
  s->timeout = c->timeout > 0 ? c->timeout : 60;
  s->stall = c->stall > 0 ? c->stall : 15;
  s->parallel = c->parallel > 0 ? c->parallel : 8;
  s->multipart_threshold = c->multipart_threshold ? c->multipart_threshold : 64 * MIB;
  s->part_size = c->part_size >= 5 * MIB ? c->part_size : 16 * MIB;
  s->conditional = -1;
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init (&s->locks[i], NULL);
  pthread_mutex_init (&s->probe_lock, NULL);
  s->share = curl_share_init ();
  if (s->share == NULL)
    {
      ov_s3_close (s);
      return ov_error (err, ENOMEM, "S3: curl_share_init"), NULL;
    }
  curl_share_setopt (s->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt (s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt (s->share, CURLSHOPT_USERDATA, s);
  curl_share_setopt (s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt (s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  return s;
}

static void
wipe_free (char *p)
{
  if (p)
    {
      explicit_bzero (p, strlen (p));
      free (p);
    }
}

static void
stats_report (struct ov_s3 *s)
{
  const char *path = getenv ("OVSNAP_S3_STATS");
  if (path == NULL || *path == '\0')
    return;
  struct ov_s3_stats c;
  ov_s3_stats (s, &c);
  if (c.requests == 0)
    return;
  char line[256];
  int n = snprintf (line, sizeof line,
                    "s3 requests=%" PRIu64 " retries=%" PRIu64 " failed=%" PRIu64 " down=%" PRIu64
                    " up=%" PRIu64 "\n",
                    c.requests, c.retries, c.failed, c.bytes_down, c.bytes_up);
  int fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0)
    {
      ssize_t w = write (fd, line, n); /* a test's counter: a failure changes nothing */
      (void) w;
      close (fd);
    }
}

void
ov_s3_close (struct ov_s3 *s)
{
  if (s == NULL)
    return;
  stats_report (s);
  munmap (s->stats, sizeof *s->stats);
  if (s->share)
    curl_share_cleanup (s->share);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy (&s->locks[i]);
  pthread_mutex_destroy (&s->probe_lock);
  free (s->endpoint);
  free (s->region);
  wipe_free (s->access_key);
  wipe_free (s->secret_key);
  wipe_free (s->session_token);
  free (s->bucket);
  free (s->prefix);
  free (s->sigv4);
  free (s->name);
  free (s);
}

const char *
ov_s3_name (const struct ov_s3 *s)
{
  return s->name;
}

void
s3_encode (struct ov_buf *b, const char *s, bool keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      if (isalnum (*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~'
          || (keep_slash && *p == '/'))
        buf_u8 (b, *p);
      else
        {
          uint8_t e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
          buf_put (b, e, 3);
        }
    }
}

struct qpair
{
  const char *name, *value;
};

static int
qcmp (const void *a, const void *b)
{
  return strcmp (((const struct qpair *) a)->name, ((const struct qpair *) b)->name);
}

char *
s3_query (const char *name, ...)
{
  struct qpair q[16];
  size_t n = 0;
  va_list ap;
  va_start (ap, name);
  for (const char *k = name; k && n < ARRAY_SIZE (q); k = va_arg (ap, const char *))
    {
      q[n].name = k;
      q[n].value = va_arg (ap, const char *);
      n++;
    }
  va_end (ap);
  /* names here are plain ASCII: sorting them raw is sorting them encoded */
  qsort (q, n, sizeof *q, qcmp);
  struct ov_buf b = { 0 };
  for (size_t i = 0; i < n; i++)
    {
      if (i)
        buf_u8 (&b, '&');
      s3_encode (&b, q[i].name, false);
      buf_u8 (&b, '=');
      if (q[i].value)
        s3_encode (&b, q[i].value, false);
    }
  buf_u8 (&b, 0);
  return (char *) b.data;
}

char *
s3_key_name (const struct ov_s3 *s, const char *key, const char *raw_key)
{
  struct ov_buf b = { 0 };
  buf_put (&b, "s3://", 5);
  buf_put (&b, s->bucket, strlen (s->bucket));
  if (key || raw_key)
    {
      buf_u8 (&b, '/');
      if (!raw_key)
        buf_put (&b, s->prefix, strlen (s->prefix));
      const unsigned char *k = (const unsigned char *) (raw_key ? raw_key : key);
      for (size_t i = 0; k[i] && i < 1100; i++)
        {
          if (k[i] < 0x20 || k[i] == 0x7f || k[i] == '\\')
            {
              char e[8];
              snprintf (e, sizeof e, "\\x%02x", k[i]);
              buf_put (&b, e, 4);
            }
          else
            buf_u8 (&b, k[i]);
        }
    }
  buf_u8 (&b, 0);
  return (char *) b.data;
}

void
s3_md5 (const void *p, size_t n, char b64[32], char hex[33])
{
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  EVP_Digest (p, n, d, &dl, EVP_md5 (), NULL);
  EVP_EncodeBlock ((unsigned char *) b64, d, 16);
  for (int i = 0; i < 16; i++)
    snprintf (hex + 2 * i, 3, "%02x", d[i]);
}

int
s3_fail (struct ov_s3 *s, struct s3_req *r, int code, int errnum, const char *fmt, ...)
{
  va_list ap;
  char *cause;
  va_start (ap, fmt);
  if (vasprintf (&cause, fmt, ap) < 0)
    abort ();
  va_end (ap);
  cleanup_free char *obj = s3_key_name (s, r->key, r->raw_key);
  ov_error_set (&r->err, code, errnum, "S3 %s %s at %s: %s", r->what ? r->what : r->method, obj,
                s->endpoint, cause);
  free (cause);
  return -1;
}
