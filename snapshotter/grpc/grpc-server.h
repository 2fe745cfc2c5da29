/* A small gRPC server: HTTP/2 (libnghttp2) on a unix socket, one thread,
 * one epoll loop, nonblocking sockets. It serves unary and server-streaming
 * methods from a table; each handler gets the request message's bytes and
 * answers with a status, a message for it, and (if OK) the response
 * message(s). The daemon of snapshotter/containerd is its one user.
 *
 * What the server itself guarantees whatever a peer sends: a request larger
 * than OV_GRPC_MAX_MESSAGE is refused (RESOURCE_EXHAUSTED) without being
 * buffered; an unknown :path is UNIMPLEMENTED; grpc-timeout is honoured
 * (DEADLINE_EXCEEDED when it runs out before the answer); broken HTTP/2
 * closes that connection only; memory per connection is bounded. */
#ifndef OVSNAP_GRPC_SERVER_H
#define OVSNAP_GRPC_SERVER_H

#include "error.h"
#include "util.h"

#include <stddef.h>
#include <stdint.h>

/* A handler's answer. code is an OV_GRPC_* status; message (malloc'd, may
 * be NULL) goes to grpc-message. */
struct ov_grpc_status
{
  int code;
  char *message;
};

/* Sets st and returns st->code. */
int ov_grpc_fail (struct ov_grpc_status *st, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

struct ov_grpc_method
{
  const char *path; /* "/package.Service/Method" */
  /* Unary: the request's bytes in, one response message out (*resp, when
   * the returned code is OK). */
  int (*unary) (void *ctx, const uint8_t *req, size_t n, struct ov_buf *resp,
                struct ov_grpc_status *st);
  /* Server streaming: open parses the request and makes a cursor; next
   * is called each time the peer can take more and fills one message into
   * *resp (returns 1), ends the stream (0) or fails (-1, st set); close
   * frees the cursor. */
  int (*open) (void *ctx, const uint8_t *req, size_t n, void **cursor, struct ov_grpc_status *st);
  int (*next) (void *ctx, void *cursor, struct ov_buf *resp, struct ov_grpc_status *st);
  void (*close) (void *ctx, void *cursor);
};

/* Called once per finished call (the final status is known) with the
 * method's path as sent, the status and the seconds it took. */
typedef void (*ov_grpc_log_fn) (void *ctx, const char *path, const struct ov_grpc_status *st,
                                double seconds);

struct ov_grpc_server;

/* Listens on the unix socket at path (a stale socket file there is
 * replaced; a live one is refused). */
int ov_grpc_server_new (struct ov_grpc_server **out, const char *path,
                        const struct ov_grpc_method *methods, size_t n_methods, void *ctx,
                        ov_grpc_log_fn log, ov_error_t *err);
/* Serves until stop_fd becomes readable (a signalfd, say); returns 0. */
int ov_grpc_server_run (struct ov_grpc_server *s, int stop_fd, ov_error_t *err);
/* Closes every connection and removes the socket file. */
void ov_grpc_server_free (struct ov_grpc_server *s);

#endif
