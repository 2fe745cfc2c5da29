/* The one error type. Every fallible engine function takes `ov_error_t *err`,
 * returns -1 (or NULL) on failure and fills *err with a message that names the
 * object and the cause; callers add context with ov_error_prefix(). The
 * `code` is the process exit status the CLI uses for it. */
#ifndef OVSNAP_ERROR_H
#define OVSNAP_ERROR_H

enum ov_exit
{
  OV_OK = 0,
  OV_EGENERIC = 1,
  OV_EUSAGE = 2,
  OV_ENOTFOUND = 3,
  OV_EBUSY = 4,
  OV_ENOSPACE = 5,
  OV_ECORRUPT = 6,
};

struct ov_error
{
  int code;   /* enum ov_exit */
  int errnum; /* errno of the cause, or 0 */
  char *msg;
};
typedef struct ov_error *ov_error_t;

/* Sets *err (if no error is already pending) and returns -1. When errnum is
 * not 0, ": strerror(errnum)" is appended. code 0 means "derive it from
 * errnum" (ENOENT -> not found, ENOSPC/EDQUOT -> no space, else generic). */
int ov_error_set (ov_error_t *err, int code, int errnum, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
#define ov_error(err, errnum, ...) ov_error_set (err, 0, errnum, __VA_ARGS__)
#define ov_corrupt(err, ...) ov_error_set (err, OV_ECORRUPT, 0, __VA_ARGS__)

/* Prepends "context: " to the pending message; returns -1. */
int ov_error_prefix (ov_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void ov_error_free (ov_error_t *err);
void ov_error_release (ov_error_t *err);

#define cleanup_error __attribute__ ((cleanup (ov_error_release)))

#endif
