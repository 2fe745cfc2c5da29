/* Packs: many small objects in one immutable file. A commit of thousands
 * of small files then creates one file instead of thousands; on this disk
 * creating an inode, not copying bytes, was what commit and put spent
 * their time on.
 *
 * Trees and blobs of at most OV_PACK_MAX bytes live in packs; bigger
 * blobs and snapshot records are loose files. A tree entry records its
 * blob's size, so a reader always knows which of the two to look in.
 *
 * A pack: a 16-byte header, the objects' bytes back to back, an index
 * record (kind, id, offset, size of each object, in the shared record
 * envelope) and a 16-byte tail that locates the index. Its key is
 * packs/<128 random bits>.pack. A writer fills one anonymous file
 * per store handle (per operation: see ov_store_session) and publishes it
 * when that handle syncs, before any record that names its objects can
 * exist; gc rewrites packs to drop what nothing references. */
#ifndef OVSNAP_PACK_H
#define OVSNAP_PACK_H

#include "oidset.h"
#include "store.h"

#define OV_PACK_MAX OV_SMALL_BLOB

struct ov_packs;

/* Where a packed object's bytes are: pread(fd, size, off). The location
 * holds the pack file open (gc may forget the pack meanwhile) until
 * ov_pack_loc_release. */
struct ov_pack_file;
struct ov_pack_loc
{
  int fd;
  uint64_t off, size;
  struct ov_pack_file *hold; /* NULL for the handle's own pack being written */
  const char *pack;          /* its key, for messages: valid until the next store call */
};
void ov_pack_loc_release (struct ov_pack_loc *loc);

struct ov_packs *ov_packs_new (void);
/* Another handle's reference; ov_packs_free drops one. */
struct ov_packs *ov_packs_ref (struct ov_packs *p);
void ov_packs_free (struct ov_packs *p);
/* A handle's pending pack, dropped (it was never published). */
struct ov_pack_writer;
void ov_pack_writer_free (struct ov_packs *p, struct ov_pack_writer *w);

/* Stores an object (id holds its hash; the variant is chosen here): a
 * stored object with the same hash is compared byte for byte. */
int ov_packs_put (struct ov_store *s, enum ov_kind kind, const void *p, size_t n,
                  struct ov_oid *id, bool *deduped, ov_error_t *err);
/* 1 found, 0 absent (after looking for packs published since), -1 error. */
int ov_packs_find (struct ov_store *s, enum ov_kind kind, const struct ov_oid *id,
                   struct ov_pack_loc *loc, ov_error_t *err);
/* Fetches what reading these objects will need into the node cache of a
 * backend with partial copies (nothing otherwise): their spans, in
 * parallel, each checked against its hash (OV_ECORRUPT naming the object
 * otherwise). Objects not in a pack are left to their reads. */
int ov_packs_prefetch (struct ov_store *s, const struct ov_obj_ref *refs, size_t n,
                       ov_error_t *err);
/* Publishes the handle's pack being written, if any; on failure only that
 * pack's objects are dropped. */
int ov_packs_flush (struct ov_store *s, ov_error_t *err);
/* Every packed object of a kind (duplicates in several packs once). */
int ov_packs_each (struct ov_store *s, enum ov_kind kind,
                   int (*cb) (const struct ov_oid *id, uint64_t size, void *ctx), void *ctx,
                   ov_error_t *err);
/* Packs that could not be read: cb gets "packs/KEY: what is wrong". */
int ov_packs_damaged (struct ov_store *s, void (*cb) (const char *msg, void *ctx), void *ctx,
                      ov_error_t *err);

/* gc: rewrites into one new pack the packs that hold objects outside
 * the keep sets or duplicates (a pack of 64 MiB or more only once a
 * quarter of it is garbage: rewriting gigabytes for a few dead files
 * would cost more than the space), and merges small packs. The new pack
 * is durable before the old ones go. */
struct ov_repack_result
{
  uint64_t trees_removed, blobs_removed, blobs_kept, bytes_freed, packs_removed;
};
int ov_packs_repack (struct ov_store *s, const struct ov_oidset *trees,
                     const struct ov_oidset *blobs, struct ov_repack_result *res,
                     ov_error_t *err);

/* Rolls small packs into one, by a geometric rule (see pack.c), without
 * looking at what is referenced: every object stays. The caller holds the
 * store lock shared; writers may go on meanwhile. *merged: packs removed. */
int ov_packs_consolidate (struct ov_store *s, size_t *merged, ov_error_t *err);
/* Published packs under the small-pack size (a directory listing, no
 * index is read): writers start a consolidation when there are many. */
size_t ov_packs_small (struct ov_store *s);
#define OV_PACKS_CROWDED 16
/* Every commit and put adds a pack; lookups and opening a store get
 * slower with each. When small packs crowd the store, a detached process
 * rolls them together (ov_packs_consolidate), so the caller returns at
 * once. It inherits the store lock, shared: gc waits for it. */
void ov_packs_consolidate_later (struct ov_store *s);

#endif
