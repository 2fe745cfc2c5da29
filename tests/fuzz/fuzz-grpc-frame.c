/* Fuzz target: the gRPC message decoder (grpc-msg.h) that every request
 * body goes through, and the header formats beside it. The input's first
 * two bytes choose the message limit and how the rest is cut into chunks
 * (as DATA frames would cut it); the rest is the stream. The same stream
 * fed whole and fed in chunks must give the same messages and the same
 * end; every message is at most the limit; a refused length is never
 * buffered; grpc-timeout and the percent-encoding of grpc-message are fed
 * the same bytes and must stay within their contracts. */
#include "grpc-msg.h"
#include "fuzz.h"

#include <stdio.h>

struct run
{
  struct ov_buf msgs; /* each message as a u32 length and its bytes */
  size_t count;
  enum ov_grpc_rx_state end;
  int code;
};

static void
feed_all (const uint8_t *p, size_t n, uint32_t max, size_t chunk, struct run *r)
{
  struct ov_grpc_rx rx;
  ov_grpc_rx_init (&rx, max);
  *r = (struct run){ .end = OV_GRPC_RX_MORE };
  size_t off = 0;
  while (off < n)
    {
      size_t k = chunk && chunk < n - off ? chunk : n - off;
      const uint8_t *q = p + off;
      off += k;
      while (k > 0)
        {
          size_t used;
          enum ov_grpc_rx_state s = ov_grpc_rx_feed (&rx, q, k, &used);
          REQUIRE (used <= k);
          q += used;
          k -= used;
          if (s == OV_GRPC_RX_ERROR)
            {
              REQUIRE (rx.code != OV_GRPC_OK && rx.why != NULL);
              /* refused before buffering: nothing of its body held */
              REQUIRE (rx.body.data == NULL);
              r->end = s;
              r->code = rx.code;
              goto done;
            }
          if (s == OV_GRPC_RX_MORE)
            {
              REQUIRE (k == 0);
              break;
            }
          struct ov_buf m;
          ov_grpc_rx_take (&rx, &m);
          REQUIRE (m.len <= max);
          buf_u32 (&r->msgs, m.len);
          buf_put (&r->msgs, m.data, m.len);
          r->count++;
          buf_free (&m);
        }
    }
  r->end = ov_grpc_rx_end (&rx);
  REQUIRE (r->end != OV_GRPC_RX_MESSAGE);
  r->code = rx.code;
done:
  REQUIRE (rx.messages == r->count);
  ov_grpc_rx_free (&rx);
}

static void
check_headers (const uint8_t *p, size_t n)
{
  int64_t t = ov_grpc_parse_timeout ((const char *) p, n);
  REQUIRE (t >= -1);
  if (t >= 0)
    REQUIRE (n >= 2 && n <= 9);
  cleanup_free char *s = xstrndup ((const char *) p, n);
  size_t max = 1 + (n ? p[0] : 0);
  cleanup_free char *e = ov_grpc_percent_encode (s, max);
  REQUIRE (strlen (e) < max);
  for (const char *c = e; *c; c++)
    {
      REQUIRE (*c >= 0x20 && *c <= 0x7e);
      if (*c == '%')
        REQUIRE (c[1] && c[2]);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  uint32_t max = data[0] < 8 ? OV_GRPC_MAX_MESSAGE : data[0];
  size_t chunk = 1 + data[1] % 17;
  const uint8_t *p = data + 2;
  size_t n = size - 2;
  struct run whole, cut;
  feed_all (p, n, max, 0, &whole);
  feed_all (p, n, max, chunk, &cut);
  REQUIRE (whole.end == cut.end && whole.code == cut.code && whole.count == cut.count);
  REQUIRE (whole.msgs.len == cut.msgs.len
           && (whole.msgs.len == 0 || memcmp (whole.msgs.data, cut.msgs.data, whole.msgs.len) == 0));
  buf_free (&whole.msgs);
  buf_free (&cut.msgs);
  check_headers (p, n < 64 ? n : 64);
  return 0;
}
