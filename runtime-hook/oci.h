/* Readers for what the runtime hands the hook: the OCI state on stdin and
 * the bundle's config.json (root path, annotations). Both come from outside
 * ovsnap, so they are parsed strictly and every value is checked. */
#ifndef OVSNAP_OCI_H
#define OVSNAP_OCI_H

#include "error.h"
#include <stdbool.h>
#include <stddef.h>

struct ov_oci_state
{
  char *id, *status, *bundle;
  int pid;
};

struct ov_volume_spec
{
  char *name, *path;
  bool readonly;
};

struct ov_oci_config
{
  char *root_path; /* as written in config.json (absolute, or relative to the bundle) */
  struct ov_volume_spec *vols;
  size_t nvols;
  int interval;           /* org.ovsnap.commit-interval, default 5 */
  bool commit_on_exit;    /* org.ovsnap.commit-on-exit, default true */
  bool create_if_missing; /* org.ovsnap.create-if-missing, default true */
};

int ov_oci_state_parse (const char *json, size_t len, struct ov_oci_state *st, ov_error_t *err);
void ov_oci_state_free (struct ov_oci_state *st);
int ov_oci_config_parse (const char *json, size_t len, struct ov_oci_config *cfg, ov_error_t *err);
void ov_oci_config_free (struct ov_oci_config *cfg);
/* "NAME:/path[:ro][,NAME2:/other[:ro]...]" */
int ov_volume_specs_parse (const char *s, struct ov_volume_spec **out, size_t *n, ov_error_t *err);

#endif
