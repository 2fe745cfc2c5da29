/* An S3 client: the few operations the S3 store backend needs, over
 * libcurl (SigV4 through CURLOPT_AWS_SIGV4, parallel transfers through the
 * multi interface). It knows S3, not ovsnap: keys are opaque strings below
 * the store's prefix.
 *
 * Configuration follows the AWS conventions (ov_s3_open): AWS_ENDPOINT_URL
 * (path-style addressing), AWS_REGION (default us-east-1),
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; the store is
 * named s3://BUCKET[/PREFIX]. Credentials never appear in an error message.
 *
 * Reliability: every request is retried on connection errors, resets,
 * timeouts, a stalled transfer (no byte for OVSNAP_S3_STALL seconds) and
 * HTTP 500/502/503/504/429 (and S3's RequestTimeout/SlowDown), with
 * exponential backoff and full jitter, until OVSNAP_S3_TIMEOUT seconds
 * (default 60) have passed since the operation began; then the error names
 * the operation, the key, the endpoint and the last cause. 404 is
 * OV_ENOTFOUND (errnum ENOENT); 403 names S3's error code (errnum EACCES);
 * 507 and EntityTooLarge are OV_ENOSPACE.
 *
 * A handle may be used by several threads at once: each call runs its own
 * transfers; connections are shared (and reused) through one curl share. */
#ifndef OVSNAP_S3_H
#define OVSNAP_S3_H

#include "error.h"
#include "util.h"

#include <stdint.h>
#include <sys/types.h>

struct ov_s3;

struct ov_s3_config
{
  const char *endpoint;      /* http[s]://host[:port][/path], no credentials in it */
  const char *region;        /* NULL: us-east-1 */
  const char *access_key;    /* NULL (with secret_key NULL): unsigned requests */
  const char *secret_key;
  const char *session_token; /* NULL or a token for x-amz-security-token */
  const char *bucket;
  const char *prefix;        /* NULL or "": the bucket's root; else keys live below PREFIX/ */
  double timeout;            /* seconds per operation, retries included; 0: 60 */
  double stall;              /* seconds without a byte before a request is retried; 0: 15 */
  int parallel;              /* transfers in flight in a batch; 0: 8 */
  uint64_t multipart_threshold; /* put_fd above this size is a multipart upload; 0: 64 MiB */
  uint64_t part_size;        /* 0: 16 MiB (at least 5 MiB, grown to stay within 10,000 parts) */
};

/* The handle for s3://BUCKET[/PREFIX] (url NULL: $OVSNAP_STORE), configured
 * from the environment: AWS_* as above, OVSNAP_S3_TIMEOUT, OVSNAP_S3_STALL,
 * OVSNAP_S3_PARALLEL, OVSNAP_S3_MULTIPART_THRESHOLD, OVSNAP_S3_PART_SIZE. */
struct ov_s3 *ov_s3_open (const char *url, ov_error_t *err);
struct ov_s3 *ov_s3_open_config (const struct ov_s3_config *c, ov_error_t *err);
/* With OVSNAP_S3_STATS=FILE set, closing appends the handle's counters
 * to FILE as one line: "s3 requests=N retries=N failed=N down=BYTES
 * up=BYTES" (tests and benchmarks count what an operation cost). */
void ov_s3_close (struct ov_s3 *s);

/* What a handle has sent and received so far: every attempt counts. */
struct ov_s3_stats
{
  uint64_t requests, retries, failed, bytes_down, bytes_up;
};
void ov_s3_stats (struct ov_s3 *s, struct ov_s3_stats *out);
/* "s3://BUCKET/PREFIX at ENDPOINT", for messages */
const char *ov_s3_name (const struct ov_s3 *s);

struct ov_s3_object
{
  uint64_t size;
  char etag[128];  /* without the quotes */
  int64_t mtime;   /* Last-Modified, seconds since the epoch, the server's clock */
};

#define OV_S3_TO_END UINT64_MAX

/* GET bytes [off, off + len) of key, appended to out (len OV_S3_TO_END: to
 * the end; off 0 and OV_S3_TO_END: the whole object, no Range header). A
 * range reaching past the end gives the bytes up to the end (S3's rule);
 * one starting at or past the end fails (errnum ERANGE). At most max bytes
 * are accepted (0: 1 GiB), whatever the server sends. */
int ov_s3_get (struct ov_s3 *s, const char *key, uint64_t off, uint64_t len, struct ov_buf *out,
               size_t max, ov_error_t *err);
/* The same into fd at fd_off (pwrite); *got (may be NULL) the bytes written. */
int ov_s3_get_fd (struct ov_s3 *s, const char *key, uint64_t off, uint64_t len, int fd,
                  off_t fd_off, uint64_t *got, ov_error_t *err);
int ov_s3_head (struct ov_s3 *s, const char *key, struct ov_s3_object *out, ov_error_t *err);

enum
{
  /* create only: If-None-Match: *. Fails with errnum EEXIST when the key
   * exists, ENOTSUP when the server does not do conditional writes. */
  OV_S3_IF_ABSENT = 1,
};

/* PUT n bytes under key, with Content-MD5 (the server checks it). *etag
 * (may be NULL) receives the object's ETag. */
int ov_s3_put (struct ov_s3 *s, const char *key, const void *data, size_t n, int flags,
               struct ov_s3_object *out, ov_error_t *err);
/* PUT len bytes of fd from off (pread: fd is not moved). Above the multipart
 * threshold: a multipart upload, parts in parallel, each with Content-MD5;
 * on failure the upload is aborted. OV_S3_IF_ABSENT is not available there. */
int ov_s3_put_fd (struct ov_s3 *s, const char *key, int fd, off_t off, uint64_t len, int flags,
                  struct ov_s3_object *out, ov_error_t *err);
/* DELETE; deleting a missing key succeeds (S3's rule). */
int ov_s3_delete (struct ov_s3 *s, const char *key, ov_error_t *err);

/* Does the server honour If-None-Match: * on PUT? Probed once per handle
 * (a conditional PUT of a fresh key below PREFIX/.probe/, repeated: it
 * must succeed once and then fail with 412; a 501, or a server that
 * ignores the header, is "no"); the probe object is deleted. 1 yes, 0 no,
 * -1 error (the server could not be asked). */
int ov_s3_conditional_put (struct ov_s3 *s, ov_error_t *err);

/* The server's clock (its Date header, on a HEAD of the bucket), seconds
 * since the epoch: grace periods are measured on it, not on a node's. */
int ov_s3_server_time (struct ov_s3 *s, int64_t *out, ov_error_t *err);

struct ov_s3_entry
{
  char *key; /* below the store's prefix */
  uint64_t size;
  int64_t mtime;
  char etag[128];
};

struct ov_s3_list
{
  struct ov_s3_entry *entries; /* in S3's order (UTF-8 binary order of keys) */
  size_t n;
  char **prefixes; /* with a delimiter: the common prefixes ("dir/"), below the store's prefix */
  size_t nprefixes;
};

/* ListObjectsV2 of every key that starts with prefix (below the store's
 * prefix), following continuation tokens; delimiter NULL for a flat list. */
int ov_s3_list (struct ov_s3 *s, const char *prefix, const char *delimiter,
                struct ov_s3_list *out, ov_error_t *err);
void ov_s3_list_free (struct ov_s3_list *l);

/* A batch of GETs and PUTs run concurrently, at most `parallel` in flight,
 * each with its own retries and time bound (counted from its own start). */
enum ov_s3_op_kind
{
  OV_S3_OP_GET,
  OV_S3_OP_PUT,
};

struct ov_s3_op
{
  enum ov_s3_op_kind kind;
  const char *key;
  /* GET: the range (as ov_s3_get) into buf (appended, at most max bytes,
   * 0: 1 GiB), or, with buf NULL, into fd at fd_off */
  uint64_t off, len;
  struct ov_buf *buf;
  size_t max;
  int fd;
  off_t fd_off;
  /* PUT: n bytes at data, with Content-MD5 */
  const void *data;
  size_t n;
  int flags;
  /* results */
  uint64_t got;             /* GET: bytes received */
  int attempts;             /* requests sent for it (1 + retries) */
  struct ov_s3_object obj;  /* PUT: etag; GET: etag, size (of the object), mtime */
  ov_error_t err;           /* NULL on success; freed by ov_s3_batch_free */
};

/* 0 if every op succeeded; else -1 with *err naming how many failed and the
 * first failure (each failed op keeps its own err). */
int ov_s3_batch (struct ov_s3 *s, struct ov_s3_op *ops, size_t n, ov_error_t *err);
void ov_s3_batch_free (struct ov_s3_op *ops, size_t n);

#endif
