/* Inside the S3 client: the handle, one request as the transfer engine
 * runs it, and the helpers the operation files share. */
#ifndef OVSNAP_S3_INT_H
#define OVSNAP_S3_INT_H

#include "s3.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>

struct ov_s3
{
  char *endpoint; /* without a trailing '/' */
  char *region, *access_key, *secret_key, *session_token;
  char *bucket;
  char *prefix;   /* "" or "PREFIX/" */
  char *sigv4;    /* "aws:amz:REGION:s3" */
  char *name;     /* for messages */
  double timeout, stall;
  int parallel;
  uint64_t multipart_threshold, part_size;
  CURLSH *share; /* connections and DNS, shared by every call's transfers */
  pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
  pthread_mutex_t probe_lock;
  int conditional; /* probe result: -1 not probed yet, 0 no, 1 yes */
  /* atomic counters (s3-xfer.c), in a shared mapping: a forked worker
   * (the sandboxed commit) counts into its parent's */
  struct ov_s3_stats *stats;
};

/* One HTTP request; the engine (s3-xfer.c) runs a set of them, retrying
 * each until it succeeds, fails for good or runs out of time. */
struct s3_req
{
  /* what to send */
  const char *method;  /* GET PUT HEAD DELETE POST */
  const char *what;    /* the operation in messages: "GET", "multipart upload part 3", .. */
  const char *key;     /* below the store's prefix; NULL: the bucket itself */
  const char *raw_key; /* the full object key, ignoring the prefix (probe keys), or NULL */
  char *query;         /* sorted and encoded (s3_query), or NULL; freed by s3_req_clean */
  bool ranged;
  uint64_t off, len;   /* Range when ranged (len OV_S3_TO_END: open-ended) */
  int flags;           /* OV_S3_IF_ABSENT */
  const uint8_t *body; /* PUT and POST */
  size_t body_len;
  const char *content_type;
  /* where a 2xx body goes: buf (from its current end) or fd at fd_off; else dropped */
  struct ov_buf *buf;
  int fd;
  off_t fd_off;
  uint64_t limit; /* most body bytes accepted */

  /* what came back */
  long status;
  uint64_t got;
  struct ov_s3_object obj; /* etag, mtime and size (Content-Length, or the total of Content-Range) */
  int64_t date;            /* the Date header, -1 if none */
  bool have_range;
  uint64_t range_start, range_end, range_total;
  ov_error_t err;

  /* the engine's */
  CURL *h;
  struct curl_slist *hdrs;
  char *url;
  int attempts;
  double started, deadline, not_before;
  size_t body_pos, buf_base;
  int sink_errno;          /* the body could not be stored: no retry */
  struct ov_buf errbody;   /* a non-2xx body (S3's XML error), bounded */
  char cause[512];         /* the last attempt's failure, for the final message */
  char request_id[80];
  char errbuf[CURL_ERROR_SIZE];
  int state;
  struct s3_req *next_wait;
};

/* Runs n requests, at most parallel at once; each ends with err NULL or
 * set. Returns how many failed. */
size_t s3_run (struct ov_s3 *s, struct s3_req **reqs, size_t n, int parallel);
int s3_run_one (struct ov_s3 *s, struct s3_req *r, ov_error_t *err);
void s3_req_clean (struct s3_req *r);

/* "k1=v1&k2=v2" from NULL-terminated name, value pairs: sorted by name,
 * both percent-encoded as SigV4 wants them (curl 7.88 signs the query
 * string as given). A NULL value gives "name=". */
char *s3_query (const char *name, ...) __attribute__ ((sentinel));
/* S3's URI encoding; '/' kept when keep_slash */
void s3_encode (struct ov_buf *b, const char *s, bool keep_slash);
/* "s3://bucket/prefix/key" with unprintable bytes escaped, for messages */
char *s3_key_name (const struct ov_s3 *s, const char *key, const char *raw_key);
/* Content-MD5 (base64) and the hex digest of n bytes */
void s3_md5 (const void *p, size_t n, char b64[32], char hex[33]);
/* Fills *err for a request that failed for good (the engine's message). */
int s3_fail (struct ov_s3 *s, struct s3_req *r, int code, int errnum, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

/* XML (libxml2) */
struct s3_xml_error
{
  char code[64];
  char message[256];
};
/* S3's <Error> body: 0 if it was one, else -1 */
int s3_xml_error (const uint8_t *p, size_t n, struct s3_xml_error *out);
/* the text of the first element named name directly under the root named
 * root (NULL: any root); NULL if absent or the body is not XML */
char *s3_xml_field (const uint8_t *p, size_t n, const char *root, const char *name);
struct s3_list_page
{
  bool truncated;
  char *token;
};
/* one ListObjectsV2 page appended to out (keys url-decoded, the store's
 * prefix stripped: a key outside it is refused) */
int s3_xml_list_page (struct ov_s3 *s, const uint8_t *p, size_t n, struct ov_s3_list *out,
                      struct s3_list_page *page, ov_error_t *err);
void s3_xml_init (void);

int64_t s3_parse_iso8601 (const char *s);

#endif
