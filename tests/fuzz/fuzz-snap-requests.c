/* Fuzz target: the decoders of the snapshotter's requests. The input's
 * first byte picks one of the request messages of
 * containerd.services.snapshots.v1.Snapshots (and Info, which Update
 * carries); the rest is decoded strictly as the service does
 * (ov_pb_unpack). What it accepts must have no NUL inside a string (every
 * string's strlen equals the length on the wire, checked by packing it
 * again: a cut string would pack shorter), and packing must succeed. The
 * same bytes, cut at newlines, are parsed as List filters and matched
 * against a snapshot. */
#include "filter.h"
#include "grpc-pb.h"
#include "fuzz.h"

#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"

#include <stdio.h>

#define D(x) &containerd__services__snapshots__v1__##x##__descriptor

static const ProtobufCMessageDescriptor *const requests[] = {
  D (prepare_snapshot_request), D (view_snapshot_request), D (mounts_request),
  D (commit_snapshot_request), D (remove_snapshot_request), D (stat_snapshot_request),
  D (update_snapshot_request), D (list_snapshots_request), D (usage_request),
  D (cleanup_request), D (info),
};

/* every string field of m, recursively, has no NUL and valid-looking length */
static size_t
strings_len (const ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *d = m->descriptor;
  size_t total = 0;
  for (unsigned i = 0; i < d->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &d->fields[i];
      const char *base = (const char *) m + f->offset;
      size_t count = 1;
      const void *const *vals = (const void *const *) base;
      if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          count = *(const size_t *) ((const char *) m + f->quantifier_offset);
          vals = *(const void *const *const *) base;
        }
      for (size_t k = 0; k < count; k++)
        {
          const void *v = vals[k];
          if (f->type == PROTOBUF_C_TYPE_STRING && v)
            total += strlen (v);
          else if (f->type == PROTOBUF_C_TYPE_MESSAGE && v)
            total += strings_len (v);
        }
    }
  return total;
}

static const char *
field (void *ctx, char *const *path, size_t n, bool *present)
{
  (void) ctx;
  *present = n > 0 && path[0][0] != 'x';
  return *present ? path[n - 1] : NULL;
}

static void
filters (const uint8_t *p, size_t n)
{
  char *list[8];
  size_t k = 0;
  const uint8_t *end = p + n;
  while (p < end && k < ARRAY_SIZE (list))
    {
      const uint8_t *nl = memchr (p, '\n', end - p);
      size_t len = (nl ? nl : end) - p;
      list[k++] = xstrndup ((const char *) p, len);
      p = nl ? nl + 1 : end;
    }
  struct ov_filter *f;
  ov_error_t err = NULL;
  if (ov_filter_parse (&f, list, k, &err) == 0)
    {
      ov_filter_match (f, field, NULL);
      ov_filter_free (f);
    }
  else
    {
      REQUIRE (err != NULL && err->msg != NULL);
      ov_error_free (&err);
    }
  for (size_t i = 0; i < k; i++)
    free (list[i]);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const ProtobufCMessageDescriptor *d = requests[data[0] % ARRAY_SIZE (requests)];
  const char *why = NULL;
  ProtobufCMessage *m = ov_pb_unpack (d, data + 1, size - 1, &why);
  if (m == NULL)
    REQUIRE (why != NULL);
  else
    {
      size_t n = protobuf_c_message_get_packed_size (m);
      uint8_t *out = xmalloc (n + 1);
      REQUIRE (protobuf_c_message_pack (m, out) == n);
      /* packed again, then decoded again: the same strings */
      ProtobufCMessage *again = ov_pb_unpack (d, out, n, &why);
      REQUIRE (again != NULL);
      REQUIRE (strings_len (again) == strings_len (m));
      protobuf_c_message_free_unpacked (again, NULL);
      protobuf_c_message_free_unpacked (m, NULL);
      free (out);
    }
  filters (data + 1, size - 1);
  return 0;
}
