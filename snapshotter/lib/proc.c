#include "proc.h"
#include "fault.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>

static pthread_mutex_t guards_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t **guards;
static size_t nguards, capguards;
static pthread_once_t guards_once = PTHREAD_ONCE_INIT;

static void
guards_prepare (void)
{
  pthread_mutex_lock (&guards_mu);
  for (size_t i = 0; i < nguards; i++)
    pthread_mutex_lock (guards[i]);
}

static void
guards_release (void)
{
  for (size_t i = nguards; i-- > 0;)
    pthread_mutex_unlock (guards[i]);
  pthread_mutex_unlock (&guards_mu);
}

static void
guards_init (void)
{
  pthread_atfork (guards_prepare, guards_release, guards_release);
}

void
ov_fork_guard_add (pthread_mutex_t *mu)
{
  pthread_once (&guards_once, guards_init);
  pthread_mutex_lock (&guards_mu);
  if (nguards == capguards)
    {
      capguards = capguards ? 2 * capguards : 16;
      guards = xrealloc (guards, capguards * sizeof *guards);
    }
  guards[nguards++] = mu;
  pthread_mutex_unlock (&guards_mu);
}

void
ov_fork_guard_remove (pthread_mutex_t *mu)
{
  pthread_mutex_lock (&guards_mu);
  for (size_t i = 0; i < nguards; i++)
    if (guards[i] == mu)
      {
        memmove (&guards[i], &guards[i + 1], (nguards - i - 1) * sizeof *guards);
        nguards--;
        break;
      }
  pthread_mutex_unlock (&guards_mu);
}

void
ov_run_detached (void (*fn) (void *ctx), void *ctx)
{
  fflush (NULL);
  pid_t pid = fork ();
  if (pid != 0)
    {
      if (pid > 0)
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
          ;
      return;
    }
  setsid ();
  if (fork () != 0)
    _exit (0);
  int nul = open ("/dev/null", O_RDWR | O_CLOEXEC);
  dup2 (nul, 0);
  dup2 (nul, 1);
  ov_pause ("background");
  fn (ctx);
  _exit (0);
}

uint64_t
ov_pid_start_time (pid_t pid)
{
  char path[64], buf[1024];
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* field 22, counted after the ")" that ends the command name */
  char *p = strrchr (buf, ')');
  if (p == NULL)
    return 0;
  unsigned long long v = 0;
  int field = 2;
  for (char *tok = strtok (p + 1, " "); tok; tok = strtok (NULL, " "))
    if (++field == 22)
      {
        v = strtoull (tok, NULL, 10);
        break;
      }
  return v;
}

