/* ovsnap-ctl: a tiny static client for the control socket the hook places
 * in containers, for images without socat or Python. Copy or bind-mount it
 * into a container and run `ovsnap-ctl commit`, `ovsnap-ctl reload [VOLUME]`
 * or `ovsnap-ctl status`. Exit 0 when the reply ends in "ok ...", 1 on
 * "error ...", 2 on usage or connection trouble. No library but libc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  const char *path = getenv ("OVSNAP_CONTROL") ? getenv ("OVSNAP_CONTROL") : "/run/ovsnap/control.sock";
  if (argc < 2 || strcmp (argv[1], "--help") == 0)
    {
      fprintf (stderr, "usage: ovsnap-ctl commit [VOLUME] | reload [VOLUME] | status\n");
      return 2;
    }
  char req[1024] = "";
  for (int i = 1; i < argc; i++)
    if (snprintf (req + strlen (req), sizeof req - strlen (req), "%s%s", i > 1 ? " " : "", argv[i])
        >= (int) (sizeof req - strlen (req)))
      return 2;
  strcat (req, "\n");
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      perror (path);
      return 2;
    }
  if (write (fd, req, strlen (req)) != (ssize_t) strlen (req))
    return 2;
  shutdown (fd, SHUT_WR);
  char buf[4096], last[4096] = "";
  size_t have = 0;
  ssize_t n;
  while ((n = read (fd, buf + have, sizeof buf - 1 - have)) > 0)
    {
      have += n;
      buf[have] = '\0';
      char *nl;
      while ((nl = strchr (buf, '\n')))
        {
          *nl = '\0';
          puts (buf);
          snprintf (last, sizeof last, "%s", buf);
          have -= nl + 1 - buf;
          memmove (buf, nl + 1, have + 1);
        }
      if (strncmp (last, "ok", 2) == 0 || strncmp (last, "error", 5) == 0)
        break;
    }
  close (fd);
  return strncmp (last, "ok", 2) == 0 ? 0 : strncmp (last, "error", 5) == 0 ? 1 : 2;
}
