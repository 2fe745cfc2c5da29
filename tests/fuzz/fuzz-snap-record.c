/* Fuzz target: ov_snap_decode, the snapshotter's metadata records (read
 * back at every start). Fed as given and resealed (fuzz.h). A record it
 * accepts must hold a key, a known kind, sorted non-empty labels, and must
 * encode back to the same bytes. */
#include "snapdb.h"
#include "fuzz.h"

#include <stdio.h>

static void
one (const uint8_t *p, size_t n)
{
  struct ov_snap *s;
  ov_error_t err = NULL;
  if (ov_snap_decode (p, n, "fuzz", &s, &err) < 0)
    {
      REQUIRE (err != NULL);
      ov_error_free (&err);
      return;
    }
  REQUIRE (s->key && s->key[0]);
  REQUIRE (s->kind == OV_SNAP_VIEW || s->kind == OV_SNAP_ACTIVE || s->kind == OV_SNAP_COMMITTED);
  for (size_t i = 0; i < s->n_labels; i++)
    {
      REQUIRE (s->labels[i].key[0] && s->labels[i].value[0]);
      if (i)
        REQUIRE (strcmp (s->labels[i - 1].key, s->labels[i].key) < 0);
    }
  struct ov_buf b = { 0 };
  ov_snap_encode (s, &b);
  REQUIRE (b.len == n && memcmp (b.data, p, n) == 0);
  buf_free (&b);
  ov_snap_free (s);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_resealed (data, size, one);
  return 0;
}
