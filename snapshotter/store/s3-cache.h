/* The S3 backend's node cache: copies of bucket keys beneath the node
 * root, so a node fetches each byte once.
 *
 * <node>/cache/s3/KEY          a whole copy (a key this node published, or
 *                              one read whole: snapshot records, loose
 *                              objects, packs that gc or fsck read through)
 * <node>/cache/s3-parts/KEY    a partial copy of a pack: only the byte ranges
 *                              some read needed, at their offsets (a sparse
 *                              file), filled by ranged GETs in parallel
 * <node>/cache/s3-parts/KEY@map  the ranges present: 16-byte records
 *                              (offset, length), appended once the bytes are
 *                              durable; (UINT64_MAX, size) records the key's size
 *
 * Fetched spans are verified by the caller's callback before they count as
 * present; readers verify what they read again. Used by store-s3.c only. */
#ifndef OVSNAP_S3_CACHE_H
#define OVSNAP_S3_CACHE_H

#include "s3.h"
#include "store.h"

struct s3_cache;

struct s3_cache *s3_cache_open (int nodefd, struct ov_s3 *s3, ov_error_t *err);
void s3_cache_close (struct s3_cache *c);

/* The whole copy of key, fetched whole (streamed) if this node has none;
 * -1 with *err (code OV_ENOTFOUND if the bucket has no such key). */
int s3_cache_open_whole (struct s3_cache *c, const char *key, ov_error_t *err);
/* Keeps fd's file (the bytes just published under key) as its whole copy. */
void s3_cache_keep_whole (struct s3_cache *c, const char *key, int fd);
/* Forgets key (it was deleted from the bucket). */
void s3_cache_drop (struct s3_cache *c, const char *key);

/* Makes the spans present in the node's copies of their keys: the missing
 * ones are fetched with ranged GETs, close neighbours in one request, many
 * requests in parallel, a bounded amount of memory at a time. verify (may
 * be NULL) sees each fetched span's bytes before they count: -1 (with
 * *err set) refuses them and fails the fetch. A span reaching past the end
 * of its key gets the bytes up to the end. */
int s3_cache_fetch (struct s3_cache *c, const struct ov_span *spans, size_t n,
                    ov_span_verify_fn verify, void *ctx, ov_error_t *err);
/* A new fd on the node's copy of key (whole, or partial: read only spans
 * fetched first), for pread at the key's own offsets; -1 with *err. */
int s3_cache_open_copy (struct s3_cache *c, const char *key, ov_error_t *err);
/* Bytes [off, off + n) of key into buf (fetched if missing): the count,
 * fewer only at the end of the key; -1 with *err. */
ssize_t s3_cache_read (struct s3_cache *c, const char *key, uint64_t off, void *buf, size_t n,
                       ov_error_t *err);

#endif
