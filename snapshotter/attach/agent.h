/* The per-container agent, started by the OCI hook and detached from the
 * runtime: it commits the container's volumes every `interval` seconds,
 * makes a final commit when the container's init process exits, then
 * removes the attachments; and it serves the control socket placed in the
 * container at /run/ovsnap/control.sock.
 *
 * Control protocol: one request per line, one reply per request.
 *   commit [VOLUME]  -> ok SNAPSHOT...      (one id per volume committed)
 *   reload [VOLUME]  -> ok SNAPSHOT...
 *   status           -> VOLUME PATH SNAPSHOT clean|dirty  (one line per volume), then ok
 *   anything else    -> error usage ...
 * Failures: error CODE MESSAGE, CODE one of error usage notfound busy nospace corrupt. */
#ifndef OVSNAP_AGENT_H
#define OVSNAP_AGENT_H

#include "node.h"

#define OV_CONTROL_LINE_MAX 1024

struct ov_agent
{
  const char *root;      /* store root */
  const char *container; /* container id */
  int pid;               /* container init */
  int interval;          /* seconds between background commits; 0: none */
  bool commit_on_exit;
  int listen_fd;         /* control socket, or -1 */
  const char *store;     /* NULL, or the remote store's URL (s3://) */
};

/* Runs until the container exits; returns an exit status. */
int ov_agent_run (const struct ov_agent *a);

/* Handles one request line for the container's attachments; appends the
 * reply (newline-terminated lines) to reply. */
void ov_control_handle (struct ov_node *n, const char *container, const char *line,
                        struct ov_buf *reply);

/* Commit every volume of a container (background, final and host-side
 * commits); returns how many failed. */
int ov_container_commit_all (struct ov_node *n, const char *container, const char *message,
                             struct ov_buf *ids, ov_error_t *err);
int ov_container_reload_all (struct ov_node *n, const char *container, struct ov_buf *ids,
                             ov_error_t *err);
/* Remove a stopped container's attachments. */
int ov_container_detach_all (struct ov_node *n, const char *container, const char *rootfs,
                             ov_error_t *err);

#endif
