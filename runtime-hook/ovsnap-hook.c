/* ovsnap-hook: the OCI runtime hook. It reads the OCI state on stdin and,
 *   createRuntime / prestart  attaches every volume named in the
 *                             org.ovsnap.volumes annotation inside the
 *                             container, places the control socket and
 *                             starts the per-container agent;
 *   poststop                  makes the final commit (if the agent has not)
 *                             and removes the attachments.
 * The stage is argv[1], or taken from the state's status (as under
 * hooks.d, where every stage gets the same args). */
#include "agent.h"
#include "file.h"
#include "attach.h"
#include "mount.h"
#include "nsexec.h"
#include "oci.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static const char usage[] =
  "usage: ovsnap-hook [--root DIR] [--store s3://BUCKET[/PREFIX]] [createRuntime|prestart|poststart|poststop] < STATE\n"
  "--store defaults to $OVSNAP_STORE (endpoint and credentials from AWS_*).\n"
  "An OCI runtime hook (see README: Containers). Volumes come from the bundle's\n"
  "annotations: org.ovsnap.volumes=NAME:/path[:ro],... org.ovsnap.commit-interval=SECONDS\n"
  "org.ovsnap.commit-on-exit=true|false org.ovsnap.create-if-missing=true|false\n";

static const char *store_url; /* --store or $OVSNAP_STORE */

struct sock_ctx
{
  const char *rootfs;
  int sock;
};

/* In the container's mount namespace: bind the (inherited) socket at
 * /run/ovsnap/control.sock below the rootfs. */
static int
bind_control (void *ctx, ov_error_t *err)
{
  struct sock_ctx *c = ctx;
  cleanup_close int rootfd = open (c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return ov_error (err, errno, "open rootfs");
  cleanup_close int dir = ov_resolve_dir_in_root (rootfd, "/run/ovsnap", true, err);
  if (dir < 0)
    return -1;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/control.sock", dir);
  unlinkat (dir, "control.sock", 0);
  if (bind (c->sock, (struct sockaddr *) &sa, sizeof sa) < 0)
    return ov_error (err, errno, "bind /run/ovsnap/control.sock");
  char proc[64];
  snprintf (proc, sizeof proc, "/proc/self/fd/%d/control.sock", dir);
  chmod (proc, 0666); /* any process in the container may commit or reload */
  if (listen (c->sock, 16) < 0)
    return ov_error (err, errno, "listen");
  return 0;
}

static int
control_socket (int pid, const char *rootfs, ov_error_t *err)
{
  int sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return ov_error (err, errno, "socket");
  struct sock_ctx c = { rootfs, sock };
  if (ov_in_mntns (pid, bind_control, &c, err) < 0)
    {
      close (sock);
      return -1;
    }
  return sock;
}

/* The agent outlives the hook: double fork, new session, stdio to a log,
 * no fd of the runtime's kept open (it waits for our output to end). */
static int
spawn_agent (const struct ov_agent *a, const char *log, ov_error_t *err)
{
  fflush (NULL);
  pid_t child = fork ();
  if (child < 0)
    return ov_error (err, errno, "fork agent");
  if (child == 0)
    {
      setsid ();
      if (fork () != 0)
        _exit (0);
      int lfd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      int nul = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      dup2 (nul, 0);
      dup2 (lfd >= 0 ? lfd : nul, 1);
      dup2 (lfd >= 0 ? lfd : nul, 2);
      for (int fd = 3; fd < 1024; fd++)
        if (fd != a->listen_fd)
          close (fd);
      _exit (ov_agent_run (a));
    }
  int status;
  waitpid (child, &status, 0);
  return 0;
}

struct have_ctx
{
  const char *id;
  bool found;
};

static int
have_cb (const struct ov_attachment *a, void *ctx)
{
  struct have_ctx *h = ctx;
  h->found |= a->container && strcmp (a->container, h->id) == 0;
  return 0;
}

/* The bundle's config.json (the volumes asked for), parsed. */
static int
read_config (const struct ov_oci_state *st, struct ov_oci_config *cfg, ov_error_t *err)
{
  cleanup_close int bfd = open (st->bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (bfd < 0)
    return ov_error (err, errno, "bundle %s", st->bundle);
  struct ov_buf b = { 0 };
  if (ov_read_file_at (bfd, "config.json", &b, 16u << 20) < 0)
    {
      buf_free (&b);
      return ov_error (err, errno, "read %s/config.json", st->bundle);
    }
  int r = ov_oci_config_parse ((const char *) b.data, b.len, cfg, err);
  buf_free (&b);
  return r;
}

static int
create_runtime (struct ov_node *n, const struct ov_oci_state *st, ov_error_t *err)
{
  struct ov_oci_config cfg;
  int r = read_config (st, &cfg, err);
  if (r < 0 || cfg.nvols == 0)
    return r;
  if (st->pid <= 0)
    {
      ov_oci_config_free (&cfg);
      return ov_error_set (err, OV_EUSAGE, 0, "OCI state has no pid: run ovsnap-hook as a createRuntime or prestart hook");
    }
  /* prestart and createRuntime may both call us: attach once */
  struct have_ctx h = { st->id, false };
  if (ov_attachment_each (n, have_cb, &h, err) < 0 || h.found)
    {
      ov_oci_config_free (&cfg);
      return h.found ? 0 : -1;
    }
  cleanup_free char *rootfs = cfg.root_path[0] == '/' ? xstrdup (cfg.root_path)
                                                      : xasprintf ("%s/%s", st->bundle, cfg.root_path);
  for (size_t i = 0; r == 0 && i < cfg.nvols; i++)
    {
      struct ov_attach_req req = {
        .volume = cfg.vols[i].name,
        .readonly = cfg.vols[i].readonly,
        .create_if_missing = cfg.create_if_missing,
        .dir = cfg.vols[i].path,
        .container = st->id,
        .pid = st->pid,
        .rootfs = rootfs,
      };
      struct ov_attachment att;
      r = ov_attach (n, &req, &att, err);
      if (r < 0)
        ov_error_prefix (err, "volume '%s' at %s", cfg.vols[i].name, cfg.vols[i].path);
      else
        attachment_free (&att);
    }
  if (r < 0)
    {
      /* leave nothing behind: unmount and forget what was attached */
      ov_error_t e = NULL;
      ov_container_detach_all (n, st->id, rootfs, &e);
      ov_error_free (&e);
      ov_oci_config_free (&cfg);
      return -1;
    }
  ov_error_t e = NULL;
  int sock = control_socket (st->pid, rootfs, &e);
  if (sock < 0)
    {
      fprintf (stderr, "ovsnap-hook: warning: no control socket in the container: %s\n", e->msg);
      ov_error_free (&e);
    }
  cleanup_free char *log = xasprintf ("%s/agents/%s.log", n->root, st->id);
  struct ov_agent a = { n->root, st->id, st->pid, cfg.interval, cfg.commit_on_exit, sock, store_url };
  r = spawn_agent (&a, log, err);
  if (sock >= 0)
    close (sock);
  ov_oci_config_free (&cfg);
  return r;
}

static int
poststop (struct ov_node *n, const struct ov_oci_state *st, ov_error_t *err)
{
  bool commit = true;
  ov_error_t e = NULL;
  struct ov_oci_config cfg;
  if (read_config (st, &cfg, &e) == 0)
    {
      commit = cfg.commit_on_exit;
      ov_oci_config_free (&cfg);
    }
  ov_error_free (&e);
  struct ov_buf ids = { 0 };
  if (commit)
    {
      int failed = ov_container_commit_all (n, st->id, "final commit", &ids, &e);
      buf_free (&ids);
      if (failed < 0 && e->code == OV_ENOTFOUND)
        {
          ov_error_free (&e);
          return 0; /* the agent has done it all */
        }
      if (failed)
        {
          *err = e;
          return ov_error_prefix (err, "final commit (the attachment is kept; retry with ovsnap commit %s)",
                                  st->id);
        }
    }
  if (ov_store_lock (n->store, false, err) < 0)
    return -1;
  return ov_container_detach_all (n, st->id, NULL, err);
}

/* The stage, when the runtime does not say: hooks.d (podman, CRI-O) gives
 * every stage the same args. runc reports "creating" at createRuntime and
 * prestart, crun "created"; both report "running" at poststart and
 * "stopped" at poststop. NULL: not a status we know. */
static const char *
stage_of_status (const char *status)
{
  if (strcmp (status, "creating") == 0 || strcmp (status, "created") == 0)
    return "createRuntime";
  if (strcmp (status, "stopped") == 0)
    return "poststop";
  if (strcmp (status, "running") == 0)
    return "poststart";
  return NULL;
}

/* Does the bundle ask for volumes? (An unreadable config counts as yes:
 * better a refused start than a container silently without its volume.) */
static bool
wants_volumes (const struct ov_oci_state *st)
{
  ov_error_t e = NULL;
  struct ov_oci_config cfg;
  bool wants = true;
  if (read_config (st, &cfg, &e) == 0)
    {
      wants = cfg.nvols > 0;
      ov_oci_config_free (&cfg);
    }
  ov_error_free (&e);
  return wants;
}

int
main (int argc, char **argv)
{
  const char *root = getenv ("OVSNAP_ROOT");
  if (root == NULL || root[0] == '\0')
    root = "/var/lib/ovsnap";
  const char *stage = NULL;
  store_url = getenv ("OVSNAP_STORE");
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--root") == 0 && i + 1 < argc)
        root = argv[++i];
      else if (strcmp (argv[i], "--store") == 0 && i + 1 < argc)
        store_url = argv[++i];
      else if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        {
          fputs (usage, stdout);
          return 0;
        }
      else if (argv[i][0] == '-')
        {
          fprintf (stderr, "ovsnap-hook: unknown option '%s'\n%s", argv[i], usage);
          return OV_EUSAGE;
        }
      else if (stage == NULL && strcmp (argv[i], "ovsnap-hook") != 0)
        stage = argv[i];
    }
  ov_error_t err = NULL;
  struct ov_buf in = { 0 };
  struct ov_oci_state st;
  int r = ov_read_fd (STDIN_FILENO, &in, 1u << 20) < 0 ? ov_error (&err, errno, "read OCI state")
                                                        : ov_oci_state_parse ((const char *) in.data, in.len, &st, &err);
  buf_free (&in);
  if (r < 0)
    {
      fprintf (stderr, "ovsnap-hook: %s\n", err->msg);
      return err->code;
    }
  if (stage == NULL)
    stage = stage_of_status (st.status);
  if (stage == NULL && wants_volumes (&st))
    {
      fprintf (stderr,
               "ovsnap-hook: container %s: cannot tell the hook stage from the OCI state status '%s' "
               "(expected 'creating' or 'created' at createRuntime or prestart, 'stopped' at poststop); "
               "refusing to start the container without its volumes: give the stage as the hook's "
               "first argument\n",
               st.id, st.status);
      ov_oci_state_free (&st);
      return OV_EUSAGE;
    }
  if (stage == NULL)
    stage = "";
  struct ov_node *n = NULL;
  r = ov_node_open_store (&n, root, store_url, OV_STORE_CREATE, &err);
  if (r == 0 && (strcmp (stage, "createRuntime") == 0 || strcmp (stage, "prestart") == 0))
    {
      r = ov_store_lock (n->store, false, &err);
      if (r == 0)
        r = create_runtime (n, &st, &err);
    }
  else if (r == 0 && strcmp (stage, "poststop") == 0)
    r = poststop (n, &st, &err);
  int code = 0;
  if (r < 0)
    {
      fprintf (stderr, "ovsnap-hook: container %s: %s\n", st.id, err->msg);
      code = err->code ? err->code : 1;
      ov_error_free (&err);
    }
  ov_node_close (n);
  ov_oci_state_free (&st);
  return code;
}
