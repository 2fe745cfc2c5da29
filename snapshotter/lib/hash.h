/* Object ids: XXH3-128 of the content. XXH3 is fast but not collision
 * resistant, so the store verifies bytes on every dedup hit and, when two
 * different contents share a hash, keeps the later one under a variant
 * suffix (`<hex>.1`). The variant is part of the id a tree records. */
#ifndef OVSNAP_HASH_H
#define OVSNAP_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OV_OID_HEX 32
#define OV_OID_STR 40 /* 32 hex + '.' + up to 3 digits + NUL */

struct ov_oid
{
  uint8_t b[16];
  uint8_t variant;
};

struct ov_hasher
{
  void *state; /* XXH3_state_t */
};

void ov_hasher_init (struct ov_hasher *h);
void ov_hasher_update (struct ov_hasher *h, const void *p, size_t n);
void ov_hasher_final (struct ov_hasher *h, struct ov_oid *out);
void ov_hasher_free (struct ov_hasher *h);

void ov_hash (const void *p, size_t n, struct ov_oid *out);
uint64_t ov_checksum (const void *p, size_t n); /* XXH3-64, record trailers */

bool oid_is_zero (const struct ov_oid *o);
bool oid_eq (const struct ov_oid *a, const struct ov_oid *b);
int oid_cmp (const struct ov_oid *a, const struct ov_oid *b);
void oid_hex (const struct ov_oid *o, char out[OV_OID_STR]); /* with ".N" if variant */
int oid_parse (const char *s, struct ov_oid *o);             /* 0 or -1 */

#endif
