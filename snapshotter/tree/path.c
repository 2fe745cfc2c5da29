#include "path.h"
#include "tree.h"
#include "util.h"

int
ov_path_parse (const char *s, struct ov_path *p, ov_error_t *err)
{
  memset (p, 0, sizeof *p);
  const char *shown = s;
  if (s[0] == '/')
    {
      s++; /* Modal's convention: a leading / is the volume root */
      if (s[0] == '\0')
        return 0;
      if (s[0] == '/')
        return ov_error_set (err, OV_EUSAGE, 0, "invalid path '%s': empty path component", shown);
    }
  if (strcmp (s, ".") == 0 || strcmp (s, "./") == 0 || s[0] == '\0')
    return 0;
  size_t len = strlen (s);
  if (len > 1 && s[len - 1] == '/')
    {
      p->trailing_slash = true;
      len--;
    }
  const char *start = s;
  for (;;)
    {
      const char *slash = memchr (start, '/', s + len - start);
      size_t cl = slash ? (size_t) (slash - start) : (size_t) (s + len - start);
      if (cl == 0)
        goto bad_empty;
      if ((cl == 1 && start[0] == '.') || (cl == 2 && start[0] == '.' && start[1] == '.'))
        {
          ov_path_free (p);
          return ov_error_set (err, OV_EUSAGE, 0, "invalid path '%s': '.' and '..' components are not allowed", shown);
        }
      if (cl > OV_NAME_MAX)
        {
          ov_path_free (p);
          return ov_error_set (err, OV_EUSAGE, 0, "invalid path '%s': a component is longer than %d bytes", shown, OV_NAME_MAX);
        }
      p->comps = xrealloc (p->comps, (p->n + 1) * sizeof *p->comps);
      p->comps[p->n++] = xstrndup (start, cl);
      if (!slash)
        break;
      start = slash + 1;
    }
  return 0;
bad_empty:
  ov_path_free (p);
  return ov_error_set (err, OV_EUSAGE, 0, "invalid path '%s': empty path component", shown);
}

void
ov_path_free (struct ov_path *p)
{
  for (size_t i = 0; i < p->n; i++)
    free (p->comps[i]);
  free (p->comps);
  memset (p, 0, sizeof *p);
}

char *
ov_path_join (char **comps, size_t n)
{
  if (n == 0)
    return xstrdup (".");
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += strlen (comps[i]) + 1;
  char *out = xmalloc (len);
  char *p = out;
  for (size_t i = 0; i < n; i++)
    {
      size_t l = strlen (comps[i]);
      memcpy (p, comps[i], l);
      p += l;
      *p++ = i + 1 < n ? '/' : '\0';
    }
  return out;
}

bool
ov_volume_name_valid (const char *name)
{
  size_t len = strlen (name);
  if (len == 0 || len > 64 || name[0] == '.' || name[0] == '-')
    return false;
  for (const char *c = name; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
          || *c == '.' || *c == '_' || *c == '-'))
      return false;
  return true;
}
