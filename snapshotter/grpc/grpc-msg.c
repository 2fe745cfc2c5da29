#include "grpc-msg.h"
#include "error.h"

#include <stdio.h>

const char *
ov_grpc_code_name (int code)
{
  static const char *const names[] = {
    "OK",           "Canceled",          "Unknown",       "InvalidArgument", "DeadlineExceeded",
    "NotFound",     "AlreadyExists",     "PermissionDenied", "ResourceExhausted",
    "FailedPrecondition", "Aborted",     "OutOfRange",    "Unimplemented",   "Internal",
    "Unavailable",  "DataLoss",          "Unauthenticated",
  };
  return code >= 0 && (size_t) code < ARRAY_SIZE (names) ? names[code] : "Unknown";
}

int
ov_grpc_code_of (int c)
{
  if (c > OV_GRPC_ERR (0) && c <= OV_GRPC_ERR (OV_GRPC_UNAUTHENTICATED))
    return c - OV_GRPC_ERR (0);
  switch (c)
    {
    case OV_OK:
      return OV_GRPC_OK;
    case OV_EUSAGE:
      return OV_GRPC_INVALID_ARGUMENT;
    case OV_ENOTFOUND:
      return OV_GRPC_NOT_FOUND;
    case OV_EBUSY:
      return OV_GRPC_FAILED_PRECONDITION;
    case OV_ENOSPACE:
      return OV_GRPC_RESOURCE_EXHAUSTED;
    case OV_ECORRUPT:
      return OV_GRPC_DATA_LOSS;
    default:
      return OV_GRPC_UNKNOWN;
    }
}

void
ov_grpc_rx_init (struct ov_grpc_rx *rx, uint32_t max)
{
  *rx = (struct ov_grpc_rx){ .max = max };
}

void
ov_grpc_rx_free (struct ov_grpc_rx *rx)
{
  buf_free (&rx->body);
}

static enum ov_grpc_rx_state
rx_fail (struct ov_grpc_rx *rx, int code, const char *why)
{
  rx->code = code;
  rx->why = why;
  buf_free (&rx->body);
  return OV_GRPC_RX_ERROR;
}

enum ov_grpc_rx_state
ov_grpc_rx_feed (struct ov_grpc_rx *rx, const uint8_t *p, size_t n, size_t *used)
{
  *used = 0;
  if (rx->code)
    return OV_GRPC_RX_ERROR;
  if (rx->ready)
    return OV_GRPC_RX_MESSAGE;
  size_t off = 0;
  while (off < n || (rx->hdr_len == 5 && rx->body.len == rx->want))
    {
      if (rx->hdr_len < 5)
        {
          size_t k = 5 - rx->hdr_len;
          if (k > n - off)
            k = n - off;
          memcpy (rx->hdr + rx->hdr_len, p + off, k);
          rx->hdr_len += k;
          off += k;
          if (rx->hdr_len < 5)
            break;
          if (rx->hdr[0] & 1)
            {
              *used = off;
              return rx_fail (rx, OV_GRPC_INTERNAL,
                              "compressed message, but no grpc-encoding (identity only)");
            }
          if (rx->hdr[0] != 0)
            {
              *used = off;
              return rx_fail (rx, OV_GRPC_INTERNAL, "unknown message flags");
            }
          rx->want = (uint32_t) rx->hdr[1] << 24 | (uint32_t) rx->hdr[2] << 16
                     | (uint32_t) rx->hdr[3] << 8 | rx->hdr[4];
          if (rx->want > rx->max)
            {
              *used = off;
              return rx_fail (rx, OV_GRPC_RESOURCE_EXHAUSTED, "message larger than the limit");
            }
          rx->body.len = 0;
          continue;
        }
      size_t k = rx->want - rx->body.len;
      if (k > n - off)
        k = n - off;
      buf_put (&rx->body, p + off, k);
      off += k;
      if (rx->body.len == rx->want)
        {
          rx->ready = true;
          rx->messages++;
          *used = off;
          return OV_GRPC_RX_MESSAGE;
        }
    }
  *used = off;
  return OV_GRPC_RX_MORE;
}

void
ov_grpc_rx_take (struct ov_grpc_rx *rx, struct ov_buf *msg)
{
  *msg = rx->body;
  rx->body = (struct ov_buf){ 0 };
  rx->ready = false;
  rx->hdr_len = 0;
  rx->want = 0;
}

enum ov_grpc_rx_state
ov_grpc_rx_end (struct ov_grpc_rx *rx)
{
  if (rx->code)
    return OV_GRPC_RX_ERROR;
  if (rx->ready)
    return OV_GRPC_RX_MESSAGE;
  if (rx->hdr_len != 0)
    return rx_fail (rx, OV_GRPC_INTERNAL, "stream ended inside a message");
  return OV_GRPC_RX_MORE;
}

void
ov_grpc_frame (struct ov_buf *out, const void *msg, size_t n)
{
  uint8_t h[5] = { 0, n >> 24, n >> 16, n >> 8, n };
  buf_put (out, h, 5);
  buf_put (out, msg, n);
}

int64_t
ov_grpc_parse_timeout (const char *s, size_t n)
{
  if (n < 2 || n > 9)
    return -1;
  int64_t v = 0;
  for (size_t i = 0; i + 1 < n; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return -1;
      v = v * 10 + (s[i] - '0');
    }
  int64_t unit;
  switch (s[n - 1])
    {
    case 'H':
      unit = 3600 * INT64_C (1000000000);
      break;
    case 'M':
      unit = 60 * INT64_C (1000000000);
      break;
    case 'S':
      unit = INT64_C (1000000000);
      break;
    case 'm':
      unit = 1000000;
      break;
    case 'u':
      unit = 1000;
      break;
    case 'n':
      unit = 1;
      break;
    default:
      return -1;
    }
  /* 8 digits of hours overflow nothing below INT64_MAX / unit */
  if (v > INT64_MAX / unit)
    return INT64_MAX;
  return v * unit;
}

char *
ov_grpc_percent_encode (const char *msg, size_t max_out)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen (msg);
  if (max_out < 1)
    max_out = 1;
  char *out = xmalloc (max_out);
  size_t o = 0;
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = msg[i];
      if (c >= 0x20 && c <= 0x7e && c != '%')
        {
          if (o + 1 >= max_out)
            break;
          out[o++] = c;
        }
      else
        {
          if (o + 3 >= max_out)
            break;
          out[o++] = '%';
          out[o++] = hex[c >> 4];
          out[o++] = hex[c & 15];
        }
    }
  out[o] = '\0';
  return out;
}
