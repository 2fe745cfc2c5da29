#include "busy.h"
#include "dir.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct found
{
  struct ov_buf msg;
  int count;
  size_t max;
  dev_t dev, lower_dev;
  int *mnt_ids; /* the mounts of dev */
  size_t nmnt;
  int pid; /* the one whose fds are being looked at */
};

/* The ids of the mounts of dev in the mount namespace of pid (0: ours). */
static void
mounts_of (struct found *f, pid_t pid)
{
  char path[64];
  snprintf (path, sizeof path, pid ? "/proc/%d/mountinfo" : "/proc/self/mountinfo", pid);
  FILE *m = fopen (path, "re");
  if (m == NULL)
    return;
  char *line = NULL;
  size_t cap = 0;
  while (getline (&line, &cap, m) > 0)
    {
      int id;
      unsigned maj, min;
      if (sscanf (line, "%d %*d %u:%u", &id, &maj, &min) == 3 && makedev (maj, min) == f->dev)
        {
          f->mnt_ids = xrealloc (f->mnt_ids, (f->nmnt + 1) * sizeof *f->mnt_ids);
          f->mnt_ids[f->nmnt++] = id;
        }
    }
  free (line);
  fclose (m);
}

/* Was fd `name` of f->pid opened through one of the mounts of dev? */
static bool
opened_on_mount (const struct found *f, const char *name)
{
  char path[320], buf[512];
  snprintf (path, sizeof path, "/proc/%d/fdinfo/%s", f->pid, name);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close (fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  const char *p = strstr (buf, "mnt_id:");
  int id = p ? atoi (p + strlen ("mnt_id:")) : -1;
  for (size_t i = 0; i < f->nmnt; i++)
    if (f->mnt_ids[i] == id)
      return true;
  return false;
}

static bool
is_ours (const struct found *f, dev_t d)
{
  return d == f->dev || (f->lower_dev && d == f->lower_dev);
}

static void
comm_of (int pid, char *out, size_t n)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/comm", pid);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t r = fd >= 0 ? read (fd, out, n - 1) : -1;
  if (fd >= 0)
    close (fd);
  if (r <= 0)
    r = 0;
  out[r] = '\0';
  char *nl = strchr (out, '\n');
  if (nl)
    *nl = '\0';
}

/* The pid as the process itself sees it (innermost pid namespace). */
static int
ns_pid (int pid)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return pid;
  char *line = NULL;
  size_t cap = 0;
  int inner = pid;
  while (getline (&line, &cap, f) > 0)
    if (strncmp (line, "NSpid:", 6) == 0)
      {
        char *last = strrchr (line, '\t');
        inner = last ? atoi (last + 1) : pid;
        break;
      }
  free (line);
  fclose (f);
  return inner > 0 ? inner : pid;
}

static void
add (struct found *f, int pid, const char *fmt, const char *path)
{
  f->count++;
  if ((size_t) f->count > f->max)
    return;
  char comm[64];
  comm_of (pid, comm, sizeof comm);
  cleanup_free char *what = xasprintf (fmt, path);
  int inner = ns_pid (pid);
  cleanup_free char *who = inner != pid ? xasprintf ("pid %d (%s, host pid %d)", inner, comm, pid)
                                        : xasprintf ("pid %d (%s)", pid, comm);
  cleanup_free char *line = xasprintf ("%s%s %s", f->msg.len ? "; " : "", who, what);
  buf_put (&f->msg, line, strlen (line));
}

static char *
link_of (const char *proc)
{
  char buf[PATH_MAX];
  ssize_t n = readlink (proc, buf, sizeof buf - 1);
  if (n < 0)
    return xstrdup ("?");
  buf[n] = '\0';
  return xstrdup (buf);
}

static bool
on_dev (const char *proc, const struct found *f)
{
  struct stat st;
  return stat (proc, &st) == 0 && st.st_dev == f->dev;
}

static int
scan_fd (int dirfd UNUSED, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct found *f = ctx;
  char fp[320];
  snprintf (fp, sizeof fp, "/proc/%d/fd/%s", f->pid, name);
  struct stat st;
  if (stat (fp, &st) < 0)
    return 0;
  /* per-layer devices are anonymous (major 0), as pipes and sockets are */
  if (st.st_dev == f->dev || (major (st.st_dev) == 0 && f->nmnt && opened_on_mount (f, name)))
    {
      cleanup_free char *l = link_of (fp);
      add (f, f->pid, "has %s open", l);
    }
  return 0;
}

static void
scan_pid (struct found *f, int pid)
{
  char p[96];
  snprintf (p, sizeof p, "/proc/%d/cwd", pid);
  if (on_dev (p, f))
    {
      cleanup_free char *l = link_of (p);
      add (f, pid, "has its cwd inside the volume (%s)", l);
    }
  snprintf (p, sizeof p, "/proc/%d/root", pid);
  if (on_dev (p, f))
    {
      cleanup_free char *l = link_of (p);
      add (f, pid, "has its root inside the volume (%s)", l);
    }
  snprintf (p, sizeof p, "/proc/%d/fd", pid);
  f->pid = pid;
  ov_dir_each_at (AT_FDCWD, p, true, scan_fd, f);
  snprintf (p, sizeof p, "/proc/%d/maps", pid);
  FILE *m = fopen (p, "re");
  if (m)
    {
      char *line = NULL;
      size_t cap = 0;
      char last[PATH_MAX] = "";
      while (getline (&line, &cap, m) > 0)
        {
          unsigned maj, min;
          int off = 0;
          if (sscanf (line, "%*s %*s %*s %x:%x %*s %n", &maj, &min, &off) < 2 || off == 0)
            continue;
          if (!is_ours (f, makedev (maj, min)))
            continue;
          char *path = line + off;
          path[strcspn (path, "\n")] = '\0';
          if (strcmp (path, last) == 0)
            continue; /* one line per mapped file */
          snprintf (last, sizeof last, "%s", path);
          add (f, pid, "maps %s", path);
        }
      free (line);
      fclose (m);
    }
}

static int
scan_proc_entry (int dirfd UNUSED, const char *name, unsigned char type UNUSED, void *ctx)
{
  struct found *f = ctx;
  char *end;
  long pid = strtol (name, &end, 10);
  if (*end == '\0' && pid > 0)
    scan_pid (f, pid);
  return 0;
}

int
ov_holders (dev_t dev, dev_t lower_dev, pid_t ns_pid, char **message, size_t max,
            ov_error_t *err)
{
  struct found f = { .max = max, .dev = dev, .lower_dev = lower_dev };
  if (lower_dev)
    mounts_of (&f, ns_pid);
  int r = ov_dir_each_at (AT_FDCWD, "/proc", false, scan_proc_entry, &f);
  free (f.mnt_ids);
  if (r < 0)
    return ov_error (err, errno, "open /proc");
  if (f.count > (int) max)
    {
      cleanup_free char *more = xasprintf ("; and %d more", f.count - (int) max);
      buf_put (&f.msg, more, strlen (more));
    }
  buf_put (&f.msg, "", 1);
  *message = (char *) f.msg.data;
  return f.count;
}
