#include "xattr.h"

#include <stdio.h>
#include <sys/xattr.h>

static bool
xattr_private (const char *name)
{
  return strncmp (name, "trusted.overlay.", 16) == 0;
}

/* Symlinks have no fd-based xattr calls; /proc/self/fd/DIRFD/NAME reaches
 * the link itself with the l* calls without resolving NAME. */
static void
link_path (char *out, size_t n, int dirfd, const char *name)
{
  snprintf (out, n, "/proc/self/fd/%d/%s", dirfd, name);
}

int
xattrs_read (int fd, int dirfd, const char *name, struct ov_entry *e, bool *opaque,
             ov_error_t *err)
{
  if (opaque)
    *opaque = false;
  char lp[PATH_MAX];
  if (fd < 0)
    link_path (lp, sizeof lp, dirfd, name);
  char stackbuf[1024];
  char *list = stackbuf;
  cleanup_free char *heap = NULL;
  ssize_t n = fd >= 0 ? flistxattr (fd, list, sizeof stackbuf) : llistxattr (lp, list, sizeof stackbuf);
  if (n < 0 && errno == ERANGE)
    {
      n = fd >= 0 ? flistxattr (fd, NULL, 0) : llistxattr (lp, NULL, 0);
      if (n > 0)
        {
          heap = list = xmalloc (n);
          n = fd >= 0 ? flistxattr (fd, list, n) : llistxattr (lp, list, n);
        }
    }
  if (n < 0)
    {
      if (errno == ENOTSUP || errno == EPERM)
        return 0;
      return ov_error (err, errno, "list xattrs of %s", name);
    }
  for (char *p = list; p < list + n; p += strlen (p) + 1)
    {
      if (xattr_private (p))
        {
          char v[4];
          if (opaque && fd >= 0 && strcmp (p, "trusted.overlay.opaque") == 0)
            *opaque = fgetxattr (fd, p, v, sizeof v) == 1 && v[0] == 'y';
          continue;
        }
      char small[4096];
      void *val = small;
      cleanup_free void *big = NULL;
      ssize_t vl = fd >= 0 ? fgetxattr (fd, p, small, sizeof small) : lgetxattr (lp, p, small, sizeof small);
      if (vl < 0 && errno == ERANGE)
        {
          vl = fd >= 0 ? fgetxattr (fd, p, NULL, 0) : lgetxattr (lp, p, NULL, 0);
          if (vl > OV_XATTR_VALUE_MAX)
            return ov_error (err, E2BIG, "xattr %s of %s", p, name);
          if (vl >= 0)
            {
              big = val = xmalloc (vl + 1);
              vl = fd >= 0 ? fgetxattr (fd, p, val, vl) : lgetxattr (lp, p, val, vl);
            }
        }
      if (vl < 0)
        {
          if (errno == ENODATA)
            continue; /* removed meanwhile */
          return ov_error (err, errno, "read xattr %s of %s", p, name);
        }
      entry_add_xattr (e, p, val, vl);
    }
  entry_sort_xattrs (e);
  return 0;
}

int
xattrs_write (int fd, int dirfd, const char *name, const struct ov_entry *e, ov_error_t *err)
{
  char lp[PATH_MAX];
  if (fd < 0)
    link_path (lp, sizeof lp, dirfd, name);
  for (int i = 0; i < e->nxattrs; i++)
    {
      const struct ov_xattr *x = &e->xattrs[i];
      int r = fd >= 0 ? fsetxattr (fd, x->name, x->value, x->len, 0)
                      : lsetxattr (lp, x->name, x->value, x->len, 0);
      if (r < 0)
        {
          /* Unprivileged users cannot set trusted.* or security.*: skip those. */
          if ((errno == EPERM || errno == ENOTSUP) && geteuid () != 0)
            continue;
          return ov_error (err, errno, "set xattr %s on %s", x->name, name);
        }
    }
  return 0;
}
