/* Test-only fault points. OVSNAP_FAULT=NAME kills the process with SIGKILL
 * where ov_fault (NAME) stands (a crash at that step); OVSNAP_FAIL=NAME makes
 * ov_fail (NAME) true, and the step it guards fails as if the system call
 * had (an injected error, to show what a failure there leaves behind);
 * OVSNAP_STOP=NAME stops the process (SIGSTOP) at every ov_fault (NAME)
 * until a test resumes it (SIGCONT), to order steps of racing processes;
 * OVSNAP_PAUSE=NAME holds the process there for a while (to look at what
 * it holds meanwhile, or to stop a server at that very step). */
#ifndef OVSNAP_FAULT_H
#define OVSNAP_FAULT_H

#include "error.h"
#include <stdbool.h>

void ov_fault (const char *name);
/* OVSNAP_PAUSE=NAME: sleep OVSNAP_PAUSE_MS (default 2000) milliseconds here;
 * with OVSNAP_PAUSE_FILE=PATH: create PATH, then wait until it is removed
 * (at most OVSNAP_PAUSE_MS, default 60000). Only the first time the process
 * (or a fork of it) reaches the point. */
void ov_pause (const char *name);
bool ov_fail (const char *name);
/* ov_fail (name) as an error: sets *err ("injected fault at NAME", EIO) and returns -1, else 0. */
int ov_fail_err (const char *name, ov_error_t *err);

#endif
