/* The content-addressed store. Three kinds of immutable objects, all keyed
 * by XXH3-128 of their bytes: blobs (file contents, raw), trees and snapshot
 * records (both self-checking records). Volume records are the only mutable
 * things: small named records replaced atomically under a per-volume lock.
 *
 * The store sits on a backend (struct ov_backend) that moves bytes under
 * keys: "packs/<id>.pack" (trees and small blobs, see pack.h),
 * "objects/ab/cdef.." (big blobs), "snapshots/..", "volumes/NAME".
 * The local directory backend is the embedded default; an S3 backend plugs
 * in behind the same operations. Dedup, collision handling and
 * verification live here, above the backend, once for every backend. */
#ifndef OVSNAP_STORE_H
#define OVSNAP_STORE_H

#include "error.h"
#include "hash.h"
#include "util.h"

#include <stdbool.h>
#include <sys/types.h>

/* The one small-file limit: blobs of at most this many bytes live in packs
 * and are read whole into memory; bigger ones are loose files, streamed. */
#define OV_SMALL_BLOB (1u << 20)

enum ov_kind
{
  OV_BLOB,
  OV_TREE_OBJ,
  OV_SNAPSHOT_REC,
};

/* The revisions of a mutable record, oldest first (see list_revs). */
struct ov_revs
{
  char **keys;
  size_t n;
  size_t settled;
};
void ov_revs_free (struct ov_revs *r);
/* A byte range of a key, for a backend that fetches ranges. */
struct ov_span
{
  const char *key;
  uint64_t off, len;
};
/* Checks the n bytes fetched for span i: 0 good, -1 refused (*err set). */
typedef int (*ov_span_verify_fn) (void *ctx, size_t i, const uint8_t *p, size_t n,
                                  ov_error_t *err);

/* What a store needs of the place that holds its bytes; everything above
 * (content addressing, dedup, verification, packs) is written once for
 * every backend. Keys are relative paths ("packs/<id>.pack"). */
struct ov_backend
{
  const char *name;
  /* fd open for reading the whole key, -1 with errno (ENOENT if absent);
   * a remote backend serves it from its node cache */
  int (*open_read) (void *be, const char *key);
  /* n bytes at off into buf: bytes read (fewer only at the end of the
   * key), -1 with errno. Opening a store reads of each pack only its tail
   * and index this way, so a fresh node downloads no pack whole. */
  ssize_t (*read_range) (void *be, const char *key, uint64_t off, void *buf, size_t n);
  /* an anonymous writable file that publish can later put under a key */
  int (*create_tmp) (void *be, const char *dir);
  /* publish-if-absent, durable on return: -1 EEXIST if the key exists (it
   * is then left untouched). Keys are content addressed, so a backend
   * that cannot refuse atomically (atomic_publish false: a racing
   * publisher may replace the bytes) replaces them with the same bytes. */
  int (*publish) (void *be, int fd, const char *key);
  bool atomic_publish;
  /* atomic, durable replace of a small mutable record */
  int (*put_replace) (void *be, const char *key, const void *p, size_t n);
  /* -1 EBUSY: kept, because another node may still be about to name it
   * (S3: younger than the grace period by the server's clock) */
  int (*remove) (void *be, const char *key);
  /* Optional: 1 if remove would keep key (EBUSY), 0 if not, -1 error */
  int (*young) (void *be, const char *key);
  /* Optional: remove a key whose every byte is stored under another key
   * now (a roll-up of packs), so no grace period applies (NULL: remove) */
  int (*remove_moved) (void *be, const char *key);
  /* cb for every key beginning with prefix, at any depth, with its size */
  int (*list) (void *be, const char *prefix, int (*cb) (const char *key, uint64_t size, void *ctx),
               void *ctx);
  /* advisory lock; returns an fd to close, -1 on error */
  int (*lock) (void *be, const char *name, bool exclusive);
  void (*close) (void *be);
  /* optional: the local directory holding loose objects as ab/cdef..
   * (what the node cache's images redirect into), malloc'd; NULL if none */
  char *(*loose_dir) (void *be);
  /* Optional, for a backend that keeps partial node copies of its keys
   * (NULL: a pack is read from open_read's whole file). fetch makes the
   * spans present in the node's copies, with requests in parallel, verify
   * seeing each one's bytes first; open_copy gives an fd on the node's
   * copy of key, to pread spans fetched before at the key's offsets. */
  int (*fetch) (void *be, const struct ov_span *spans, size_t n, ov_span_verify_fn verify,
                void *ctx, ov_error_t *err);
  int (*open_copy) (void *be, const char *key);
  /* A store shared over the network (the commit worker then needs sockets). */
  bool remote;
  /* Optional, for a backend without compare-and-swap (S3): a mutable
   * record is a series of immutable revisions under unique keys whose
   * order is clock order (the node breaks ties); what they mean is the
   * volume layer's business (tree/heads.c). NULL: the record is replaced
   * atomically and the lock serializes writers. rev names a revision.
   * list_revs: every revision of key, oldest first; with want_settled,
   * out->settled counts the leading ones that no new revision can come
   * before any more (one request for the server's clock).
   * read_rev: one revision's bytes, -1 ENOENT if it was dropped meanwhile.
   * put_rev: a new one, after base (may be NULL) and every one this
   * handle has listed; an empty one is a tombstone.
   * drop_rev: deletes a superseded one.
   * memo_get/memo_put: a node-local cache of what the volume layer
   * derives from revisions (losing it costs time, not data); get -1
   * ENOENT if absent. */
  int (*list_revs) (void *be, const char *key, bool want_settled, struct ov_revs *out);
  int (*read_rev) (void *be, const char *rev, struct ov_buf *out);
  int (*put_rev) (void *be, const char *key, const void *p, size_t n, const char *base, char *rev,
                  size_t revlen);
  int (*drop_rev) (void *be, const char *rev);
  int (*memo_get) (void *be, const char *name, struct ov_buf *out);
  int (*memo_put) (void *be, const char *name, const void *p, size_t n);
};

struct ov_store
{
  char *root;
  const struct ov_backend *be;
  void *be_data;
  int store_lock; /* shared by writers, exclusive for gc */
  struct ov_packs *packs;        /* published packs, shared by a store's sessions */
  struct ov_pack_writer *pw;     /* this handle's pack being written, or NULL */
  struct ov_store *session_of;   /* a session: the handle it shares a backend with */
  const char *fail;              /* tests: a fault point armed for this handle alone */
};

enum
{
  OV_STORE_CREATE = 1, /* create the root if missing */
};

int ov_store_open (struct ov_store **out, const char *root, int flags, ov_error_t *err);
/* A remote store: url "s3://BUCKET[/PREFIX]", its caches and locks beneath
 * node_root (the node's directory). */
int ov_store_open_url (struct ov_store **out, const char *url, const char *node_root,
                       ov_error_t *err);
/* A handle for one operation on an open store (a daemon serves several at
 * once): it shares the backend and the published packs, and writes a pack
 * of its own, so its failure (a full disk at its sync) loses only its own
 * unpublished objects, and its records never name another's. Close it
 * before the store it came from. */
struct ov_store *ov_store_session (struct ov_store *base);
void ov_store_close (struct ov_store *s);
/* Shared for every operation that reads or adds; exclusive for gc. */
int ov_store_lock (struct ov_store *s, bool exclusive, ov_error_t *err);
void ov_store_unlock (struct ov_store *s);
/* A named advisory lock (e.g. a volume's), held until the fd is closed. */
int ov_store_lock_name (struct ov_store *s, const char *name, ov_error_t *err);

void ov_key (enum ov_kind kind, const struct ov_oid *id, char *out, size_t n);
const char *ov_kind_dir (enum ov_kind kind);

/* Records (trees, snapshots): stored under the hash of their bytes. Reading
 * verifies the bytes hash to the id. */
int ov_store_put_record (struct ov_store *s, enum ov_kind kind, const struct ov_buf *b,
                         struct ov_oid *id, ov_error_t *err);
int ov_store_get_record (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id,
                         struct ov_buf *out, ov_error_t *err);

/* Blobs: raw file contents. */
struct ov_put_stats
{
  uint64_t stored, deduped, bytes_stored;
};
int ov_store_put_blob_mem (struct ov_store *s, const void *p, size_t n, struct ov_oid *id,
                           struct ov_put_stats *st, ov_error_t *err);
/* Streams srcfd (read to EOF) into the store; *size gets the length read. */
int ov_store_put_blob_fd (struct ov_store *s, int srcfd, struct ov_oid *id, uint64_t *size,
                          struct ov_put_stats *st, ov_error_t *err);
/* Where a blob of `size` bytes is: read it with pread(fd, size, off)
 * until ov_blob_loc_release (which closes a loose object's fd and lets go
 * of a pack's). */
struct ov_pack_file;
struct ov_blob_loc
{
  int fd;
  uint64_t off;
  bool loose; /* a file of its own: reading past size tells one that grew */
  struct ov_pack_file *hold;
  const char *where; /* for messages */
};
int ov_store_blob_loc (struct ov_store *s, const struct ov_oid *id, uint64_t size,
                       struct ov_blob_loc *loc, ov_error_t *err);
void ov_blob_loc_release (struct ov_blob_loc *loc);
/* The directory of loose objects (ab/cdef..[.N], as ov_key names them
 * beneath "objects/") when the backend keeps them in one on this machine,
 * else NULL; malloc'd. */
char *ov_store_loose_dir (struct ov_store *s);

/* Objects a caller is about to read (a materializer: a directory's
 * subtrees, a snapshot's files). On a remote store, their bytes are
 * fetched into the node cache now, many requests in parallel, each
 * object checked against its hash (OV_ECORRUPT naming it otherwise); on a
 * local one this does nothing. */
struct ov_obj_ref
{
  enum ov_kind kind; /* OV_TREE_OBJ or OV_BLOB */
  struct ov_oid id;
  uint64_t size;     /* a blob's (its tree entry's); ignored for trees */
};
int ov_store_prefetch (struct ov_store *s, const struct ov_obj_ref *refs, size_t n,
                       ov_error_t *err);
/* Does ov_store_prefetch fetch anything (a remote store)? A caller can
 * then skip building its list. */
bool ov_store_fetches (const struct ov_store *s);

/* Walk every stored object of a kind, loose and packed. */
int ov_store_each (struct ov_store *s, enum ov_kind kind,
                   int (*cb) (const struct ov_oid *id, uint64_t size, void *ctx), void *ctx,
                   ov_error_t *err);
/* Loose files only: the ones ov_store_remove can remove (gc). */
int ov_store_each_loose (struct ov_store *s, enum ov_kind kind,
                         int (*cb) (const struct ov_oid *id, uint64_t size, void *ctx),
                         void *ctx, ov_error_t *err);
/* 0 removed (or absent), 1 kept by the backend (too young on a shared
 * store, see struct ov_backend), -1 error. */
int ov_store_remove (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id,
                     ov_error_t *err);
/* Verify a stored object of `size` bytes hashes to its id; 1 ok, 0
 * mismatch (err says where), -1 error. */
int ov_store_verify (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id,
                     uint64_t size, ov_error_t *err);
/* Publishes the pack being written (published objects are durable): run
 * it before writing a record that names new objects. */
int ov_store_sync (struct ov_store *s, ov_error_t *err);

/* Named mutable records (volumes). get returns -1 with code OV_ENOTFOUND if absent. */
int ov_store_get_named (struct ov_store *s, const char *key, struct ov_buf *out, ov_error_t *err);
int ov_store_put_named (struct ov_store *s, const char *key, const struct ov_buf *b,
                        ov_error_t *err);
int ov_store_remove_named (struct ov_store *s, const char *key, ov_error_t *err);
/* Revisions (backend list_revs ...), on a store that keeps its mutable
 * records as revisions: ov_store_has_revs says whether it does; the rest
 * are the backend's operations with errors that name the store. */
#define OV_REV_MAX 256
bool ov_store_has_revs (const struct ov_store *s);
int ov_store_list_revs (struct ov_store *s, const char *key, bool want_settled,
                        struct ov_revs *out, ov_error_t *err);
int ov_store_read_rev (struct ov_store *s, const char *rev, struct ov_buf *out, ov_error_t *err);
int ov_store_put_rev (struct ov_store *s, const char *key, const struct ov_buf *b,
                      const char *base, char rev[OV_REV_MAX], ov_error_t *err);
int ov_store_drop_rev (struct ov_store *s, const char *rev, ov_error_t *err);
/* The node-local memo: 0, or -1 (absent or unreadable: the caller recomputes). */
int ov_store_memo_get (struct ov_store *s, const char *name, struct ov_buf *out);
void ov_store_memo_put (struct ov_store *s, const char *name, const struct ov_buf *b);
/* Named records whose keys begin with prefix. */
int ov_store_list_named (struct ov_store *s, const char *prefix,
                         int (*cb) (const char *key, uint64_t size, void *ctx), void *ctx,
                         ov_error_t *err);

/* Backends. */
int ov_backend_local_open (struct ov_store *s, const char *root, bool create, ov_error_t *err);
/* The S3 backend, in its module (store-module.c loads it, then calls it). */
int ov_backend_s3_open (struct ov_store *s, const char *url, const char *node_root,
                        ov_error_t *err);
int ov_backend_remote_open (struct ov_store *s, const char *url, const char *node_root,
                            ov_error_t *err);


#endif
