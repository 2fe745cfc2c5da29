/* Processes: background work that outlives the command that asked for it,
 * and telling a process from a later one with the same pid. */
#ifndef OVSNAP_PROC_H
#define OVSNAP_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Runs fn in a detached grandchild (new session, stdin/stdout on
 * /dev/null), for work that must not hold up the command that asked. It
 * inherits the caller's open files, so release locks first. */
void ov_run_detached (void (*fn) (void *ctx), void *ctx);

/* Start time of a process (clock ticks since boot), to tell a pid reused. */
uint64_t ov_pid_start_time (pid_t pid);

#endif
