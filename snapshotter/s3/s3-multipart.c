/* PUT from a file: one request up to the multipart threshold, above it a
 * multipart upload whose parts go up in parallel (each read with pread,
 * sent with its Content-MD5 and checked against the ETag the server
 * returns). A failed upload is aborted so no parts linger. */
#include "s3-int.h"

#include <stdio.h>
#include <strings.h>

#define MIB (1024ull * 1024)
#define MAX_PARTS 10000
#define PART_MEMORY (128 * MIB) /* the most part buffers held at once */

static int
read_range (int fd, off_t off, uint8_t *p, size_t n, const char *what, ov_error_t *err)
{
  ssize_t got = pread_all (fd, p, n, off);
  if (got < 0)
    return ov_error (err, errno, "S3 PUT %s: reading the source", what);
  if ((size_t) got != n)
    return ov_error (err, 0, "S3 PUT %s: the source ended at byte %lld, before the %zu bytes "
                     "from %lld", what, (long long) (off + got), n, (long long) off);
  return 0;
}

static int
initiate (struct ov_s3 *s, const char *key, char **upload_id, ov_error_t *err)
{
  struct ov_buf body = { 0 };
  struct s3_req r = { .method = "POST", .what = "multipart upload (initiate)", .key = key,
                      .fd = -1, .date = -1 };
  r.query = s3_query ("uploads", NULL, NULL); /* "uploads=": curl 7.88 signs it so */
  r.buf = &body;
  r.limit = 1 << 20;
  int rc = s3_run_one (s, &r, err);
  if (rc == 0)
    {
      *upload_id = s3_xml_field (body.data, body.len, "InitiateMultipartUploadResult", "UploadId");
      if (*upload_id == NULL || **upload_id == '\0' || strlen (*upload_id) > 1024)
        {
          free (*upload_id);
          *upload_id = NULL;
          s3_fail (s, &r, 0, EPROTO, "no UploadId in the answer");
          *err = r.err;
          r.err = NULL;
          rc = -1;
        }
    }
  s3_req_clean (&r);
  buf_free (&body);
  return rc;
}

static void
abort_upload (struct ov_s3 *s, const char *key, const char *upload_id)
{
  struct s3_req r = { .method = "DELETE", .what = "multipart upload (abort)", .key = key,
                      .fd = -1, .date = -1 };
  r.query = s3_query ("uploadId", upload_id, NULL);
  ov_error_t e = NULL;
  s3_run_one (s, &r, &e); /* best effort: the caller reports the first failure */
  ov_error_free (&e);
  s3_req_clean (&r);
}

static int
complete (struct ov_s3 *s, const char *key, const char *upload_id, char (*etags)[40],
          size_t nparts, struct ov_s3_object *obj, ov_error_t *err)
{
  struct ov_buf x = { 0 };
  static const char head[] = "<CompleteMultipartUpload>";
  buf_put (&x, head, sizeof head - 1);
  for (size_t i = 0; i < nparts; i++)
    {
      char part[128];
      int n = snprintf (part, sizeof part, "<Part><PartNumber>%zu</PartNumber><ETag>\"%s\"</ETag></Part>",
                        i + 1, etags[i]);
      buf_put (&x, part, n);
    }
  static const char tail[] = "</CompleteMultipartUpload>";
  buf_put (&x, tail, sizeof tail - 1);

  struct ov_buf body = { 0 };
  struct s3_req r = { .method = "POST", .what = "multipart upload (complete)", .key = key,
                      .fd = -1, .date = -1 };
  r.query = s3_query ("uploadId", upload_id, NULL);
  r.body = x.data;
  r.body_len = x.len;
  r.content_type = "application/xml";
  r.buf = &body;
  r.limit = 1 << 20;
  int rc = s3_run_one (s, &r, err);
  if (rc == 0)
    {
      /* S3 may answer 200 and then report the failure in the body */
      struct s3_xml_error xe;
      char *etag = s3_xml_field (body.data, body.len, "CompleteMultipartUploadResult", "ETag");
      if (s3_xml_error (body.data, body.len, &xe) == 0 || etag == NULL)
        {
          s3_fail (s, &r, 0, EIO, "%s%s%s", xe.code[0] ? xe.code : "no ETag in the answer",
                   xe.message[0] ? ": " : "", xe.message);
          *err = r.err;
          r.err = NULL;
          rc = -1;
        }
      else
        {
          size_t el = strlen (etag);
          const char *e = etag;
          if (el >= 2 && e[0] == '"' && e[el - 1] == '"')
            e++, el -= 2;
          snprintf (obj->etag, sizeof obj->etag, "%.*s", (int) el, e);
        }
      free (etag);
    }
  s3_req_clean (&r);
  buf_free (&body);
  buf_free (&x);
  return rc;
}

static int
put_multipart (struct ov_s3 *s, const char *key, int fd, off_t off, uint64_t len,
               struct ov_s3_object *out, ov_error_t *err)
{
  uint64_t part = s->part_size;
  if ((len + part - 1) / part > MAX_PARTS)
    part = (len + MAX_PARTS - 1) / MAX_PARTS;
  size_t nparts = (len + part - 1) / part;
  size_t group = PART_MEMORY / part;
  if (group > (size_t) s->parallel)
    group = s->parallel;
  if (group < 1)
    group = 1;
  cleanup_free char *name = s3_key_name (s, key, NULL);

  cleanup_free char *upload_id = NULL;
  if (initiate (s, key, &upload_id, err) < 0)
    return -1;
  char (*etags)[40] = xcalloc (nparts, sizeof *etags);
  struct s3_req *reqs = xcalloc (group, sizeof *reqs);
  struct s3_req **pr = xcalloc (group, sizeof *pr);
  uint8_t **bufs = xcalloc (group, sizeof *bufs);
  char (*what)[48] = xcalloc (group, sizeof *what);
  char (*md5)[33] = xcalloc (group, sizeof *md5);
  char (*pq)[24] = xcalloc (group, sizeof *pq);
  int rc = 0;
  for (size_t first = 0; first < nparts && rc == 0; first += group)
    {
      size_t k = nparts - first < group ? nparts - first : group;
      for (size_t j = 0; j < k && rc == 0; j++)
        {
          size_t i = first + j;
          uint64_t at = (uint64_t) i * part;
          size_t n = len - at < part ? len - at : part;
          if (bufs[j] == NULL)
            bufs[j] = xmalloc (part);
          rc = read_range (fd, off + at, bufs[j], n, name, err);
          struct s3_req *r = &reqs[j];
          *r = (struct s3_req) { .method = "PUT", .key = key, .fd = -1, .date = -1 };
          snprintf (what[j], sizeof what[j], "multipart upload (part %zu of %zu)", i + 1, nparts);
          snprintf (pq[j], sizeof pq[j], "%zu", i + 1);
          r->what = what[j];
          r->query = s3_query ("partNumber", pq[j], "uploadId", upload_id, NULL);
          r->body = bufs[j];
          r->body_len = n;
          char b64[32];
          s3_md5 (bufs[j], n, b64, md5[j]);
          pr[j] = r;
        }
      if (rc == 0 && s3_run (s, pr, k, s->parallel))
        rc = -1;
      for (size_t j = 0; j < k; j++)
        {
          struct s3_req *r = &reqs[j];
          if (rc == 0 && r->err == NULL && strcasecmp (r->obj.etag, md5[j]) != 0)
            s3_fail (s, r, OV_ECORRUPT, 0, "the server stored ETag '%s', not the MD5 %s of the part",
                     r->obj.etag, md5[j]);
          if (r->err)
            {
              if (err && *err == NULL)
                *err = r->err;
              else
                ov_error_free (&r->err);
              r->err = NULL;
              rc = -1;
            }
          else
            snprintf (etags[first + j], sizeof etags[0], "%s", md5[j]);
          s3_req_clean (r);
        }
    }
  struct ov_s3_object obj = { .size = len };
  if (rc == 0)
    rc = complete (s, key, upload_id, etags, nparts, &obj, err);
  if (rc < 0)
    abort_upload (s, key, upload_id);
  else if (out)
    *out = obj;
  for (size_t j = 0; j < group; j++)
    free (bufs[j]);
  free (bufs);
  free (etags);
  free (reqs);
  free (pr);
  free (what);
  free (md5);
  free (pq);
  return rc;
}

int
ov_s3_put_fd (struct ov_s3 *s, const char *key, int fd, off_t off, uint64_t len, int flags,
              struct ov_s3_object *out, ov_error_t *err)
{
  if (len > s->multipart_threshold)
    {
      if (flags & OV_S3_IF_ABSENT)
        {
          cleanup_free char *name = s3_key_name (s, key, NULL);
          return ov_error_set (err, OV_EUSAGE, ENOTSUP,
                               "S3 PUT %s: a conditional PUT of %llu bytes (multipart)", name,
                               (unsigned long long) len);
        }
      return put_multipart (s, key, fd, off, len, out, err);
    }
  cleanup_free char *name = s3_key_name (s, key, NULL);
  cleanup_free uint8_t *p = xmalloc (len);
  if (read_range (fd, off, p, len, name, err) < 0)
    return -1;
  return ov_s3_put (s, key, p, len, flags, out, err);
}
