#include "record.h"
#include "hash.h"

void
record_begin (struct ov_buf *b, const char magic[8], uint32_t version)
{
  buf_put (b, magic, 8);
  buf_u32 (b, version);
}

void
record_seal (struct ov_buf *b)
{
  buf_u64 (b, ov_checksum (b->data, b->len));
}

int
record_open (const uint8_t *p, size_t n, const char magic[8], uint32_t version,
             const char *kind, const char *what, struct ov_reader *body, ov_error_t *err)
{
  if (n < 20 || memcmp (p, magic, 8) != 0)
    return ov_corrupt (err, "%s: not a %s (bad magic or truncated)", what, kind);
  uint64_t sum = 0;
  for (int i = 7; i >= 0; i--)
    sum = sum << 8 | p[n - 8 + i];
  if (sum != ov_checksum (p, n - 8))
    return ov_corrupt (err, "%s: checksum mismatch (truncated or corrupt)", what);
  *body = (struct ov_reader){ p + 8, n - 16, 0 };
  uint32_t v = rd_u32 (body);
  if (v != version)
    return ov_corrupt (err, "%s: unknown %s format version %u", what, kind, v);
  return 0;
}
