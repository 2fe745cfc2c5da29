/* The gRPC server. Per connection: an nghttp2 server session fed from a
 * nonblocking socket (nghttp2_session_mem_recv) and written through its send
 * callback; when the socket is full the connection stops reading until it
 * drains, so a peer that never reads cannot make us queue answers without
 * bound. Per stream: the headers that matter (:method, :path, content-type,
 * grpc-timeout, grpc-encoding), the request message (grpc-msg.h), then one
 * answer: a trailers-only HEADERS frame for an error, or HEADERS, DATA,
 * trailers. A streaming answer makes one message per turn of the loop:
 * its data source says NGHTTP2_ERR_DEFERRED until the next message is made,
 * and nghttp2_session_resume_data wakes it, so one long List never starves
 * the other streams and connections. */
#include "grpc-server.h"
#include "grpc-msg.h"

#include <nghttp2/nghttp2.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define MAX_CONNS 1024
#define MAX_STREAMS 128                 /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define CONN_BUDGET (64u << 20)         /* request bytes buffered per connection */
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define PATH_MAX_LEN 256

struct conn;

struct stream
{
  struct conn *c;
  int32_t id;
  struct stream *prev, *next;           /* the connection's streams */
  struct stream *dprev, *dnext;         /* the server's deferred streams */
  bool deferred;
  char path[PATH_MAX_LEN];
  bool path_long, post, grpc_ct, ct_seen, bad_encoding;
  int64_t started, deadline;            /* monotonic ns; deadline 0: none */
  struct ov_grpc_rx rx;
  struct ov_buf req;
  bool have_req, remote_done, answered, logged, stop_after_answer;
  size_t buffered;                      /* counted in c->buffered */
  const struct ov_grpc_method *m;
  void *cursor;                         /* streaming: the handler's cursor */
  bool stream_end;                      /* no message left to make */
  struct ov_buf out;                    /* response bytes not yet taken by nghttp2 */
  size_t out_off;
  struct ov_grpc_status final;
};

struct conn
{
  struct ov_grpc_server *srv;
  int fd;
  nghttp2_session *ng;
  bool write_blocked, dead;
  uint32_t events;
  size_t buffered;
  struct stream *streams;
  struct conn *prev, *next;
};

struct ov_grpc_server
{
  int lfd, epfd;
  char *path;
  const struct ov_grpc_method *methods;
  size_t n_methods;
  void *ctx;
  ov_grpc_log_fn log;
  struct conn *conns;
  size_t n_conns;
  struct stream *deferred;
};

int
ov_grpc_fail (struct ov_grpc_status *st, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  free (st->message);
  if (vasprintf (&st->message, fmt, ap) < 0)
    abort ();
  va_end (ap);
  st->code = code;
  return code;
}

static int64_t
mono_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- streams ------------------------------------------------------------------------------ */

static void
deferred_del (struct stream *s)
{
  if (!s->deferred)
    return;
  if (s->dprev)
    s->dprev->dnext = s->dnext;
  else
    s->c->srv->deferred = s->dnext;
  if (s->dnext)
    s->dnext->dprev = s->dprev;
  s->deferred = false;
  s->dprev = s->dnext = NULL;
}

static void
deferred_add (struct stream *s)
{
  if (s->deferred)
    return;
  struct ov_grpc_server *srv = s->c->srv;
  s->dnext = srv->deferred;
  s->dprev = NULL;
  if (srv->deferred)
    srv->deferred->dprev = s;
  srv->deferred = s;
  s->deferred = true;
}

static void
stream_log (struct stream *s, const struct ov_grpc_status *st)
{
  if (s->logged)
    return;
  s->logged = true;
  struct ov_grpc_server *srv = s->c->srv;
  if (srv->log)
    srv->log (srv->ctx, s->path[0] ? s->path : "(no path)", st, (mono_ns () - s->started) / 1e9);
}

static void
stream_free (struct stream *s)
{
  struct conn *c = s->c;
  if (!s->logged)
    {
      struct ov_grpc_status st = { OV_GRPC_CANCELLED, (char *) "stream closed before the answer" };
      stream_log (s, &st);
    }
  deferred_del (s);
  if (s->prev)
    s->prev->next = s->next;
  else
    c->streams = s->next;
  if (s->next)
    s->next->prev = s->prev;
  if (s->cursor && s->m && s->m->close)
    s->m->close (c->srv->ctx, s->cursor);
  c->buffered -= s->buffered;
  ov_grpc_rx_free (&s->rx);
  buf_free (&s->req);
  buf_free (&s->out);
  free (s->final.message);
  free (s);
}

/* --- answers ------------------------------------------------------------------------------ */

#define NV(n, v) { (uint8_t *) (n), (uint8_t *) (v), sizeof (n) - 1, strlen (v), NGHTTP2_NV_FLAG_NONE }

/* The grpc-status and grpc-message fields of st (message percent-encoded
 * into *enc, which the caller frees); returns how many. */
static size_t
status_nv (nghttp2_nv *nv, const struct ov_grpc_status *st, char code[12], char **enc)
{
  snprintf (code, 12, "%d", st->code);
  nv[0] = (nghttp2_nv) NV ("grpc-status", code);
  *enc = NULL;
  if (st->message == NULL || st->message[0] == '\0')
    return 1;
  *enc = ov_grpc_percent_encode (st->message, 4096);
  nv[1] = (nghttp2_nv) NV ("grpc-message", *enc);
  return 2;
}

/* Ask the peer to stop sending a request we already answered (RFC 9113
 * 8.1: RST_STREAM NO_ERROR after a complete response), once the answer's
 * last frame is out: nghttp2 drops a queued answer when the reset goes first. */
static void
stop_request (struct stream *s)
{
  s->stop_after_answer = true;
}

/* A trailers-only answer: the status in the one HEADERS frame. */
static void
answer_error (struct stream *s, int code, const char *fmt, ...)
{
  if (s->answered)
    return;
  s->answered = true;
  struct ov_grpc_status st = { code, NULL };
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&st.message, fmt, ap) < 0)
    abort ();
  va_end (ap);
  char num[12];
  char *enc;
  nghttp2_nv nv[4] = { NV (":status", "200"), NV ("content-type", "application/grpc") };
  size_t n = 2 + status_nv (nv + 2, &st, num, &enc);
  nghttp2_submit_response (s->c->ng, s->id, nv, n, NULL);
  free (enc);
  stop_request (s);
  stream_log (s, &st);
  free (st.message);
}

/* An answer that is not gRPC at all (not POST, not application/grpc). */
static void
answer_http (struct stream *s, const char *status, const char *why)
{
  if (s->answered)
    return;
  s->answered = true;
  nghttp2_nv nv[] = { NV (":status", status) };
  nghttp2_submit_response (s->c->ng, s->id, nv, 1, NULL);
  stop_request (s);
  struct ov_grpc_status st = { OV_GRPC_INTERNAL, (char *) why };
  stream_log (s, &st);
}

static ssize_t
read_body (nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
           nghttp2_data_source *src, void *user)
{
  (void) user;
  struct stream *s = src->ptr;
  if (s->out_off < s->out.len)
    {
      size_t k = s->out.len - s->out_off;
      if (k > length)
        k = length;
      memcpy (buf, s->out.data + s->out_off, k);
      s->out_off += k;
      return k;
    }
  s->out.len = s->out_off = 0;
  if (!s->stream_end)
    {
      deferred_add (s);
      return NGHTTP2_ERR_DEFERRED;
    }
  *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
  char num[12];
  char *enc;
  nghttp2_nv nv[2];
  size_t n = status_nv (nv, &s->final, num, &enc);
  int rv = nghttp2_submit_trailer (ng, id, nv, n);
  free (enc);
  stream_log (s, &s->final);
  return rv == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static void
answer_data (struct stream *s)
{
  s->answered = true;
  nghttp2_nv nv[] = { NV (":status", "200"), NV ("content-type", "application/grpc") };
  nghttp2_data_provider dp = { .source.ptr = s, .read_callback = read_body };
  nghttp2_submit_response (s->c->ng, s->id, nv, ARRAY_SIZE (nv), &dp);
  stop_request (s);
}

/* The next message of a streaming answer, or its end. */
static void
stream_produce (struct stream *s)
{
  struct ov_grpc_server *srv = s->c->srv;
  if (s->deadline && mono_ns () >= s->deadline)
    {
      ov_grpc_fail (&s->final, OV_GRPC_DEADLINE_EXCEEDED, "deadline exceeded while streaming");
      s->stream_end = true;
      return;
    }
  struct ov_buf msg = { 0 };
  struct ov_grpc_status st = { 0, NULL };
  int r = s->m->next (srv->ctx, s->cursor, &msg, &st);
  if (r > 0)
    {
      ov_grpc_frame (&s->out, msg.data, msg.len);
      free (st.message);
    }
  else
    {
      s->stream_end = true;
      free (s->final.message);
      if (r < 0)
        s->final = st;
      else
        {
          free (st.message);
          s->final = (struct ov_grpc_status){ 0, NULL };
        }
    }
  buf_free (&msg);
}

static void
dispatch (struct stream *s)
{
  struct ov_grpc_server *srv = s->c->srv;
  struct ov_grpc_status st = { 0, NULL };
  const uint8_t *req = s->req.data;
  size_t n = s->req.len;
  if (s->m->unary)
    {
      struct ov_buf resp = { 0 };
      if (s->m->unary (srv->ctx, req, n, &resp, &st) != OV_GRPC_OK)
        {
          answer_error (s, st.code, "%s", st.message ? st.message : "");
          free (st.message);
          buf_free (&resp);
          return;
        }
      free (st.message);
      ov_grpc_frame (&s->out, resp.data, resp.len);
      buf_free (&resp);
      s->stream_end = true;
      answer_data (s);
      return;
    }
  if (s->m->open (srv->ctx, req, n, &s->cursor, &st) != OV_GRPC_OK)
    {
      s->cursor = NULL;
      answer_error (s, st.code, "%s", st.message ? st.message : "");
      free (st.message);
      return;
    }
  free (st.message);
  stream_produce (s);
  answer_data (s);
}

/* The request is complete (END_STREAM seen). */
static void
request_done (struct stream *s)
{
  s->remote_done = true;
  if (s->answered)
    return;
  if (ov_grpc_rx_end (&s->rx) == OV_GRPC_RX_ERROR)
    return answer_error (s, s->rx.code, "%s: %s", s->path, s->rx.why);
  if (!s->have_req)
    return answer_error (s, OV_GRPC_INTERNAL, "%s: no request message", s->path);
  if (s->deadline && mono_ns () >= s->deadline)
    return answer_error (s, OV_GRPC_DEADLINE_EXCEEDED, "%s: deadline exceeded before the call began",
                         s->path);
  dispatch (s);
}

/* The request's headers are complete: refuse now what cannot be served. */
static void
headers_done (struct stream *s)
{
  struct ov_grpc_server *srv = s->c->srv;
  if (!s->post)
    return answer_http (s, "405", "method is not POST");
  if (!s->grpc_ct)
    return answer_http (s, "415", "content-type is not application/grpc");
  if (s->path_long)
    return answer_error (s, OV_GRPC_UNIMPLEMENTED, "unknown method (a path of more than %d bytes)",
                         PATH_MAX_LEN - 1);
  for (size_t i = 0; i < srv->n_methods; i++)
    if (strcmp (srv->methods[i].path, s->path) == 0)
      s->m = &srv->methods[i];
  if (s->m == NULL)
    return answer_error (s, OV_GRPC_UNIMPLEMENTED, "unknown method %s", s->path);
  if (s->bad_encoding)
    return answer_error (s, OV_GRPC_UNIMPLEMENTED,
                         "%s: grpc-encoding other than identity is not supported", s->path);
}

/* --- nghttp2 callbacks -------------------------------------------------------------------- */

static int
on_begin_headers (nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
  struct conn *c = user;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  struct stream *s = xcalloc (1, sizeof *s);
  s->c = c;
  s->id = f->hd.stream_id;
  s->started = mono_ns ();
  ov_grpc_rx_init (&s->rx, OV_GRPC_MAX_MESSAGE);
  s->next = c->streams;
  if (c->streams)
    c->streams->prev = s;
  c->streams = s;
  nghttp2_session_set_stream_user_data (ng, s->id, s);
  return 0;
}

static bool
is (const uint8_t *p, size_t n, const char *lit)
{
  return n == strlen (lit) && memcmp (p, lit, n) == 0;
}

static int
on_header (nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
           const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
  (void) flags;
  (void) user;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  struct stream *s = nghttp2_session_get_stream_user_data (ng, f->hd.stream_id);
  if (s == NULL)
    return 0;
  if (is (name, nlen, ":path"))
    {
      if (vlen >= PATH_MAX_LEN || memchr (value, '\0', vlen))
        s->path_long = true;
      else
        {
          memcpy (s->path, value, vlen);
          s->path[vlen] = '\0';
        }
    }
  else if (is (name, nlen, ":method"))
    s->post = is (value, vlen, "POST");
  else if (is (name, nlen, "content-type"))
    {
      static const char ct[] = "application/grpc";
      s->grpc_ct = vlen >= sizeof ct - 1 && memcmp (value, ct, sizeof ct - 1) == 0
                   && (vlen == sizeof ct - 1 || value[sizeof ct - 1] == '+'
                       || value[sizeof ct - 1] == ';');
    }
  else if (is (name, nlen, "grpc-timeout"))
    {
      int64_t t = ov_grpc_parse_timeout ((const char *) value, vlen);
      if (t >= 0)
        s->deadline = t > INT64_MAX - s->started ? 0 : s->started + (t ? t : 1);
    }
  else if (is (name, nlen, "grpc-encoding"))
    s->bad_encoding = !is (value, vlen, "identity");
  return 0;
}

static int
on_data_chunk (nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
               void *user)
{
  (void) flags;
  struct conn *c = user;
  struct stream *s = nghttp2_session_get_stream_user_data (ng, id);
  if (s == NULL || s->answered)
    return 0;
  while (len > 0)
    {
      if (c->buffered + len > CONN_BUDGET)
        {
          answer_error (s, OV_GRPC_RESOURCE_EXHAUSTED,
                        "%s: the connection holds more than %u MiB of unread requests", s->path,
                        CONN_BUDGET >> 20);
          return 0;
        }
      size_t used;
      enum ov_grpc_rx_state r = ov_grpc_rx_feed (&s->rx, data, len, &used);
      data += used;
      len -= used;
      c->buffered += used;
      s->buffered += used;
      if (r == OV_GRPC_RX_ERROR)
        {
          if (s->rx.code == OV_GRPC_RESOURCE_EXHAUSTED)
            answer_error (s, s->rx.code, "%s: request message of %u bytes, at most %u", s->path,
                          s->rx.want, s->rx.max);
          else
            answer_error (s, s->rx.code, "%s: %s", s->path, s->rx.why);
          return 0;
        }
      if (r == OV_GRPC_RX_MORE)
        break;
      if (s->have_req)
        {
          answer_error (s, OV_GRPC_INTERNAL, "%s: more than one request message", s->path);
          return 0;
        }
      ov_grpc_rx_take (&s->rx, &s->req);
      s->have_req = true;
    }
  return 0;
}

static int
on_frame_recv (nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
  (void) user;
  if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
    return 0;
  struct stream *s = nghttp2_session_get_stream_user_data (ng, f->hd.stream_id);
  if (s == NULL)
    return 0;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
    headers_done (s);
  if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
    request_done (s);
  return 0;
}

static int
on_stream_close (nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
  (void) code;
  (void) user;
  struct stream *s = nghttp2_session_get_stream_user_data (ng, id);
  if (s)
    {
      nghttp2_session_set_stream_user_data (ng, id, NULL);
      stream_free (s);
    }
  return 0;
}

static int
on_frame_send (nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
  (void) user;
  if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
      || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  struct stream *s = nghttp2_session_get_stream_user_data (ng, f->hd.stream_id);
  if (s && s->stop_after_answer && !s->remote_done)
    nghttp2_submit_rst_stream (ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
  return 0;
}

static ssize_t
on_send (nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *user)
{
  (void) ng;
  (void) flags;
  struct conn *c = user;
  ssize_t n = send (c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n >= 0)
    return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
    {
      c->write_blocked = true;
      return NGHTTP2_ERR_WOULDBLOCK;
    }
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* --- connections -------------------------------------------------------------------------- */

static nghttp2_session_callbacks *callbacks;

static void
conn_close (struct conn *c)
{
  struct ov_grpc_server *srv = c->srv;
  nghttp2_session_del (c->ng); /* frees its streams without callbacks */
  while (c->streams)
    stream_free (c->streams);
  epoll_ctl (srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close (c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->n_conns--;
  free (c);
}

/* Write what nghttp2 has; then listen for what the connection can do next.
 * Returns -1 when the connection is finished (the caller closes it). */
static int
conn_flush (struct conn *c)
{
  c->write_blocked = false;
  if (nghttp2_session_send (c->ng) != 0)
    return -1;
  if (!nghttp2_session_want_read (c->ng) && !nghttp2_session_want_write (c->ng))
    return -1;
  uint32_t ev = c->write_blocked ? EPOLLOUT : EPOLLIN;
  if (ev != c->events)
    {
      struct epoll_event e = { .events = ev, .data.ptr = c };
      if (epoll_ctl (c->srv->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
        return -1;
      c->events = ev;
    }
  return 0;
}

static int
conn_read (struct conn *c)
{
  uint8_t buf[65536];
  for (int i = 0; i < 16 && !c->write_blocked; i++)
    {
      ssize_t n = recv (c->fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0)
        return -1;
      if (n < 0)
        {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          if (errno == EINTR)
            continue;
          return -1;
        }
      ssize_t rv = nghttp2_session_mem_recv (c->ng, buf, n);
      if (rv < 0)
        {
          /* broken HTTP/2: nghttp2 queued a GOAWAY; send it if the socket takes it */
          nghttp2_session_send (c->ng);
          return -1;
        }
      if (nghttp2_session_send (c->ng) != 0)
        return -1;
    }
  return conn_flush (c);
}

/* The socket is the trust boundary (a client may commit any content under
 * any name): only root and the server's own uid may talk to it, whatever
 * the socket file's mode has become. A refused peer is logged. */
static bool
peer_allowed (struct ov_grpc_server *srv, int fd)
{
  struct ucred cr;
  socklen_t len = sizeof cr;
  bool known = getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0;
  if (known && (cr.uid == 0 || cr.uid == geteuid ()))
    return true;
  if (srv->log)
    {
      struct ov_grpc_status st = { OV_GRPC_PERMISSION_DENIED, NULL };
      if (known)
        st.message = xasprintf ("connection of pid %d uid %u refused: only root or uid %u",
                                (int) cr.pid, (unsigned) cr.uid, (unsigned) geteuid ());
      else
        st.message = xasprintf ("connection refused: peer credentials: %s", strerror (errno));
      srv->log (srv->ctx, "(connect)", &st, 0);
      free (st.message);
    }
  return false;
}

static void
conn_accept (struct ov_grpc_server *srv)
{
  for (;;)
    {
      int fd = accept4 (srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return;
      if (srv->n_conns >= MAX_CONNS || !peer_allowed (srv, fd))
        {
          close (fd);
          continue;
        }
      struct conn *c = xcalloc (1, sizeof *c);
      c->srv = srv;
      c->fd = fd;
      nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 65536 },
      };
      struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
      if (nghttp2_session_server_new (&c->ng, callbacks, c) != 0)
        {
          close (fd);
          free (c);
          continue;
        }
      c->events = EPOLLIN;
      c->next = srv->conns;
      if (srv->conns)
        srv->conns->prev = c;
      srv->conns = c;
      srv->n_conns++;
      if (nghttp2_submit_settings (c->ng, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE (iv)) != 0
          || nghttp2_session_set_local_window_size (c->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0
          || epoll_ctl (srv->epfd, EPOLL_CTL_ADD, fd, &e) < 0 || conn_flush (c) < 0)
        conn_close (c);
    }
}

/* --- the loop ----------------------------------------------------------------------------- */

/* Answer the requests whose deadline passed; the ms until the next one
 * (-1: none). */
static int
expire (struct ov_grpc_server *srv)
{
  int64_t now = mono_ns (), next = -1;
  for (struct conn *c = srv->conns; c; c = c->next)
    {
      bool any = false;
      for (struct stream *s = c->streams; s; s = s->next)
        {
          if (!s->deadline || s->answered)
            continue;
          if (s->deadline <= now)
            {
              answer_error (s, OV_GRPC_DEADLINE_EXCEEDED, "%s: deadline exceeded", s->path);
              any = true;
            }
          else if (next < 0 || s->deadline < next)
            next = s->deadline;
        }
      if (any)
        c->dead = conn_flush (c) < 0;
    }
  if (next < 0)
    return -1;
  return (next - now) / 1000000 + 1;
}

/* Make one message for every deferred stream and wake it. */
static void
produce (struct ov_grpc_server *srv)
{
  struct stream *list = srv->deferred;
  srv->deferred = NULL;
  for (struct stream *s = list; s; s = s->dnext)
    s->deferred = false;
  /* a stream may close during a flush: resume all first, flush after */
  for (struct stream *s = list, *nx; s; s = nx)
    {
      nx = s->dnext;
      s->dprev = s->dnext = NULL;
      stream_produce (s);
      nghttp2_session_resume_data (s->c->ng, s->id);
    }
  for (struct conn *c = srv->conns; c; c = c->next)
    if (!c->dead && nghttp2_session_want_write (c->ng) && !c->write_blocked)
      c->dead = conn_flush (c) < 0;
}

static void
reap (struct ov_grpc_server *srv)
{
  for (struct conn *c = srv->conns, *nx; c; c = nx)
    {
      nx = c->next;
      if (c->dead)
        conn_close (c);
    }
}

int
ov_grpc_server_run (struct ov_grpc_server *srv, int stop_fd, ov_error_t *err)
{
  struct epoll_event e = { .events = EPOLLIN, .data.ptr = &stop_fd };
  if (epoll_ctl (srv->epfd, EPOLL_CTL_ADD, stop_fd, &e) < 0)
    return ov_error (err, errno, "epoll: add the stop descriptor");
  for (;;)
    {
      int timeout = expire (srv);
      reap (srv);
      if (srv->deferred)
        timeout = 0;
      struct epoll_event ev[64];
      int n = epoll_wait (srv->epfd, ev, ARRAY_SIZE (ev), timeout);
      if (n < 0 && errno != EINTR)
        return ov_error (err, errno, "epoll_wait");
      for (int i = 0; i < n; i++)
        {
          void *p = ev[i].data.ptr;
          if (p == &stop_fd)
            {
              epoll_ctl (srv->epfd, EPOLL_CTL_DEL, stop_fd, NULL);
              return 0;
            }
          if (p == srv)
            {
              conn_accept (srv);
              continue;
            }
          struct conn *c = p;
          if (c->dead)
            continue;
          if (ev[i].events & (EPOLLERR | EPOLLHUP) && !(ev[i].events & EPOLLIN))
            c->dead = true;
          else if (ev[i].events & EPOLLIN)
            c->dead = conn_read (c) < 0;
          else if (ev[i].events & EPOLLOUT)
            c->dead = conn_flush (c) < 0 || (!c->write_blocked && conn_read (c) < 0);
        }
      reap (srv);
      produce (srv);
    }
}

/* --- setup -------------------------------------------------------------------------------- */

static int
listen_unix (const char *path, ov_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof sa.sun_path)
    return ov_error_set (err, OV_EUSAGE, 0, "socket %s: path longer than %zu bytes", path,
                         sizeof sa.sun_path - 1);
  strcpy (sa.sun_path, path);
  struct stat st;
  if (lstat (path, &st) == 0)
    {
      if (!S_ISSOCK (st.st_mode))
        return ov_error_set (err, OV_EUSAGE, 0, "socket %s: exists and is not a socket", path);
      cleanup_close int probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (probe >= 0 && connect (probe, (struct sockaddr *) &sa, sizeof sa) == 0)
        return ov_error_set (err, OV_EBUSY, 0, "socket %s: another server is listening there",
                             path);
      if (unlink (path) < 0 && errno != ENOENT)
        return ov_error (err, errno, "socket %s: remove the stale socket", path);
    }
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return ov_error (err, errno, "socket");
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || chmod (path, 0600) < 0
      || listen (fd, 128) < 0)
    {
      int e = errno;
      close (fd);
      return ov_error (err, e, "socket %s: listen", path);
    }
  return fd;
}

int
ov_grpc_server_new (struct ov_grpc_server **out, const char *path,
                    const struct ov_grpc_method *methods, size_t n_methods, void *ctx,
                    ov_grpc_log_fn log, ov_error_t *err)
{
  if (callbacks == NULL)
    {
      if (nghttp2_session_callbacks_new (&callbacks) != 0)
        return ov_error (err, ENOMEM, "nghttp2 callbacks");
      nghttp2_session_callbacks_set_send_callback (callbacks, on_send);
      nghttp2_session_callbacks_set_on_begin_headers_callback (callbacks, on_begin_headers);
      nghttp2_session_callbacks_set_on_header_callback (callbacks, on_header);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback (callbacks, on_data_chunk);
      nghttp2_session_callbacks_set_on_frame_recv_callback (callbacks, on_frame_recv);
      nghttp2_session_callbacks_set_on_stream_close_callback (callbacks, on_stream_close);
      nghttp2_session_callbacks_set_on_frame_send_callback (callbacks, on_frame_send);
    }
  struct ov_grpc_server *srv = xcalloc (1, sizeof *srv);
  srv->methods = methods;
  srv->n_methods = n_methods;
  srv->ctx = ctx;
  srv->log = log;
  srv->lfd = srv->epfd = -1;
  srv->lfd = listen_unix (path, err);
  if (srv->lfd < 0)
    {
      free (srv);
      return -1;
    }
  srv->path = xstrdup (path);
  srv->epfd = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event e = { .events = EPOLLIN, .data.ptr = srv };
  if (srv->epfd < 0 || epoll_ctl (srv->epfd, EPOLL_CTL_ADD, srv->lfd, &e) < 0)
    {
      ov_error (err, errno, "epoll");
      ov_grpc_server_free (srv);
      return -1;
    }
  *out = srv;
  return 0;
}

void
ov_grpc_server_free (struct ov_grpc_server *srv)
{
  if (srv == NULL)
    return;
  while (srv->conns)
    conn_close (srv->conns);
  if (srv->lfd >= 0)
    {
      close (srv->lfd);
      unlink (srv->path);
    }
  if (srv->epfd >= 0)
    close (srv->epfd);
  free (srv->path);
  free (srv);
}
