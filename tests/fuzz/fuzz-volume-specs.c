/* Fuzz target: ov_volume_specs_parse, the reader of the org.ovsnap.volumes
 * annotation ("NAME:/path[:ro|:rw][,...]"), which the image or the user
 * controls. The input, cut at its first NUL, is the annotation's value.
 * Parsed specs must be valid volume names at distinct absolute paths that
 * are not the container's root (two spellings of one path count as one);
 * a refusal must be a usage error. Either way the caller frees what is in
 * *out. Violations abort. */
#include "oci.h"
#include "path.h"
#include "util.h"
#include "fuzz.h"

#include <stdio.h>

/* the path as the mount will see it: "a/b" for "/a/b" and "/a/b/" */
static char *
canonical (const char *path)
{
  struct ov_path p;
  ov_error_t err = NULL;
  REQUIRE (path[0] == '/' && ov_path_parse (path + 1, &p, &err) == 0);
  REQUIRE (p.n > 0);
  char *s = ov_path_join (p.comps, p.n);
  ov_path_free (&p);
  return s;
}

static void
specs_free (struct ov_volume_spec *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (v[i].name);
      free (v[i].path);
    }
  free (v);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  cleanup_free char *s = xstrndup ((const char *) data, size);
  struct ov_volume_spec *v;
  size_t n;
  ov_error_t err = NULL;
  int r = ov_volume_specs_parse (s, &v, &n, &err);
  REQUIRE (r == 0 || r == -1);
  REQUIRE ((n == 0) == (v == NULL));
  if (r < 0)
    {
      REQUIRE (err != NULL && err->code == OV_EUSAGE && err->msg[0]);
      ov_error_free (&err);
      specs_free (v, n);
      return 0;
    }
  REQUIRE (err == NULL);
  char **canon = xcalloc (n + 1, sizeof *canon);
  for (size_t i = 0; i < n; i++)
    {
      REQUIRE (v[i].name && ov_volume_name_valid (v[i].name));
      REQUIRE (v[i].path);
      canon[i] = canonical (v[i].path);
      for (size_t j = 0; j < i; j++)
        REQUIRE (strcmp (canon[i], canon[j]) != 0);
    }
  for (size_t i = 0; i < n; i++)
    free (canon[i]);
  free (canon);
  specs_free (v, n);
  return 0;
}
