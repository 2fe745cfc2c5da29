/* Run a function over an array of jobs on a few threads. The first failure
 * stops the others from taking new jobs and its error is returned. */
#ifndef OVSNAP_POOL_H
#define OVSNAP_POOL_H

#include "error.h"
#include <stddef.h>

int ov_pool_run (size_t njobs, int (*fn) (size_t job, void *ctx, ov_error_t *err), void *ctx,
                 ov_error_t *err);
int ov_pool_threads (void);

#endif
