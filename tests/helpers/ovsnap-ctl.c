/* ovsnap-ctl: a minimal client of the control socket that ovsnap-hook places in a container, for
 * the container tests (busybox's shell has no unix-socket client). Built static into the test
 * rootfs.
 *
 *   ovsnap-ctl [-s SOCKET] WORD...
 *
 * Connects to SOCKET (default /run/ovsnap/control.sock), sends the words joined by spaces and a
 * newline, prints the reply up to and including the first line that starts with "ok" or "error"
 * (or up to EOF). Exit status: 0 on an "ok" reply, 1 on an "error" reply, 2 on a usage or
 * connection problem, 3 if the connection ended without either. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int
write_all (int fd, const char *p, size_t n)
{
  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return -1;
      p += w;
      n -= (size_t) w;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  const char *path = "/run/ovsnap/control.sock";
  int i = 1;
  if (i + 1 < argc && strcmp (argv[i], "-s") == 0)
    {
      path = argv[i + 1];
      i += 2;
    }
  if (i >= argc)
    {
      fprintf (stderr, "usage: ovsnap-ctl [-s SOCKET] WORD...\n");
      return 2;
    }
  char req[4096];
  size_t len = 0;
  for (; i < argc; i++)
    {
      size_t n = strlen (argv[i]);
      if (len + n + 2 > sizeof req)
        {
          fprintf (stderr, "ovsnap-ctl: request too long\n");
          return 2;
        }
      if (len)
        req[len++] = ' ';
      memcpy (req + len, argv[i], n);
      len += n;
    }
  req[len++] = '\n';

  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof sa.sun_path)
    {
      fprintf (stderr, "ovsnap-ctl: socket path too long\n");
      return 2;
    }
  strcpy (sa.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      fprintf (stderr, "ovsnap-ctl: %s: %s\n", path, strerror (errno));
      return 2;
    }
  if (write_all (fd, req, len) < 0)
    {
      fprintf (stderr, "ovsnap-ctl: send: %s\n", strerror (errno));
      return 2;
    }

  /* print whole lines; stop after the first "ok"/"error" line */
  char line[8192];
  size_t have = 0;
  for (;;)
    {
      ssize_t n = read (fd, line + have, sizeof line - 1 - have);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      have += (size_t) n;
      char *start = line, *nl;
      while ((nl = memchr (start, '\n', have - (size_t) (start - line))) != NULL)
        {
          *nl = '\0';
          printf ("%s\n", start);
          if (strncmp (start, "ok", 2) == 0 && (start[2] == '\0' || start[2] == ' '))
            return fflush (stdout) == 0 ? 0 : 2;
          if (strncmp (start, "error", 5) == 0 && (start[5] == '\0' || start[5] == ' '))
            {
              fflush (stdout);
              return 1;
            }
          start = nl + 1;
        }
      have -= (size_t) (start - line);
      memmove (line, start, have);
      if (have == sizeof line - 1)
        {
          line[have] = '\0';
          printf ("%s\n", line);
          have = 0;
        }
    }
  if (have)
    {
      line[have] = '\0';
      printf ("%s\n", line);
    }
  fflush (stdout);
  return 3;
}
