#include "hash.h"
#include "util.h"

#include <stdio.h>
#include <xxhash.h>

/* OVSNAP_TEST_HASH_BITS (test builds only) keeps just the first N bits of
 * every content hash, so tests can force collisions cheaply. */
#ifndef OVSNAP_TEST_HASH_BITS
#define OVSNAP_TEST_HASH_BITS 128
#endif

static void
canon (XXH128_hash_t h, struct ov_oid *out)
{
  XXH128_canonical_t c;
  XXH128_canonicalFromHash (&c, h);
  memcpy (out->b, c.digest, 16);
  out->variant = 0;
#if OVSNAP_TEST_HASH_BITS < 128
  for (int i = 0; i < 16; i++)
    {
      int keep = OVSNAP_TEST_HASH_BITS - 8 * i;
      if (keep <= 0)
        out->b[i] = 0;
      else if (keep < 8)
        out->b[i] &= (uint8_t) (0xff << (8 - keep));
    }
#endif
}

void
ov_hasher_init (struct ov_hasher *h)
{
  h->state = XXH3_createState ();
  if (h->state == NULL)
    abort ();
  XXH3_128bits_reset (h->state);
}

void
ov_hasher_update (struct ov_hasher *h, const void *p, size_t n)
{
  XXH3_128bits_update (h->state, p, n);
}

void
ov_hasher_final (struct ov_hasher *h, struct ov_oid *out)
{
  canon (XXH3_128bits_digest (h->state), out);
}

void
ov_hasher_free (struct ov_hasher *h)
{
  if (h->state)
    XXH3_freeState (h->state);
  h->state = NULL;
}

void
ov_hash (const void *p, size_t n, struct ov_oid *out)
{
  canon (XXH3_128bits (p, n), out);
}

uint64_t
ov_checksum (const void *p, size_t n)
{
  return XXH3_64bits (p, n);
}

bool
oid_is_zero (const struct ov_oid *o)
{
  static const struct ov_oid zero;
  return memcmp (o->b, zero.b, 16) == 0 && o->variant == 0;
}

bool
oid_eq (const struct ov_oid *a, const struct ov_oid *b)
{
  return memcmp (a->b, b->b, 16) == 0 && a->variant == b->variant;
}

int
oid_cmp (const struct ov_oid *a, const struct ov_oid *b)
{
  int c = memcmp (a->b, b->b, 16);
  return c ? c : (int) a->variant - (int) b->variant;
}

void
oid_hex (const struct ov_oid *o, char out[OV_OID_STR])
{
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++)
    {
      out[2 * i] = digits[o->b[i] >> 4];
      out[2 * i + 1] = digits[o->b[i] & 15];
    }
  out[32] = '\0';
  if (o->variant)
    snprintf (out + 32, OV_OID_STR - 32, ".%u", o->variant);
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

int
oid_parse (const char *s, struct ov_oid *o)
{
  memset (o, 0, sizeof *o);
  for (int i = 0; i < 32; i++)
    {
      int v = hexval (s[i]);
      if (v < 0)
        return -1;
      o->b[i / 2] |= v << (i % 2 ? 0 : 4);
    }
  if (s[32] == '\0')
    return 0;
  if (s[32] != '.' || s[33] < '1' || s[33] > '9')
    return -1;
  unsigned v = 0;
  for (const char *p = s + 33; *p; p++)
    {
      if (*p < '0' || *p > '9' || v > 25)
        return -1;
      v = v * 10 + (*p - '0');
    }
  if (v > 255)
    return -1;
  o->variant = v;
  return 0;
}
