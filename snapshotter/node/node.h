/* A node: what belongs to one machine, beside the store it serves. The
 * cache of lower layers (cache/), attachments (attach/), the trash
 * (trash/), agents' logs (agents/) and node locks (locks/), all beneath
 * one directory, --root. The store (objects, packs, snapshot records,
 * volume heads) is reached only through its backend: the local directory
 * backend may share the node's directory (the embedded default), a remote
 * one never does. Node-level code (node/, attach/, gc's cache sweep, the
 * hook) takes a node; store-level code (store/, tree/, capture/) takes
 * n->store. */
#ifndef OVSNAP_NODE_H
#define OVSNAP_NODE_H

#include "store.h"

struct ov_node
{
  char *root;
  int fd;
  struct ov_store *store;
  bool owns_store;
};

/* Creates root and the node's folders if missing; store stays the caller's. */
int ov_node_open (struct ov_node **out, const char *root, struct ov_store *store,
                  ov_error_t *err);
/* The node at root and the store it serves, opened together (and closed
 * with it): store_url NULL (or "") is the local store sharing root,
 * "s3://BUCKET[/PREFIX]" a bucket (caches beneath root); flags as
 * ov_store_open's. What the CLI, the hook and the agent open. */
int ov_node_open_store (struct ov_node **out, const char *root, const char *store_url, int flags,
                        ov_error_t *err);
void ov_node_close (struct ov_node *n);
/* An exclusive node lock (flock on locks/NAME), held until the fd is closed. */
int ov_node_lock (struct ov_node *n, const char *name, ov_error_t *err);
/* Small node records (an attachment's state): read whole; replaced
 * atomically and durably. */
int ov_node_read (struct ov_node *n, const char *path, struct ov_buf *out, ov_error_t *err);
int ov_node_write (struct ov_node *n, const char *path, const struct ov_buf *b, ov_error_t *err);

#endif
