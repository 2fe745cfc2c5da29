/* Paths inside a volume, as users type them: from the volume root, with or
 * without a leading '/' (Modal writes "/models/a.bin"); no "..", no "."
 * inside, no empty components. One trailing '/' is allowed; "/", "." or ""
 * is the root. Refusals are usage errors. */
#ifndef OVSNAP_PATH_H
#define OVSNAP_PATH_H

#include "error.h"
#include <stdbool.h>
#include <stddef.h>

struct ov_path
{
  char **comps;
  size_t n;
  bool trailing_slash;
};

int ov_path_parse (const char *s, struct ov_path *p, ov_error_t *err);
void ov_path_free (struct ov_path *p);
/* "a/b/c" for display; "." for the root. */
char *ov_path_join (char **comps, size_t n);

bool ov_volume_name_valid (const char *name);

#endif
