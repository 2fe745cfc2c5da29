/* Processes: background work that outlives the command that asked for it,
 * and telling a process from a later one with the same pid. */
#ifndef OVSNAP_PROC_H
#define OVSNAP_PROC_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

/* fork() from a process whose other threads hold engine locks (a daemon
 * serving many operations): the child would inherit a lock held by a
 * thread that does not exist there, and a worker that then writes the
 * store would wait on it forever. Every engine mutex a forked child may
 * take is registered here; around every fork (pthread_atfork) the forking
 * thread takes them all, so the child finds each one free and what it
 * guards consistent. Never fork while holding one. Remove a mutex before
 * destroying it, without holding it. */
void ov_fork_guard_add (pthread_mutex_t *mu);
void ov_fork_guard_remove (pthread_mutex_t *mu);

/* Runs fn in a detached grandchild (new session, stdin/stdout on
 * /dev/null), for work that must not hold up the command that asked. It
 * inherits the caller's open files, so release locks first. */
void ov_run_detached (void (*fn) (void *ctx), void *ctx);

/* Start time of a process (clock ticks since boot), to tell a pid reused. */
uint64_t ov_pid_start_time (pid_t pid);

#endif
