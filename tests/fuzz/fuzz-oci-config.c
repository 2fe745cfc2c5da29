/* Fuzz target: ov_oci_config_parse, the reader of the bundle's config.json
 * (root path and the org.ovsnap.* annotations). The input is handed over
 * exactly as the hook does (bytes and a length, no terminating NUL). A
 * parsed config must name a root path, valid volumes at distinct absolute
 * paths inside the container (two spellings of one path count as one), and
 * an interval in range; a refusal must be a usage error that leaves the
 * config empty. Violations abort. */
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

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct ov_oci_config cfg;
  ov_error_t err = NULL;
  int r = ov_oci_config_parse ((const char *) data, size, &cfg, &err);
  REQUIRE (r == 0 || r == -1);
  if (r < 0)
    {
      REQUIRE (err != NULL && err->code == OV_EUSAGE);
      REQUIRE (cfg.root_path == NULL && cfg.vols == NULL && cfg.nvols == 0);
      ov_error_free (&err);
      return 0;
    }
  REQUIRE (err == NULL);
  REQUIRE (cfg.root_path && cfg.root_path[0]);
  REQUIRE (cfg.interval >= 0 && cfg.interval <= 86400);
  REQUIRE ((cfg.nvols == 0) == (cfg.vols == NULL));
  char **canon = xcalloc (cfg.nvols + 1, sizeof *canon);
  for (size_t i = 0; i < cfg.nvols; i++)
    {
      REQUIRE (cfg.vols[i].name && ov_volume_name_valid (cfg.vols[i].name));
      REQUIRE (cfg.vols[i].path);
      canon[i] = canonical (cfg.vols[i].path);
      for (size_t j = 0; j < i; j++)
        REQUIRE (strcmp (canon[i], canon[j]) != 0);
    }
  for (size_t i = 0; i < cfg.nvols; i++)
    free (canon[i]);
  free (canon);
  ov_oci_config_free (&cfg);
  return 0;
}
