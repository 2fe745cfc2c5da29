/* The few lines of TAP the unit tests print: "ok N - what" or "not ok N - what". */
#ifndef OVSNAP_TAP_H
#define OVSNAP_TAP_H

#include <stdio.h>

static int tests, failures;

static inline void
ok (int cond, const char *what)
{
  tests++;
  if (!cond)
    failures++;
  printf ("%s %d - %s\n", cond ? "ok" : "not ok", tests, what);
}

#endif
