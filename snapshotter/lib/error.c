#include "error.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>

static int
code_for (int errnum)
{
  switch (errnum)
    {
    case ENOENT:
      return OV_ENOTFOUND;
    case ENOSPC:
    case EDQUOT:
      return OV_ENOSPACE;
    case EBUSY:
      return OV_EBUSY;
    default:
      return OV_EGENERIC;
    }
}

int
ov_error_set (ov_error_t *err, int code, int errnum, const char *fmt, ...)
{
  if (err == NULL || *err != NULL)
    return -1;
  va_list ap;
  char *msg;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    abort ();
  va_end (ap);
  struct ov_error *e = xcalloc (1, sizeof *e);
  e->errnum = errnum;
  e->code = code ? code : code_for (errnum);
  if (errnum)
    {
      e->msg = xasprintf ("%s: %s", msg, strerror (errnum));
      free (msg);
    }
  else
    e->msg = msg;
  *err = e;
  return -1;
}

int
ov_error_prefix (ov_error_t *err, const char *fmt, ...)
{
  if (err == NULL || *err == NULL)
    return -1;
  va_list ap;
  char *ctx;
  va_start (ap, fmt);
  if (vasprintf (&ctx, fmt, ap) < 0)
    abort ();
  va_end (ap);
  char *msg = xasprintf ("%s: %s", ctx, (*err)->msg);
  free (ctx);
  free ((*err)->msg);
  (*err)->msg = msg;
  return -1;
}

void
ov_error_free (ov_error_t *err)
{
  if (*err)
    {
      free ((*err)->msg);
      free (*err);
      *err = NULL;
    }
}

void
ov_error_release (ov_error_t *err)
{
  ov_error_free (err);
}
