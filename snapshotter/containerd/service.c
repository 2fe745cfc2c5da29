#include "service.h"
#include "filter.h"
#include "grpc-msg.h"
#include "grpc-pb.h"

#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"

#include <stdio.h>

#define SNAP(x) Containerd__Services__Snapshots__V1__##x
#define DESC(x) containerd__services__snapshots__v1__##x##__descriptor
#define LIST_BATCH 100           /* infos per ListSnapshotsResponse */
#define LIST_BATCH_BYTES (1u << 20)

/* Every map<string,string> entry protobuf-c generates has this layout. */
struct pb_entry
{
  ProtobufCMessage base;
  char *key, *value;
};

static struct ov_label_in *
labels_in (size_t n, void *const *entries)
{
  struct ov_label_in *l = xcalloc (n ? n : 1, sizeof *l);
  for (size_t i = 0; i < n; i++)
    {
      const struct pb_entry *e = entries[i];
      l[i].key = e->key ? e->key : "";
      l[i].value = e->value ? e->value : "";
    }
  return l;
}

static int
fail_err (struct ov_grpc_status *st, ov_error_t *err)
{
  int code = ov_grpc_code_of ((*err)->code);
  ov_grpc_fail (st, code == OV_GRPC_OK ? OV_GRPC_UNKNOWN : code, "%s", (*err)->msg);
  ov_error_free (err);
  return st->code;
}

static void *
decode (const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, struct ov_grpc_status *st)
{
  const char *why;
  ProtobufCMessage *m = ov_pb_unpack (d, p, n, &why);
  if (m == NULL)
    ov_grpc_fail (st, OV_GRPC_INVALID_ARGUMENT, "%s: %s", d->name, why);
  return m;
}

static void
pack (const ProtobufCMessage *m, struct ov_buf *out)
{
  size_t n = protobuf_c_message_get_packed_size (m);
  buf_reserve (out, n + 1);
  out->len = protobuf_c_message_pack (m, out->data);
}

/* --- Info ----------------------------------------------------------------------------------- */

struct info_pb
{
  SNAP (Info) info;
  Google__Protobuf__Timestamp created, updated;
  SNAP (Info__LabelsEntry) *entries;
  SNAP (Info__LabelsEntry) **ptrs;
};

/* Info for s; its strings point into s (valid until s changes). */
static void
info_of (struct ov_snapshotter *sn, const struct ov_snap *s, struct info_pb *ip)
{
  SNAP (Info) init = CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ip->info = init;
  ip->created = ip->updated = ts;
  ip->created.seconds = s->created / 1000000000;
  ip->created.nanos = s->created % 1000000000;
  ip->updated.seconds = s->updated / 1000000000;
  ip->updated.nanos = s->updated % 1000000000;
  ip->info.name = s->key;
  ip->info.parent = (char *) ov_sn_parent_key (sn, s);
  ip->info.kind = (SNAP (Kind)) s->kind;
  ip->info.created_at = &ip->created;
  ip->info.updated_at = &ip->updated;
  ip->entries = xcalloc (s->n_labels ? s->n_labels : 1, sizeof *ip->entries);
  ip->ptrs = xcalloc (s->n_labels ? s->n_labels : 1, sizeof *ip->ptrs);
  for (size_t i = 0; i < s->n_labels; i++)
    {
      SNAP (Info__LabelsEntry) e = CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__LABELS_ENTRY__INIT;
      e.key = s->labels[i].key;
      e.value = s->labels[i].value;
      ip->entries[i] = e;
      ip->ptrs[i] = &ip->entries[i];
    }
  ip->info.n_labels = s->n_labels;
  ip->info.labels = ip->ptrs;
}

static void
info_free (struct info_pb *ip)
{
  free (ip->entries);
  free (ip->ptrs);
}

/* --- mounts --------------------------------------------------------------------------------- */

/* A response with one repeated Mount field (Prepare, View, Mounts: the same layout). */
static void
pack_mounts (const ProtobufCMessageDescriptor *d, const struct ov_mount *m, struct ov_buf *out)
{
  Containerd__Types__Mount pm = CONTAINERD__TYPES__MOUNT__INIT;
  pm.type = m->type;
  pm.source = m->source;
  pm.n_options = m->n_options;
  pm.options = (char **) m->options;
  Containerd__Types__Mount *ptr = &pm;
  SNAP (MountsResponse) r;
  protobuf_c_message_init (d, &r);
  r.n_mounts = 1;
  r.mounts = &ptr;
  pack (&r.base, out);
}

/* --- the RPCs ------------------------------------------------------------------------------- */

static int
create (void *ctx, enum ov_snap_kind kind, const uint8_t *p, size_t n, struct ov_buf *out,
        struct ov_grpc_status *st)
{
  struct ov_snapshotter *sn = ctx;
  /* PrepareSnapshotRequest and ViewSnapshotRequest are the same message */
  const ProtobufCMessageDescriptor *d
      = kind == OV_SNAP_ACTIVE ? &DESC (prepare_snapshot_request) : &DESC (view_snapshot_request);
  SNAP (PrepareSnapshotRequest) *r = decode (d, p, n, st);
  if (r == NULL)
    return st->code;
  cleanup_free struct ov_label_in *l = labels_in (r->n_labels, (void *const *) r->labels);
  ov_error_t err = NULL;
  struct ov_mount m;
  int code = OV_GRPC_OK;
  if (ov_sn_create (sn, kind, r->key, r->parent, l, r->n_labels, &m, &err) < 0)
    code = fail_err (st, &err);
  else
    {
      pack_mounts (kind == OV_SNAP_ACTIVE ? &DESC (prepare_snapshot_response)
                                          : &DESC (view_snapshot_response),
                   &m, out);
      ov_mount_free (&m);
    }
  protobuf_c_message_free_unpacked (&r->base, NULL);
  return code;
}

static int
rpc_prepare (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  return create (ctx, OV_SNAP_ACTIVE, p, n, out, st);
}

static int
rpc_view (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  return create (ctx, OV_SNAP_VIEW, p, n, out, st);
}

static int
rpc_mounts (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  SNAP (MountsRequest) *r = decode (&DESC (mounts_request), p, n, st);
  if (r == NULL)
    return st->code;
  ov_error_t err = NULL;
  struct ov_mount m;
  int code = OV_GRPC_OK;
  if (ov_sn_mounts (ctx, r->key, &m, &err) < 0)
    code = fail_err (st, &err);
  else
    {
      pack_mounts (&DESC (mounts_response), &m, out);
      ov_mount_free (&m);
    }
  protobuf_c_message_free_unpacked (&r->base, NULL);
  return code;
}

static int
rpc_commit (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  (void) out; /* google.protobuf.Empty: no bytes */
  SNAP (CommitSnapshotRequest) *r = decode (&DESC (commit_snapshot_request), p, n, st);
  if (r == NULL)
    return st->code;
  cleanup_free struct ov_label_in *l = labels_in (r->n_labels, (void *const *) r->labels);
  ov_error_t err = NULL;
  int code = OV_GRPC_OK;
  if (ov_sn_commit (ctx, r->name, r->key, l, r->n_labels, &err) < 0)
    code = fail_err (st, &err);
  protobuf_c_message_free_unpacked (&r->base, NULL);
  return code;
}

static int
rpc_remove (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  (void) out;
  SNAP (RemoveSnapshotRequest) *r = decode (&DESC (remove_snapshot_request), p, n, st);
  if (r == NULL)
    return st->code;
  ov_error_t err = NULL;
  int code = OV_GRPC_OK;
  if (ov_sn_remove (ctx, r->key, &err) < 0)
    code = fail_err (st, &err);
  protobuf_c_message_free_unpacked (&r->base, NULL);
  return code;
}

static void
pack_info (struct ov_snapshotter *sn, const ProtobufCMessageDescriptor *d,
           const struct ov_snap *s, struct ov_buf *out)
{
  struct info_pb ip;
  info_of (sn, s, &ip);
  /* StatSnapshotResponse and UpdateSnapshotResponse: one Info field */
  SNAP (StatSnapshotResponse) r;
  protobuf_c_message_init (d, &r);
  r.info = &ip.info;
  pack (&r.base, out);
  info_free (&ip);
}

static int
rpc_stat (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  SNAP (StatSnapshotRequest) *r = decode (&DESC (stat_snapshot_request), p, n, st);
  if (r == NULL)
    return st->code;
  ov_error_t err = NULL;
  int code = OV_GRPC_OK;
  const struct ov_snap *s = ov_sn_stat (ctx, r->key, &err);
  if (s == NULL)
    code = fail_err (st, &err);
  else
    pack_info (ctx, &DESC (stat_snapshot_response), s, out);
  protobuf_c_message_free_unpacked (&r->base, NULL);
  return code;
}

static int
rpc_update (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  SNAP (UpdateSnapshotRequest) *r = decode (&DESC (update_snapshot_request), p, n, st);
  if (r == NULL)
    return st->code;
  int code = OV_GRPC_OK;
  if (r->info == NULL)
    code = ov_grpc_fail (st, OV_GRPC_INVALID_ARGUMENT, "update: the request names no snapshot");
  else
    {
      cleanup_free struct ov_label_in *l
          = labels_in (r->info->n_labels, (void *const *) r->info->labels);
      ov_error_t err = NULL;
      const struct ov_snap *s
          = ov_sn_update (ctx, r->info->name, l, r->info->n_labels,
                          r->update_mask ? r->update_mask->paths : NULL,
                          r->update_mask ? r->update_mask->n_paths : 0, &err);
      if (s == NULL)
        code = fail_err (st, &err);
      else
        pack_info (ctx, &DESC (update_snapshot_response), s, out);
    }
  protobuf_c_message_free_unpacked (&r->base, NULL);
  return code;
}

static int
rpc_usage (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  SNAP (UsageRequest) *r = decode (&DESC (usage_request), p, n, st);
  if (r == NULL)
    return st->code;
  ov_error_t err = NULL;
  int code = OV_GRPC_OK;
  struct ov_usage u;
  if (ov_sn_usage (ctx, r->key, &u, &err) < 0)
    code = fail_err (st, &err);
  else
    {
      SNAP (UsageResponse) resp = CONTAINERD__SERVICES__SNAPSHOTS__V1__USAGE_RESPONSE__INIT;
      resp.size = u.size;
      resp.inodes = u.inodes;
      pack (&resp.base, out);
    }
  protobuf_c_message_free_unpacked (&r->base, NULL);
  return code;
}

static int
rpc_cleanup (void *ctx, const uint8_t *p, size_t n, struct ov_buf *out, struct ov_grpc_status *st)
{
  (void) out;
  SNAP (CleanupRequest) *r = decode (&DESC (cleanup_request), p, n, st);
  if (r == NULL)
    return st->code;
  protobuf_c_message_free_unpacked (&r->base, NULL);
  ov_error_t err = NULL;
  if (ov_sn_cleanup (ctx, &err) < 0)
    return fail_err (st, &err);
  return OV_GRPC_OK;
}

/* --- List (server streaming) ---------------------------------------------------------------- */

struct list_cursor
{
  uint64_t *ids; /* the matches when the call began; looked up again as they are sent */
  size_t n, next;
};

struct field_ctx
{
  struct ov_snapshotter *sn;
  const struct ov_snap *s;
  struct ov_buf joined;
};

/* snapshots/storage's adaptor: kind, name, parent, labels.KEY */
static const char *
snap_field (void *ctx, char *const *path, size_t n, bool *present)
{
  struct field_ctx *fc = ctx;
  *present = false;
  if (n == 0)
    return NULL;
  if (strcmp (path[0], "kind") == 0)
    {
      *present = true;
      return ov_snap_kind_name (fc->s->kind);
    }
  if (strcmp (path[0], "name") == 0)
    {
      *present = true;
      return fc->s->key;
    }
  if (strcmp (path[0], "parent") == 0)
    {
      *present = true;
      return ov_sn_parent_key (fc->sn, fc->s);
    }
  if (strcmp (path[0], "labels") == 0 && fc->s->n_labels)
    {
      fc->joined.len = 0;
      for (size_t i = 1; i < n; i++)
        {
          if (i > 1)
            buf_u8 (&fc->joined, '.');
          buf_put (&fc->joined, path[i], strlen (path[i]));
        }
      buf_u8 (&fc->joined, '\0');
      const char *v = ov_snap_label (fc->s, (const char *) fc->joined.data);
      *present = v != NULL;
      return v;
    }
  return NULL;
}

static int
list_open (void *ctx, const uint8_t *p, size_t n, void **cursor, struct ov_grpc_status *st)
{
  struct ov_snapshotter *sn = ctx;
  SNAP (ListSnapshotsRequest) *r = decode (&DESC (list_snapshots_request), p, n, st);
  if (r == NULL)
    return st->code;
  struct ov_filter *f;
  ov_error_t err = NULL;
  int code = OV_GRPC_OK;
  if (ov_filter_parse (&f, r->filters, r->n_filters, &err) < 0)
    code = fail_err (st, &err);
  protobuf_c_message_free_unpacked (&r->base, NULL);
  if (code != OV_GRPC_OK)
    return code;
  struct list_cursor *c = xcalloc (1, sizeof *c);
  c->ids = xcalloc (sn->db.n ? sn->db.n : 1, sizeof *c->ids);
  struct field_ctx fc = { sn, NULL, { 0 } };
  for (size_t i = 0; i < sn->db.n; i++)
    {
      fc.s = sn->db.snaps[i];
      if (ov_filter_match (f, snap_field, &fc))
        c->ids[c->n++] = fc.s->id;
    }
  buf_free (&fc.joined);
  ov_filter_free (f);
  *cursor = c;
  return OV_GRPC_OK;
}

static int
list_next (void *ctx, void *cursor, struct ov_buf *out, struct ov_grpc_status *st)
{
  (void) st;
  struct ov_snapshotter *sn = ctx;
  struct list_cursor *c = cursor;
  if (c->next >= c->n)
    return 0;
  struct info_pb ips[LIST_BATCH];
  SNAP (Info) *ptrs[LIST_BATCH];
  size_t k = 0, bytes = 0;
  while (c->next < c->n && k < LIST_BATCH && bytes < LIST_BATCH_BYTES)
    {
      const struct ov_snap *s = ov_snapdb_get (&sn->db, c->ids[c->next++]);
      if (s == NULL)
        continue; /* removed since the call began */
      info_of (sn, s, &ips[k]);
      ptrs[k] = &ips[k].info;
      bytes += protobuf_c_message_get_packed_size (&ips[k].info.base);
      k++;
    }
  SNAP (ListSnapshotsResponse) r = CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_RESPONSE__INIT;
  r.n_info = k;
  r.info = ptrs;
  pack (&r.base, out);
  for (size_t i = 0; i < k; i++)
    info_free (&ips[i]);
  return 1;
}

static void
list_close (void *ctx, void *cursor)
{
  (void) ctx;
  struct list_cursor *c = cursor;
  free (c->ids);
  free (c);
}

#define SVC "/containerd.services.snapshots.v1.Snapshots/"

const struct ov_grpc_method ov_snapshots_methods[] = {
  { SVC "Prepare", rpc_prepare, NULL, NULL, NULL },
  { SVC "View", rpc_view, NULL, NULL, NULL },
  { SVC "Mounts", rpc_mounts, NULL, NULL, NULL },
  { SVC "Commit", rpc_commit, NULL, NULL, NULL },
  { SVC "Remove", rpc_remove, NULL, NULL, NULL },
  { SVC "Stat", rpc_stat, NULL, NULL, NULL },
  { SVC "Update", rpc_update, NULL, NULL, NULL },
  { SVC "List", NULL, list_open, list_next, list_close },
  { SVC "Usage", rpc_usage, NULL, NULL, NULL },
  { SVC "Cleanup", rpc_cleanup, NULL, NULL, NULL },
};
const size_t ov_snapshots_n_methods = ARRAY_SIZE (ov_snapshots_methods);
