/* ovsnap-snapshotter: containerd's proxy snapshotter daemon. Serves
 * containerd.services.snapshots.v1.Snapshots on a unix socket until
 * SIGTERM or SIGINT, then removes the socket and exits 0. */
#include "grpc-msg.h"
#include "grpc-server.h"
#include "service.h"
#include "snapshots.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_ROOT "/var/lib/ovsnap-snapshotter"
#define DEFAULT_ADDRESS "/run/ovsnap/snapshotter.sock"

static bool debug;

static void
usage (FILE *f)
{
  fprintf (f,
           "usage: ovsnap-snapshotter [--root DIR] [--address SOCKET] [--debug]\n"
           "                          [--layers tree|dir] [--node DIR] [--store URL]\n"
           "\n"
           "containerd proxy snapshotter: serves containerd.services.snapshots.v1.Snapshots\n"
           "(gRPC over HTTP/2) on the unix socket SOCKET, snapshots below DIR.\n"
           "\n"
           "  --root DIR        snapshots and metadata (default " DEFAULT_ROOT ")\n"
           "  --address SOCKET  the socket (default " DEFAULT_ADDRESS ")\n"
           "  --debug           log every call, not only the failed ones\n"
           "  --layers tree     committed snapshots as ovsnap trees in the store (default);\n"
           "                    dir: plain directories below DIR\n"
           "  --node DIR        the node (cache of lowers, shared with volumes; default DIR/node)\n"
           "  --store URL       the store (default: the node's local store)\n"
           "\n"
           "Exit status: 0 stopped by SIGTERM/SIGINT; 1 error; 2 usage; 4 the root or the\n"
           "socket is in use by another daemon; 6 damaged metadata.\n");
}

/* the log line's text: printable ASCII, the rest as \xHH (a path is the peer's) */
static void
put_clean (FILE *f, const char *s, size_t max)
{
  for (size_t i = 0; s[i] && i < max; i++)
    {
      unsigned char c = s[i];
      if (c >= 0x20 && c < 0x7f && c != '\\')
        fputc (c, f);
      else
        fprintf (f, "\\x%02x", c);
    }
}

static void
log_call (void *ctx, const char *path, const struct ov_grpc_status *st, double secs)
{
  (void) ctx;
  if (st->code == OV_GRPC_OK && !debug)
    return;
  const char *m = strrchr (path, '/');
  m = m && strncmp (path, "/containerd.services.snapshots.v1.Snapshots/", 44) == 0 ? m + 1 : path;
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r (&ts.tv_sec, &tm);
  char when[32];
  strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  fprintf (stderr, "%s.%03ldZ ", when, ts.tv_nsec / 1000000);
  put_clean (stderr, m, 256);
  fprintf (stderr, ": %s", ov_grpc_code_name (st->code));
  if (st->message && *st->message)
    {
      fputs (": ", stderr);
      put_clean (stderr, st->message, 1024);
    }
  fprintf (stderr, " (%.1f ms)\n", secs * 1000);
}

static int
mkdir_parent (const char *path)
{
  cleanup_free char *p = xstrdup (path);
  char *slash = strrchr (p, '/');
  if (slash == NULL || slash == p)
    return 0;
  *slash = '\0';
  for (char *s = p + 1; *s; s++)
    if (*s == '/')
      {
        *s = '\0';
        if (mkdir (p, 0755) < 0 && errno != EEXIST)
          return -1;
        *s = '/';
      }
  return mkdir (p, 0711) < 0 && errno != EEXIST ? -1 : 0;
}

int
main (int argc, char **argv)
{
  const char *root = DEFAULT_ROOT, *address = DEFAULT_ADDRESS;
  struct ov_sn_opts sopts = { .trees = true };
  static const struct option opts[] = {
    { "root", required_argument, NULL, 'r' },
    { "address", required_argument, NULL, 'a' },
    { "debug", no_argument, NULL, 'd' },
    { "layers", required_argument, NULL, 'l' },
    { "node", required_argument, NULL, 'n' },
    { "store", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (c)
      {
      case 'r':
        root = optarg;
        break;
      case 'a':
        address = optarg;
        break;
      case 'd':
        debug = true;
        break;
      case 'l':
        if (strcmp (optarg, "tree") != 0 && strcmp (optarg, "dir") != 0)
          {
            usage (stderr);
            return OV_EUSAGE;
          }
        sopts.trees = strcmp (optarg, "tree") == 0;
        break;
      case 'n':
        sopts.node_root = optarg;
        break;
      case 's':
        sopts.store_url = optarg;
        break;
      case 'h':
        usage (stdout);
        return 0;
      default:
        usage (stderr);
        return OV_EUSAGE;
      }
  if (optind != argc)
    {
      usage (stderr);
      return OV_EUSAGE;
    }
  setvbuf (stderr, NULL, _IOLBF, 0);
  umask (022);

  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigprocmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);
  cleanup_close int sfd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

  ov_error_t err = NULL;
  struct ov_snapshotter *sn = NULL;
  struct ov_grpc_server *srv = NULL;
  int rc = 0;
  if (sfd < 0)
    rc = ov_error (&err, errno, "signalfd");
  else if (ov_snapshotter_open_ex (&sn, root, &sopts, &err) < 0)
    rc = -1;
  else if (mkdir_parent (address) < 0)
    rc = ov_error (&err, errno, "create the directory of %s", address);
  else if (ov_grpc_server_new (&srv, address, ov_snapshots_methods, ov_snapshots_n_methods, sn,
                               log_call, &err) < 0)
    rc = -1;
  else
    {
      fprintf (stderr, "ovsnap-snapshotter: serving %s (root %s, %zu snapshots)\n", address,
               sn->root, sn->db.n);
      rc = ov_grpc_server_run (srv, sfd, &err);
    }
  int code = 0;
  if (rc < 0)
    {
      fprintf (stderr, "ovsnap-snapshotter: %s\n", err->msg);
      code = err->code ? err->code : OV_EGENERIC;
      if (code >= OV_GRPC_ERR (0))
        code = OV_EGENERIC;
      ov_error_free (&err);
    }
  else
    fprintf (stderr, "ovsnap-snapshotter: stopped\n");
  ov_grpc_server_free (srv);
  ov_snapshotter_close (sn);
  return code;
}
