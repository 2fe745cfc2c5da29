#include "sandbox.h"
#include "file.h"
#include "store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <ucontext.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* What the capture and merge code needs, and the C runtime (and ASan) under it. */
static const char *const allowed[] = {
  "read", "write", "pread64", "pwrite64", "readv", "writev", "lseek", "close", "openat",
  "open", "fstat", "newfstatat", "stat", "lstat", "statx", "statfs", "fstatfs", "getdents64",
  "readlinkat", "readlink", "flistxattr", "fgetxattr", "llistxattr", "lgetxattr", "listxattr",
  "getxattr", "linkat", "unlinkat", "renameat", "renameat2", "mkdirat", "fsync", "fdatasync",
  "sync_file_range",
  "syncfs", "flock", "fcntl", "dup", "dup2", "dup3", "faccessat", "faccessat2", "access",
  "umask", "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "futex", "set_robust_list",
  "get_robust_list", "rseq", "set_tid_address", "rt_sigprocmask", "rt_sigaction",
  "rt_sigreturn", "sigaltstack", "exit", "exit_group", "getpid", "gettid", "getppid", "getuid",
  "geteuid", "getgid", "getegid", "getresuid", "getresgid", "clock_gettime", "clock_getres",
  "gettimeofday", "nanosleep", "clock_nanosleep", "getrandom", "sched_yield",
  "sched_getaffinity", "prlimit64", "getrlimit", "setrlimit", "sysinfo", "uname", "prctl",
  "arch_prctl", "kill", "tgkill", "tkill", "pipe2", "poll", "ppoll", "ioctl", "membarrier",
  "getcwd", "close_range",
};

/* for a remote store (ov_sandbox_allow_network) */
static const char *const network[] = {
  "socket", "connect", "getsockopt", "setsockopt", "getsockname", "getpeername", "sendto",
  "recvfrom", "sendmsg", "recvmsg", "shutdown", "socketpair", "eventfd2", "epoll_create1",
  "epoll_ctl", "epoll_wait", "epoll_pwait", "select", "pselect6", "bind",
};
static bool allow_network;

void
ov_sandbox_allow_network (bool on)
{
  allow_network = on;
}

static void
on_sigsys (int sig UNUSED, siginfo_t *si, void *uc_)
{
  ucontext_t *uc = uc_;
  char buf[128];
  const char *name = seccomp_syscall_resolve_num_arch (SCMP_ARCH_NATIVE, si->si_syscall);
  int n = snprintf (buf, sizeof buf, "ovsnap: sandbox: forbidden system call %d (%s)\n",
                    si->si_syscall, name ? name : "?");
  if (write (STDERR_FILENO, buf, n) < 0)
    n = 0;
#ifdef __x86_64__
  uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[0] = -EPERM;
#endif
  (void) uc;
}

/* What a worker keeps of root's capabilities: reading every file and
 * directory of an upper whatever its mode (DAC_READ_SEARCH), O_NOATIME on
 * files it does not own (FOWNER), and trusted.* xattrs, where overlayfs
 * marks opaque directories and containers keep their own (SYS_ADMIN; the
 * filter refuses mount, unshare, setns and the other calls it would
 * allow). Writing the store needs none: root owns it. Everything else
 * (DAC_OVERRIDE, CHOWN, SETUID, MKNOD, NET_*, SYS_PTRACE, ...) goes, from
 * the bounding set too, with no_new_privs set. */
static const int kept_caps[] = { CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_SYS_ADMIN };

static int
drop_capabilities (ov_error_t *err)
{
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return ov_error (err, errno, "sandbox: no_new_privs");
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  if (syscall (SYS_capget, &hdr, data) < 0)
    return ov_error (err, errno, "sandbox: capget");
  uint64_t keep = 0;
  for (size_t i = 0; i < ARRAY_SIZE (kept_caps); i++)
    keep |= 1ull << kept_caps[i];
  for (int c = 0; c <= 63; c++)
    if (!(keep & (1ull << c)) && prctl (PR_CAPBSET_READ, c, 0, 0, 0) == 1
        && prctl (PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return ov_error (err, errno, "sandbox: drop capability %d from the bounding set", c);
  uint64_t have = data[0].permitted | (uint64_t) data[1].permitted << 32;
  keep &= have;
  data[0].effective = data[0].permitted = (uint32_t) keep;
  data[1].effective = data[1].permitted = (uint32_t) (keep >> 32);
  data[0].inheritable = data[1].inheritable = 0;
  if (syscall (SYS_capset, &hdr, data) < 0)
    return ov_error (err, errno, "sandbox: capset");
  return 0;
}

/* The worker's own mount namespace, where `dir` is a read-only, nodev,
 * nosuid, noexec bind of itself: whatever a container swaps in there
 * between readdir and open, the kernel refuses to open a device node and
 * the worker cannot change a byte. */
static int
private_view (const char *dir, ov_error_t *err)
{
  if (unshare (CLONE_NEWNS) < 0)
    return ov_error (err, errno, "sandbox: mount namespace");
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return ov_error (err, errno, "sandbox: private mounts");
  if (mount (dir, dir, NULL, MS_BIND, NULL) < 0
      || mount (NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV | MS_NOSUID | MS_NOEXEC,
                NULL) < 0)
    return ov_error (err, errno, "sandbox: read-only view of %s", dir);
  return 0;
}

int
ov_sandbox_enter (ov_error_t *err)
{
  /* valgrind cannot run a program under seccomp (its own calls would
   * trap); memory checks and sandboxing are separate test passes */
  if (RUNNING_ON_VALGRIND)
    return 0;
  if (drop_capabilities (err) < 0)
    return -1;
  struct sigaction sa = { 0 };
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  if (sigaction (SIGSYS, &sa, NULL) < 0)
    return ov_error (err, errno, "sandbox: SIGSYS handler");
  /* Everything not listed traps: the call fails with EPERM and is reported. */
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_TRAP);
  if (ctx == NULL)
    return ov_error (err, ENOMEM, "sandbox: seccomp_init");
  int r = 0;
  for (size_t i = 0; r == 0 && i < ARRAY_SIZE (allowed); i++)
    {
      int nr = seccomp_syscall_resolve_name (allowed[i]);
      if (nr != __NR_SCMP_ERROR)
        r = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, nr, 0);
    }
  for (size_t i = 0; r == 0 && allow_network && i < ARRAY_SIZE (network); i++)
    {
      int nr = seccomp_syscall_resolve_name (network[i]);
      if (nr != __NR_SCMP_ERROR)
        r = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, nr, 0);
    }
  /* Threads, never processes: clone only with CLONE_THREAD; clone3 hides
   * its flags from seccomp, so it says ENOSYS and glibc falls back to clone. */
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, SCMP_SYS (clone), 1,
                          SCMP_A0 (SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (ENOSYS), SCMP_SYS (clone3), 0);
  /* SIGSYS must stay deliverable for the reports to work. */
  if (r == 0)
    r = seccomp_load (ctx);
  seccomp_release (ctx);
  if (r < 0)
    return ov_error (err, -r, "sandbox: load seccomp filter");
  return 0;
}

/* In a worker: the pipe to the caller until the reply is sent. A worker is
 * a process of its own, so this is the worker's alone. */
static int reply_fd = -1;

/* Workers that replied and may still be exiting; reaped later. */
static pid_t unreaped[16];
static size_t nunreaped;
/* callers may run workers from several threads at once */
static pthread_mutex_t unreaped_mu = PTHREAD_MUTEX_INITIALIZER;

/* Reply: "<length>\n" then "0 0 <result>" or "<code> <errnum> <message>";
 * the length tells a whole reply from one cut short by a killed worker. */
static int
send_reply (int fd, int r, const struct ov_buf *out, ov_error_t e)
{
  struct ov_buf msg = { 0 };
  char head[64];
  if (r == 0)
    snprintf (head, sizeof head, "0 0 ");
  else
    snprintf (head, sizeof head, "%d %d ", e ? e->code : 1, e ? e->errnum : 0);
  buf_put (&msg, head, strlen (head));
  if (r == 0)
    buf_put (&msg, out->data, out->len);
  else if (e)
    buf_put (&msg, e->msg, strlen (e->msg));
  snprintf (head, sizeof head, "%zu\n", msg.len);
  int w = write_all (fd, head, strlen (head));
  if (w == 0)
    w = write_all (fd, msg.data, msg.len);
  buf_free (&msg);
  return w;
}

void
ov_sandbox_reply (const struct ov_buf *result)
{
  if (reply_fd < 0)
    return;
  send_reply (reply_fd, 0, result, NULL);
  close (reply_fd);
  reply_fd = -1;
}

static void
reap_earlier (void)
{
  pthread_mutex_lock (&unreaped_mu);
  pid_t v[ARRAY_SIZE (unreaped)];
  size_t n = nunreaped;
  memcpy (v, unreaped, n * sizeof *v);
  nunreaped = 0;
  pthread_mutex_unlock (&unreaped_mu);
  for (size_t i = 0; i < n; i++)
    while (waitpid (v[i], NULL, 0) < 0 && errno == EINTR)
      ;
}

/* Test hook: what a worker taken over by hostile input could do to its view. */
static void
selftest_view (const char *view)
{
  cleanup_free char *probe = xasprintf ("%s/.ovsnap-selftest", view);
  int fd = open (probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  fprintf (stderr, "ovsnap: sandbox self-test: write in the view %s\n", fd < 0 ? strerror (errno) : "allowed");
  if (fd >= 0)
    close (fd);
  DIR *d = opendir (view);
  struct dirent *de;
  while (d && (de = readdir (d)))
    if (de->d_type == DT_CHR || de->d_type == DT_BLK)
      {
        cleanup_free char *dev = xasprintf ("%s/%s", view, de->d_name);
        int dfd = open (dev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        fprintf (stderr, "ovsnap: sandbox self-test: open device %s %s\n", de->d_name,
                 dfd < 0 ? strerror (errno) : "allowed");
        if (dfd >= 0)
          close (dfd);
      }
  if (d)
    closedir (d);
  FILE *f = fopen ("/proc/self/status", "re");
  char line[256];
  while (f && fgets (line, sizeof line, f))
    if (strncmp (line, "CapEff:", 7) == 0 || strncmp (line, "CapBnd:", 7) == 0)
      fprintf (stderr, "ovsnap: sandbox self-test: %s", line);
  if (f)
    fclose (f);
}

int
ov_sandbox_run (const char *view, int (*fn) (void *ctx, struct ov_buf *result, ov_error_t *err),
                void *ctx, struct ov_buf *result, ov_error_t *err)
{
  reap_earlier ();
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return ov_error (err, errno, "sandbox: pipe");
  fflush (NULL);
  pid_t parent = getpid ();
  ov_trace ("sandbox: forking");
  pid_t pid = fork ();
  if (pid < 0)
    {
      close (p[0]);
      close (p[1]);
      return ov_error (err, errno, "sandbox: fork");
    }
  if (pid == 0)
    {
      close (p[0]);
      /* the worker never outlives the command that started it */
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (getppid () != parent)
        _exit (1);
      reply_fd = p[1];
      ov_trace ("sandbox: forked");
      ov_error_t e = NULL;
      struct ov_buf out = { 0 };
      int r = view ? private_view (view, &e) : 0;
      ov_trace ("sandbox: view made");
      if (r == 0)
        r = ov_sandbox_enter (&e);
      ov_trace ("sandbox: entered");
      if (r == 0 && getenv ("OVSNAP_SANDBOX_SELFTEST"))
        {
          /* test hook: a worker taken over by hostile input tries these */
          char *const argv[] = { "/bin/sh", "-c", "echo escaped > \"$OVSNAP_SANDBOX_SELFTEST\"", NULL };
          execv ("/bin/sh", argv);
          fprintf (stderr, "ovsnap: sandbox self-test: exec refused: %s\n", strerror (errno));
          int sock = socket (AF_INET, SOCK_STREAM, 0);
          fprintf (stderr, "ovsnap: sandbox self-test: socket %s\n", sock < 0 ? strerror (errno) : "allowed");
          int m = mount ("none", "/mnt", "tmpfs", 0, NULL);
          fprintf (stderr, "ovsnap: sandbox self-test: mount %s\n", m < 0 ? strerror (errno) : "allowed");
          if (view)
            selftest_view (view);
        }
      if (r == 0)
        r = fn (ctx, &out, &e);
      int w = reply_fd < 0 ? 0 : send_reply (reply_fd, r, &out, e);
      _exit (w < 0 ? 3 : r < 0 ? 1 : 0);
    }
  close (p[1]);
  struct ov_buf in = { 0 };
  int rr = ov_read_fd (p[0], &in, 1u << 20);
  close (p[0]);
  buf_put (&in, "", 1);
  size_t len = 0;
  int hl = 0;
  bool whole = rr == 0 && sscanf ((const char *) in.data, "%zu\n%n", &len, &hl) == 1 && hl > 0
               && in.len - 1 == hl + len;
  int status = 0;
  /* A worker that replied has done its work; what it still does is free
   * memory and exit, which the caller need not wait for. */
  pid_t got;
  while ((got = waitpid (pid, &status, whole ? WNOHANG : 0)) < 0 && errno == EINTR)
    ;
  bool kept = false;
  if (got == 0)
    {
      pthread_mutex_lock (&unreaped_mu);
      if ((kept = nunreaped < ARRAY_SIZE (unreaped)))
        unreaped[nunreaped++] = pid;
      pthread_mutex_unlock (&unreaped_mu);
    }
  if (got == 0 && !kept)
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
      ;
  /* A test crash point (OVSNAP_FAULT) hit in the worker kills the whole
   * command, as it would without the sandbox. */
  if (!whole && WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL && getenv ("OVSNAP_FAULT"))
    kill (getpid (), SIGKILL);
  int code = 0, errnum = 0, off = 0;
  const char *body = (const char *) in.data + hl;
  if (!whole || sscanf (body, "%d %d %n", &code, &errnum, &off) < 2 || off == 0)
    {
      buf_free (&in);
      if (WIFSIGNALED (status))
        return ov_error (err, 0, "sandboxed worker killed by signal %d", WTERMSIG (status));
      return ov_error (err, 0, "sandboxed worker failed (status %d)", status);
    }
  int r = 0;
  if (code != 0)
    r = ov_error_set (err, code, 0, "%s", body + off);
  else
    buf_put (result, body + off, len - off);
  buf_free (&in);
  return r;
}
