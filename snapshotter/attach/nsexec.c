#include "nsexec.h"
#include "util.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

int
ov_openat2 (int dirfd, const char *path, int flags, uint64_t resolve)
{
  struct open_how how = { .flags = flags, .resolve = resolve };
  return syscall (SYS_openat2, dirfd, path, &how, sizeof how);
}

int
ov_resolve_dir_in_root (int rootfd, const char *path, bool create, ov_error_t *err)
{
  const uint64_t res = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = ov_openat2 (rootfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC, res);
  if (fd >= 0 || errno != ENOENT || !create)
    return fd >= 0 ? fd : ov_error (err, errno, "%s", path);
  /* Walk down, creating what is missing; each step is resolved in root. */
  cleanup_close int cur = dup (rootfd);
  cleanup_free char *copy = xstrdup (path);
  char *save = NULL;
  for (char *c = strtok_r (copy, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      int next = ov_openat2 (cur, c, O_PATH | O_DIRECTORY | O_CLOEXEC, res);
      if (next < 0 && errno == ENOENT)
        {
          if (strcmp (c, "..") == 0 || mkdirat (cur, c, 0755) < 0)
            return ov_error (err, errno, "create %s", path);
          next = ov_openat2 (cur, c, O_PATH | O_DIRECTORY | O_CLOEXEC, res);
        }
      if (next < 0)
        return ov_error (err, errno, "%s", path);
      close (cur);
      cur = next;
    }
  int out = cur;
  cur = -1;
  return out;
}

int
ov_in_mntns (pid_t pid, int (*fn) (void *ctx, ov_error_t *err), void *ctx, ov_error_t *err)
{
  if (pid == 0)
    return fn (ctx, err);
  char nspath[64];
  snprintf (nspath, sizeof nspath, "/proc/%d/ns/mnt", pid);
  cleanup_close int nsfd = open (nspath, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0)
    return ov_error (err, errno, "open mount namespace of pid %d", pid);
  int pipefd[2];
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return ov_error (err, errno, "pipe");
  fflush (NULL);
  pid_t child = fork ();
  if (child < 0)
    {
      close (pipefd[0]);
      close (pipefd[1]);
      return ov_error (err, errno, "fork");
    }
  if (child == 0)
    {
      close (pipefd[0]);
      ov_error_t e = NULL;
      int r = setns (nsfd, CLONE_NEWNS) < 0 ? ov_error (&e, errno, "join mount namespace of pid %d", pid)
                                            : fn (ctx, &e);
      if (r < 0 && e)
        {
          char msg[4096];
          int n = snprintf (msg, sizeof msg, "%d %d %s", e->code, e->errnum, e->msg);
          if (write_all (pipefd[1], msg, n < (int) sizeof msg ? n : (int) sizeof msg - 1) < 0)
            _exit (254);
        }
      _exit (r < 0 ? 255 : r & 0x7f);
    }
  close (pipefd[1]);
  char msg[4096];
  ssize_t n = read_all (pipefd[0], msg, sizeof msg - 1);
  close (pipefd[0]);
  int status;
  while (waitpid (child, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED (status) && WEXITSTATUS (status) < 128)
    return WEXITSTATUS (status);
  if (n > 0)
    {
      msg[n] = '\0';
      int code = 0, errnum = 0, off = 0;
      if (sscanf (msg, "%d %d %n", &code, &errnum, &off) >= 2 && off > 0)
        {
          /* the child already appended strerror(errnum) */
          return ov_error_set (err, code, 0, "%s", msg + off);
        }
    }
  return ov_error (err, 0, "work in the mount namespace of pid %d failed", pid);
}
