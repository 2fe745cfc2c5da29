#include "oci.h"
#include "path.h"
#include "util.h"

#include <json-c/json.h>
#include <stdio.h>

static struct json_object *
parse (const char *json, size_t len, const char *what, ov_error_t *err)
{
  struct json_tokener *tok = json_tokener_new ();
  struct json_object *o = json_tokener_parse_ex (tok, json, len);
  enum json_tokener_error e = json_tokener_get_error (tok);
  /* only white space may follow; the input need not end in NUL */
  bool trailing = false;
  for (size_t i = json_tokener_get_parse_end (tok); o && i < len; i++)
    trailing |= !strchr (" \t\r\n", json[i]) || json[i] == '\0';
  json_tokener_free (tok);
  if (o == NULL || e != json_tokener_success || trailing || !json_object_is_type (o, json_type_object))
    {
      json_object_put (o);
      ov_error_set (err, OV_EUSAGE, 0, "%s: not a JSON object%s%s", what,
                    e != json_tokener_success ? ": " : "",
                    e != json_tokener_success ? json_tokener_error_desc (e) : "");
      return NULL;
    }
  return o;
}

static const char *
get_str (struct json_object *o, const char *key)
{
  struct json_object *v;
  if (!json_object_object_get_ex (o, key, &v) || !json_object_is_type (v, json_type_string))
    return NULL;
  return json_object_get_string (v);
}

void
ov_oci_state_free (struct ov_oci_state *st)
{
  free (st->id);
  free (st->status);
  free (st->bundle);
  memset (st, 0, sizeof *st);
}

static bool
container_id_valid (const char *id)
{
  size_t n = strlen (id);
  if (n == 0 || n > 1024)
    return false;
  for (const char *p = id; *p; p++)
    if (*p == '/' || (unsigned char) *p < 0x20)
      return false;
  return strcmp (id, ".") && strcmp (id, "..");
}

int
ov_oci_state_parse (const char *json, size_t len, struct ov_oci_state *st, ov_error_t *err)
{
  memset (st, 0, sizeof *st);
  struct json_object *o = parse (json, len, "OCI state", err);
  if (o == NULL)
    return -1;
  const char *id = get_str (o, "id"), *status = get_str (o, "status"), *bundle = get_str (o, "bundle");
  struct json_object *pid;
  int r = 0;
  if (id == NULL || !container_id_valid (id))
    r = ov_error_set (err, OV_EUSAGE, 0, "OCI state: missing or invalid \"id\"");
  else if (bundle == NULL || bundle[0] != '/')
    r = ov_error_set (err, OV_EUSAGE, 0, "OCI state: \"bundle\" must be an absolute path");
  if (r == 0)
    {
      st->id = xstrdup (id);
      st->bundle = xstrdup (bundle);
      st->status = xstrdup (status ? status : "");
      if (json_object_object_get_ex (o, "pid", &pid) && json_object_is_type (pid, json_type_int))
        {
          int64_t p = json_object_get_int64 (pid);
          st->pid = p > 0 && p < (1 << 22) ? (int) p : 0;
        }
    }
  json_object_put (o);
  if (r < 0)
    ov_oci_state_free (st);
  return r;
}

void
ov_oci_config_free (struct ov_oci_config *cfg)
{
  free (cfg->root_path);
  for (size_t i = 0; i < cfg->nvols; i++)
    {
      free (cfg->vols[i].name);
      free (cfg->vols[i].path);
    }
  free (cfg->vols);
  memset (cfg, 0, sizeof *cfg);
}

static int
spec_one (const char *item, struct ov_volume_spec *v, ov_error_t *err)
{
  const char *colon = strchr (item, ':');
  if (colon == NULL || colon == item)
    return ov_error_set (err, OV_EUSAGE, 0, "volume '%s': expected NAME:/path[:ro]", item);
  v->name = xstrndup (item, colon - item);
  const char *path = colon + 1;
  const char *opt = strchr (path, ':');
  v->path = opt ? xstrndup (path, opt - path) : xstrdup (path);
  if (opt && strcmp (opt + 1, "ro") != 0 && strcmp (opt + 1, "rw") != 0)
    return ov_error_set (err, OV_EUSAGE, 0, "volume '%s': unknown option '%s' (ro or rw)", item, opt + 1);
  v->readonly = opt && strcmp (opt + 1, "ro") == 0;
  if (!ov_volume_name_valid (v->name))
    return ov_error_set (err, OV_EUSAGE, 0, "volume '%s': invalid volume name", item);
  struct ov_path p;
  if (v->path[0] != '/' || ov_path_parse (v->path + 1, &p, err) < 0)
    return ov_error_set (err, OV_EUSAGE, 0, "volume '%s': the path must be absolute, without '..'", item);
  bool root = p.n == 0;
  /* one spelling per mount point: "/data/" is "/data" */
  cleanup_free char *joined = ov_path_join (p.comps, p.n);
  free (v->path);
  v->path = xasprintf ("/%s", joined);
  ov_path_free (&p);
  if (root)
    return ov_error_set (err, OV_EUSAGE, 0, "volume '%s': cannot mount over the container's root", item);
  return 0;
}

int
ov_volume_specs_parse (const char *s, struct ov_volume_spec **out, size_t *n, ov_error_t *err)
{
  *out = NULL;
  *n = 0;
  cleanup_free char *copy = xstrdup (s);
  char *save = NULL;
  for (char *item = strtok_r (copy, ",", &save); item; item = strtok_r (NULL, ",", &save))
    {
      while (*item == ' ')
        item++;
      if (*item == '\0')
        continue;
      *out = xrealloc (*out, (*n + 1) * sizeof **out);
      struct ov_volume_spec *v = &(*out)[(*n)++];
      memset (v, 0, sizeof *v);
      if (spec_one (item, v, err) < 0)
        return -1;
      for (size_t i = 0; i + 1 < *n; i++)
        if (strcmp ((*out)[i].path, v->path) == 0)
          return ov_error_set (err, OV_EUSAGE, 0, "two volumes at %s", v->path);
    }
  return 0;
}

static int
bool_annotation (struct json_object *ann, const char *key, bool dflt, bool *out, ov_error_t *err)
{
  const char *v = ann ? get_str (ann, key) : NULL;
  *out = dflt;
  if (v == NULL)
    return 0;
  if (strcmp (v, "true") == 0)
    *out = true;
  else if (strcmp (v, "false") == 0)
    *out = false;
  else
    return ov_error_set (err, OV_EUSAGE, 0, "annotation %s: expected true or false, not '%s'", key, v);
  return 0;
}

int
ov_oci_config_parse (const char *json, size_t len, struct ov_oci_config *cfg, ov_error_t *err)
{
  memset (cfg, 0, sizeof *cfg);
  struct json_object *o = parse (json, len, "config.json", err);
  if (o == NULL)
    return -1;
  int r = 0;
  struct json_object *root, *ann = NULL;
  const char *path = json_object_object_get_ex (o, "root", &root) ? get_str (root, "path") : NULL;
  if (path == NULL || path[0] == '\0')
    r = ov_error_set (err, OV_EUSAGE, 0, "config.json: missing root.path");
  else
    cfg->root_path = xstrdup (path);
  json_object_object_get_ex (o, "annotations", &ann);
  if (ann && !json_object_is_type (ann, json_type_object))
    ann = NULL;
  const char *vols = ann ? get_str (ann, "org.ovsnap.volumes") : NULL;
  if (r == 0 && vols)
    r = ov_volume_specs_parse (vols, &cfg->vols, &cfg->nvols, err);
  cfg->interval = 5;
  const char *iv = ann ? get_str (ann, "org.ovsnap.commit-interval") : NULL;
  if (r == 0 && iv)
    {
      char *end;
      long v = strtol (iv, &end, 10);
      if (*end || end == iv || v < 0 || v > 86400)
        r = ov_error_set (err, OV_EUSAGE, 0, "annotation org.ovsnap.commit-interval: expected seconds (0-86400), not '%s'", iv);
      cfg->interval = v;
    }
  if (r == 0)
    r = bool_annotation (ann, "org.ovsnap.commit-on-exit", true, &cfg->commit_on_exit, err);
  if (r == 0)
    r = bool_annotation (ann, "org.ovsnap.create-if-missing", true, &cfg->create_if_missing, err);
  json_object_put (o);
  if (r < 0)
    ov_oci_config_free (cfg);
  return r;
}
