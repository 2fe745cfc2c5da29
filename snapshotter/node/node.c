#include "node.h"
#include "file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#define NODE_RECORD_LIMIT (16u << 20)

int
ov_node_open (struct ov_node **out, const char *root, struct ov_store *store, ov_error_t *err)
{
  static const char *const dirs[] = { "cache", "attach", "trash", "agents", "locks", "tmp" };
  const char *failed;
  int fd = ov_open_dir_with (root, true, dirs, ARRAY_SIZE (dirs), &failed);
  if (fd < 0)
    return failed == root ? ov_error (err, errno, "open node directory %s", root)
                          : ov_error (err, errno, "create %s/%s", root, failed);
  struct ov_node *n = xcalloc (1, sizeof *n);
  n->root = xstrdup (root);
  n->fd = fd;
  n->store = store;
  *out = n;
  return 0;
}

int
ov_node_open_store (struct ov_node **out, const char *root, const char *store_url, int flags,
                    ov_error_t *err)
{
  struct ov_store *s;
  if (store_url && *store_url)
    {
      /* the node's folders first: the store keeps its caches there */
      if (ov_node_open (out, root, NULL, err) < 0)
        return -1;
      ov_node_close (*out);
      if (ov_store_open_url (&s, store_url, root, err) < 0)
        return -1;
    }
  else if (ov_store_open (&s, root, flags, err) < 0)
    return -1;
  if (ov_node_open (out, root, s, err) < 0)
    {
      ov_store_close (s);
      return -1;
    }
  (*out)->owns_store = true;
  return 0;
}

void
ov_node_close (struct ov_node *n)
{
  if (n == NULL)
    return;
  if (n->owns_store)
    ov_store_close (n->store);
  close (n->fd);
  free (n->root);
  free (n);
}

int
ov_node_lock (struct ov_node *n, const char *name, ov_error_t *err)
{
  int fd = ov_lock_at (n->fd, name, true);
  if (fd < 0)
    return ov_error (err, errno, "lock %s/locks/%s", n->root, name);
  return fd;
}

int
ov_node_read (struct ov_node *n, const char *path, struct ov_buf *out, ov_error_t *err)
{
  out->len = 0;
  if (ov_read_file_at (n->fd, path, out, NODE_RECORD_LIMIT) < 0)
    return ov_error (err, errno, "read %s/%s", n->root, path);
  return 0;
}

int
ov_node_write (struct ov_node *n, const char *path, const struct ov_buf *b, ov_error_t *err)
{
  if (ov_replace_file (n->fd, path, "tmp", b->data, b->len) < 0)
    return ov_error (err, errno, "write %s/%s", n->root, path);
  return 0;
}
