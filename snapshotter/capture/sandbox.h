/* The sandbox for workers that read what containers control (upper-dir
 * capture) and parse records other machines wrote. A worker is a forked
 * child under a seccomp allowlist (libseccomp): plain file I/O, memory,
 * threads, time; no exec, no mount API, no ptrace, no sockets, no setns or
 * unshare, no module or key syscalls, and no io_uring (its operations are
 * not seen by seccomp, so the worker does not get a ring at all). A call
 * outside the list fails with EPERM and is reported on stderr
 * ("sandbox: forbidden system call N (name)"), never obeyed. The worker
 * keeps only the capabilities reading needs (see drop_capabilities). */
#ifndef OVSNAP_SANDBOX_H
#define OVSNAP_SANDBOX_H

#include "error.h"
#include "util.h"

#include <stdbool.h>

/* Runs fn in a sandboxed child; what fn appends to `result` comes back to
 * the caller, and so does its error. With `view` (an absolute directory),
 * the child has its own mount namespace where view is read-only, nodev,
 * nosuid and noexec: it can read what a container wrote there, never open
 * a device node a container put there, never change it. */
int ov_sandbox_run (const char *view, int (*fn) (void *ctx, struct ov_buf *result, ov_error_t *err),
                    void *ctx, struct ov_buf *result, ov_error_t *err);
/* In a worker: send `result` as the reply now. The caller goes on at once;
 * what fn does after this (freeing memory) it does not wait for, and fn's
 * own return value is then ignored. Elsewhere: does nothing. */
void ov_sandbox_reply (const struct ov_buf *result);
/* Workers started after this also get the socket calls an HTTP client
 * makes (a remote store, S3, is written by the worker itself). */
void ov_sandbox_allow_network (bool on);
/* Installs the filter in the calling (single-threaded) process. */
int ov_sandbox_enter (ov_error_t *err);

#endif
