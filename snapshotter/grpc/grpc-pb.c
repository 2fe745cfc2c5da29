#include "grpc-pb.h"

#include <stdbool.h>
#include <string.h>

#define MAX_DEPTH 32

static bool
varint (const uint8_t **p, const uint8_t *end, uint64_t *v)
{
  *v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7)
    {
      uint8_t b = *(*p)++;
      *v |= (uint64_t) (b & 0x7f) << shift;
      if (!(b & 0x80))
        return true;
    }
  return false;
}

static bool
utf8_ok (const uint8_t *s, size_t n)
{
  size_t i = 0;
  while (i < n)
    {
      uint8_t c = s[i];
      size_t len;
      uint32_t cp;
      if (c < 0x80)
        {
          i++;
          continue;
        }
      else if ((c & 0xe0) == 0xc0)
        len = 2, cp = c & 0x1f;
      else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f;
      else if ((c & 0xf8) == 0xf0)
        len = 4, cp = c & 0x07;
      else
        return false;
      if (n - i < len)
        return false;
      for (size_t k = 1; k < len; k++)
        {
          if ((s[i + k] & 0xc0) != 0x80)
            return false;
          cp = cp << 6 | (s[i + k] & 0x3f);
        }
      if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
          || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return false;
      i += len;
    }
  return true;
}

int
ov_pb_check_strings (const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, int depth,
                     const char **why)
{
  const uint8_t *end = p + n;
  if (depth > MAX_DEPTH)
    {
      *why = "protobuf nested too deeply";
      return -1;
    }
  while (p < end)
    {
      uint64_t key, len;
      if (!varint (&p, end, &key))
        goto bad;
      unsigned wire = key & 7;
      uint64_t num = key >> 3;
      /* field 0 is no field; protobuf-c takes it when its tag is spelled in
       * more bytes than needed, and then refuses its own re-encoding */
      if (num == 0 || num > 0x1fffffff)
        goto bad;
      switch (wire)
        {
        case 0:
          if (!varint (&p, end, &len))
            goto bad;
          continue;
        case 1:
          if (end - p < 8)
            goto bad;
          p += 8;
          continue;
        case 5:
          if (end - p < 4)
            goto bad;
          p += 4;
          continue;
        case 2:
          if (!varint (&p, end, &len) || len > (uint64_t) (end - p))
            goto bad;
          break;
        default:
          goto bad;
        }
      const ProtobufCFieldDescriptor *f
          = num <= UINT32_MAX ? protobuf_c_message_descriptor_get_field (d, (unsigned) num) : NULL;
      if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING)
        {
          if (memchr (p, '\0', len) != NULL)
            {
              *why = "a string field holds a NUL byte";
              return -1;
            }
          if (!utf8_ok (p, len))
            {
              *why = "a string field is not valid UTF-8";
              return -1;
            }
        }
      else if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE
               && ov_pb_check_strings (f->descriptor, p, len, depth + 1, why) < 0)
        return -1;
      p += len;
    }
  return 0;
bad:
  *why = "malformed protobuf";
  return -1;
}

ProtobufCMessage *
ov_pb_unpack (const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, const char **why)
{
  static const uint8_t empty[1];
  ProtobufCMessage *m = protobuf_c_message_unpack (d, NULL, n, p ? p : empty);
  if (m == NULL)
    {
      *why = "malformed protobuf";
      return NULL;
    }
  if (ov_pb_check_strings (d, p ? p : empty, n, 0, why) < 0)
    {
      protobuf_c_message_free_unpacked (m, NULL);
      return NULL;
    }
  return m;
}
