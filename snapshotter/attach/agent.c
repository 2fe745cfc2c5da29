#include "agent.h"
#include "attach.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_CLIENTS 16

static const char *
code_word (int code)
{
  switch (code)
    {
    case OV_EUSAGE:
      return "usage";
    case OV_ENOTFOUND:
      return "notfound";
    case OV_EBUSY:
      return "busy";
    case OV_ENOSPACE:
      return "nospace";
    case OV_ECORRUPT:
      return "corrupt";
    default:
      return "error";
    }
}

struct list
{
  const char *container;
  const char *volume; /* NULL: all */
  struct ov_attachment *v;
  size_t n;
};

static int
list_cb (const struct ov_attachment *a, void *ctx)
{
  struct list *l = ctx;
  if (a->container == NULL || strcmp (a->container, l->container) != 0)
    return 0;
  if (l->volume && strcmp (a->volume, l->volume) != 0)
    return 0;
  l->v = xrealloc (l->v, (l->n + 1) * sizeof *l->v);
  attachment_copy (&l->v[l->n++], a);
  return 0;
}

static int
list_of (struct ov_node *n, const char *container, const char *volume, struct list *l,
         ov_error_t *err)
{
  *l = (struct list){ container, volume, NULL, 0 };
  if (ov_attachment_each (n, list_cb, l, err) < 0)
    return -1;
  if (l->n == 0)
    return ov_error_set (err, OV_ENOTFOUND, 0, volume ? "volume '%s' is not attached here"
                                                      : "no volume is attached%s",
                         volume ? volume : "");
  return 0;
}

static void
list_free (struct list *l)
{
  for (size_t i = 0; i < l->n; i++)
    attachment_free (&l->v[i]);
  free (l->v);
}

static void
append (struct ov_buf *b, const char *s)
{
  buf_put (b, s, strlen (s));
}

/* commit or reload each listed attachment; ids go to `ids` space-separated */
static int
each_op (struct ov_node *n, struct list *l, bool reload, const char *message, struct ov_buf *ids,
         ov_error_t *err)
{
  struct ov_store *s = n->store;
  int failed = 0;
  for (size_t i = 0; i < l->n; i++)
    {
      struct ov_snapshot snap;
      bool changed;
      ov_error_t e = NULL;
      if (!reload && l->v[i].readonly)
        continue; /* nothing to commit there */
      int r = ov_store_lock (s, false, &e);
      if (r == 0)
        r = reload ? ov_reload (n, &l->v[i], &snap, &e)
                   : ov_commit (n, &l->v[i], message, &snap, &changed, &e);
      ov_store_unlock (s);
      if (r < 0)
        {
          failed++;
          if (*err == NULL)
            {
              ov_error_prefix (&e, "volume '%s'", l->v[i].volume);
              *err = e;
            }
          else
            ov_error_free (&e);
          continue;
        }
      char hex[OV_OID_STR];
      oid_hex (&snap.id, hex);
      if (ids->len)
        append (ids, " ");
      append (ids, hex);
      snapshot_free (&snap);
    }
  return failed;
}

int
ov_container_commit_all (struct ov_node *n, const char *container, const char *message,
                         struct ov_buf *ids, ov_error_t *err)
{
  struct list l;
  if (list_of (n, container, NULL, &l, err) < 0)
    return -1;
  int failed = each_op (n, &l, false, message, ids, err);
  list_free (&l);
  return failed;
}

int
ov_container_reload_all (struct ov_node *n, const char *container, struct ov_buf *ids,
                         ov_error_t *err)
{
  struct list l;
  if (list_of (n, container, NULL, &l, err) < 0)
    return -1;
  int failed = each_op (n, &l, true, NULL, ids, err);
  list_free (&l);
  return failed;
}

int
ov_container_detach_all (struct ov_node *n, const char *container, const char *rootfs,
                         ov_error_t *err)
{
  struct list l;
  ov_error_t e = NULL;
  if (list_of (n, container, NULL, &l, &e) < 0)
    {
      int notfound = e->code == OV_ENOTFOUND;
      if (notfound)
        ov_error_free (&e);
      else
        *err = e;
      return notfound ? 0 : -1;
    }
  int r = 0;
  for (size_t i = 0; i < l.n; i++)
    if (ov_detach (n, &l.v[i], rootfs, r == 0 ? err : &e) < 0)
      {
        r = -1;
        ov_error_free (&e);
      }
  list_free (&l);
  return r;
}

void
ov_control_handle (struct ov_node *n, const char *container, const char *line,
                   struct ov_buf *reply)
{
  char verb[16] = "", volume[80] = "", extra[8] = "";
  int words = sscanf (line, "%15s %79s %7s", verb, volume, extra);
  ov_error_t err = NULL;
  struct list l = { 0 };
  if (words < 1 || words > 2)
    ov_error_set (&err, OV_EUSAGE, 0, "expected: commit [VOLUME] | reload [VOLUME] | status");
  else if (strcmp (verb, "commit") == 0 || strcmp (verb, "reload") == 0)
    {
      bool reload = verb[0] == 'r';
      if (list_of (n, container, words == 2 ? volume : NULL, &l, &err) == 0)
        {
          struct ov_buf ids = { 0 };
          each_op (n, &l, reload, "commit (from the container)", &ids, &err);
          if (err == NULL)
            {
              append (reply, "ok ");
              buf_put (reply, ids.data, ids.len);
              append (reply, "\n");
            }
          buf_free (&ids);
        }
    }
  else if (strcmp (verb, "status") == 0 && words == 1)
    {
      if (list_of (n, container, NULL, &l, &err) == 0)
        {
          for (size_t i = 0; i < l.n; i++)
            {
              struct ov_attach_status st;
              ov_error_t e = NULL;
              bool dirty = ov_attachment_status (n, &l.v[i], &st, &e) == 0 && st.dirty;
              ov_error_free (&e);
              char hex[OV_OID_STR];
              oid_hex (&l.v[i].snapshot, hex);
              cleanup_free char *row = xasprintf ("%s %s %s %s\n", l.v[i].volume, l.v[i].dir, hex,
                                                  l.v[i].readonly ? "readonly" : dirty ? "dirty" : "clean");
              append (reply, row);
            }
          append (reply, "ok\n");
        }
    }
  else
    ov_error_set (&err, OV_EUSAGE, 0, "unknown request; expected: commit [VOLUME] | reload [VOLUME] | status");
  if (err)
    {
      /* one line: no newline from a message may break the protocol */
      cleanup_free char *msg = xstrdup (err->msg);
      for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
          *p = ' ';
      cleanup_free char *row = xasprintf ("error %s %s\n", code_word (err->code), msg);
      append (reply, row);
      ov_error_free (&err);
    }
  list_free (&l);
}

static void
logf_ (const char *fmt, const char *a, const char *b)
{
  time_t t = time (NULL);
  struct tm tm;
  char when[32];
  gmtime_r (&t, &tm);
  strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  fprintf (stderr, "%s ", when);
  fprintf (stderr, fmt, a, b);
  fputc ('\n', stderr);
  fflush (stderr);
}

static int
commit_round (struct ov_node *n, const char *container, const char *why)
{
  struct ov_buf ids = { 0 };
  ov_error_t err = NULL;
  int failed = ov_container_commit_all (n, container, why, &ids, &err);
  buf_put (&ids, "", 1);
  if (failed)
    logf_ ("%s failed: %s", why, err ? err->msg : "?");
  else
    logf_ ("%s: %s", why, (const char *) ids.data);
  ov_error_free (&err);
  buf_free (&ids);
  return failed;
}

struct client
{
  int fd;
  struct ov_buf in;
};

static void
client_close (struct client *c)
{
  close (c->fd);
  buf_free (&c->in);
  c->fd = -1;
}

/* Reads what is there; answers every complete line. */
static void
client_read (struct ov_node *n, const char *container, struct client *c)
{
  char buf[512];
  ssize_t got = recv (c->fd, buf, sizeof buf, MSG_DONTWAIT);
  if (got <= 0)
    {
      if (got == 0 || (errno != EAGAIN && errno != EINTR))
        client_close (c);
      return;
    }
  buf_put (&c->in, buf, got);
  for (;;)
    {
      uint8_t *nl = memchr (c->in.data, '\n', c->in.len);
      if (nl == NULL)
        {
          if (c->in.len > OV_CONTROL_LINE_MAX)
            {
              const char *e = "error usage request line too long\n";
              send (c->fd, e, strlen (e), MSG_NOSIGNAL);
              client_close (c);
            }
          return;
        }
      *nl = '\0';
      size_t used = nl - c->in.data + 1;
      if (nl > c->in.data && nl[-1] == '\r')
        nl[-1] = '\0';
      struct ov_buf reply = { 0 };
      if (memchr (c->in.data, '\0', used - 1))
        buf_put (&reply, "error usage NUL in request\n", 27);
      else
        ov_control_handle (n, container, (const char *) c->in.data, &reply);
      /* replies are short; a client that does not read them is dropped */
      struct pollfd p = { c->fd, POLLOUT, 0 };
      if (poll (&p, 1, 2000) != 1 || write_all (c->fd, reply.data, reply.len) < 0)
        {
          buf_free (&reply);
          client_close (c);
          return;
        }
      buf_free (&reply);
      memmove (c->in.data, c->in.data + used, c->in.len - used);
      c->in.len -= used;
    }
}

int
ov_agent_run (const struct ov_agent *a)
{
  struct ov_node *n;
  ov_error_t err = NULL;
  if (ov_node_open_store (&n, a->root, a->store, 0, &err) < 0)
    {
      logf_ ("agent: %s%s", err->msg, "");
      return 1;
    }
  int pidfd = pidfd_open (a->pid, 0);
  if (pidfd < 0)
    {
      logf_ ("agent: container init %s: %s", a->container, strerror (errno));
      ov_node_close (n);
      return 1;
    }
  logf_ ("agent for container %s started%s", a->container, "");
  struct client clients[MAX_CLIENTS];
  for (int i = 0; i < MAX_CLIENTS; i++)
    clients[i] = (struct client){ -1, { 0 } };
  double next = mono_seconds () + a->interval;
  for (;;)
    {
      struct pollfd fds[2 + MAX_CLIENTS];
      int idx[MAX_CLIENTS];
      int nfds = 0;
      fds[nfds++] = (struct pollfd){ pidfd, POLLIN, 0 };
      fds[nfds++] = (struct pollfd){ a->listen_fd, a->listen_fd >= 0 ? POLLIN : 0, 0 };
      for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].fd >= 0)
          {
            idx[nfds - 2] = i;
            fds[nfds++] = (struct pollfd){ clients[i].fd, POLLIN, 0 };
          }
      int timeout = -1;
      if (a->interval > 0)
        {
          double left = next - mono_seconds ();
          timeout = left <= 0 ? 0 : (int) (left * 1000) + 1;
        }
      int r = poll (fds, nfds, timeout);
      if (r < 0 && errno != EINTR)
        break;
      if (fds[0].revents)
        break; /* the container's init has exited */
      if (a->listen_fd >= 0 && (fds[1].revents & POLLIN))
        {
          int c = accept4 (a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
          int slot = -1;
          for (int i = 0; c >= 0 && i < MAX_CLIENTS && slot < 0; i++)
            if (clients[i].fd < 0)
              slot = i;
          if (c >= 0 && slot < 0)
            close (c);
          else if (c >= 0)
            clients[slot].fd = c;
        }
      for (int k = 2; k < nfds; k++)
        if (fds[k].revents)
          client_read (n, a->container, &clients[idx[k - 2]]);
      if (a->interval > 0 && mono_seconds () >= next)
        {
          commit_round (n, a->container, "background commit");
          next = mono_seconds () + a->interval;
        }
    }
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0)
      client_close (&clients[i]);
  /* Never throw away an upper whose final commit failed: the attachment
   * stays for `ovsnap commit CONTAINER` to retry. */
  if (a->commit_on_exit && commit_round (n, a->container, "final commit") != 0)
    logf_ ("container %s stopped; attachments kept for a retry%s", a->container, "");
  else if (ov_store_lock (n->store, false, &err) == 0
           && ov_container_detach_all (n, a->container, NULL, &err) == 0)
    logf_ ("container %s stopped; attachments removed%s", a->container, "");
  else
    logf_ ("cleanup: %s%s", err ? err->msg : "?", "");
  ov_error_free (&err);
  close (pidfd);
  ov_node_close (n);
  return 0;
}
