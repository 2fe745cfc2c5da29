/* The S3 backend is a module, ovsnap-s3.so, loaded by the first s3://
 * store a process opens. libcurl, libxml2 and libcrypto bring some forty
 * shared libraries (Kerberos, LDAP, GnuTLS, ICU...) whose loading cost
 * every command and every hook stage about 10 ms of CPU, with a local
 * store too. The module resolves the engine's functions from the binary
 * that loads it (linked -rdynamic).
 *
 * Where it comes from: the build tree's own module when the binary runs
 * from that build tree, else ../lib/ovsnap/ovsnap-s3.so from the binary's
 * directory (make install puts it there for any PREFIX). It must be a
 * regular file owned by root or by us and writable by nobody else: the
 * hook runs as root. It is checked through an fd and loaded through that
 * fd, so what was checked is what is loaded. */
#include "store.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S3_MODULE "ovsnap-s3.so"

typedef int (*s3_open_fn) (struct ov_store *, const char *, const char *, ov_error_t *);

static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
static s3_open_fn s3_open;

/* The module's path for this binary: the build tree's when we run from it. */
static int
module_path (char *out, size_t len, ov_error_t *err)
{
  char exe[4096];
  ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return ov_error_set (err, OV_EGENERIC, errno, "/proc/self/exe");
  exe[n] = '\0';
#if defined OV_SRC_ROOT && defined OV_BUILD_DIR
  size_t root = strlen (OV_SRC_ROOT);
  if ((size_t) n > root && memcmp (exe, OV_SRC_ROOT, root) == 0 && exe[root] == '/')
    {
      snprintf (out, len, "%s/%s", OV_BUILD_DIR, S3_MODULE);
      return 0;
    }
#endif
  *strrchr (exe, '/') = '\0';
  snprintf (out, len, "%s/../lib/ovsnap/%s", exe, S3_MODULE);
  return 0;
}

static int
load_s3 (ov_error_t *err)
{
  char path[4200];
  if (module_path (path, sizeof path, err) < 0)
    return -1;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ov_error_set (err, OV_EGENERIC, errno, "s3:// stores need the S3 module %s", path);
  struct stat st;
  int bad = fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)
            || (st.st_uid != 0 && st.st_uid != geteuid ()) || (st.st_mode & 022);
  if (bad)
    {
      close (fd);
      return ov_error_set (err, OV_EGENERIC, 0,
                           "S3 module %s: not a regular file owned by root (or by us) and writable by its owner only",
                           path);
    }
  char byfd[64];
  snprintf (byfd, sizeof byfd, "/proc/self/fd/%d", fd);
  void *h = dlopen (byfd, RTLD_NOW | RTLD_LOCAL);
  close (fd);
  if (h == NULL)
    return ov_error_set (err, OV_EGENERIC, 0, "S3 module %s: %s", path, dlerror ());
  s3_open = (s3_open_fn) dlsym (h, "ov_backend_s3_open"); /* never unloaded */
  if (s3_open == NULL)
    return ov_error_set (err, OV_EGENERIC, 0, "S3 module %s: no ov_backend_s3_open", path);
  return 0;
}

int
ov_backend_remote_open (struct ov_store *s, const char *url, const char *node_root,
                        ov_error_t *err)
{
  pthread_mutex_lock (&module_lock);
  int r = s3_open ? 0 : load_s3 (err);
  pthread_mutex_unlock (&module_lock);
  return r < 0 ? -1 : s3_open (s, url, node_root, err);
}
