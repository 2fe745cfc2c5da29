/* Doing things inside a container's mount namespace, and resolving paths a
 * container controls. setns() into a mount namespace needs a
 * single-threaded caller, so the work runs in a forked child that reports
 * its result (and error message) back through a pipe. Paths inside a
 * container are resolved with openat2(RESOLVE_IN_ROOT): symlinks in the
 * image resolve within its root and never lead out of it. */
#ifndef OVSNAP_NSEXEC_H
#define OVSNAP_NSEXEC_H

#include "error.h"
#include "proc.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Runs fn in a child that has joined the mount namespace of pid (pid 0:
 * the caller's own, no fork). Returns what fn returned (a result of 0 to
 * 127), or -1. */
int ov_in_mntns (pid_t pid, int (*fn) (void *ctx, ov_error_t *err), void *ctx, ov_error_t *err);

int ov_openat2 (int dirfd, const char *path, int flags, uint64_t resolve);
/* An O_PATH fd for the directory `path` below rootfd, resolved as if rootfd
 * were "/"; with create, missing directories are made (0755). */
int ov_resolve_dir_in_root (int rootfd, const char *path, bool create, ov_error_t *err);


#endif
