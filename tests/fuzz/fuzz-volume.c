/* Fuzz target: the volume record decoder (static in volume.c), reached
 * through ov_volume_load on a store opened once in a scratch directory
 * under $TMPDIR: each input is written as <root>/volumes/NAME, as given and
 * resealed with a correct trailer. NAME is the one the record itself
 * carries when that is a valid volume name (so mutations can reach
 * success), else "fuzz". A loaded volume must carry a valid name equal to
 * the one asked for; a refusal must be a corrupt-record error naming the
 * record and leave no name behind. Violations abort. */
#include "hash.h"
#include "path.h"
#include "volume.h"
#include "fuzz.h"

#include <fcntl.h>
#include <stdio.h>

static struct ov_store *store;
static int volumes_fd = -1;

static void
close_store (void)
{
  ov_store_close (store);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  const char *scratch = fuzz_scratch ("volume");
  ov_error_t err = NULL;
  cleanup_free char *root = xasprintf ("%s/store", scratch);
  cleanup_free char *vols = xasprintf ("%s/volumes", root);
  if (ov_store_open (&store, root, OV_STORE_CREATE, &err) < 0
      || (volumes_fd = open (vols, O_RDONLY | O_DIRECTORY)) < 0)
    {
      fprintf (stderr, "fuzz-volume: %s\n", err ? err->msg : strerror (errno));
      abort ();
    }
  atexit (close_store);
  return 0;
}

/* the name the record carries (u16 length at offset 12), if it is a valid one */
static void
record_name (const uint8_t *p, size_t n, char out[65])
{
  strcpy (out, "fuzz");
  if (n < 14)
    return;
  size_t len = p[12] | (size_t) p[13] << 8;
  if (len == 0 || len > 64 || 14 + len > n)
    return;
  char name[65];
  memcpy (name, p + 14, len);
  name[len] = '\0';
  if (strlen (name) == len && ov_volume_name_valid (name))
    strcpy (out, name);
}

static void
load_one (const uint8_t *p, size_t n)
{
  char name[65];
  record_name (p, n, name);
  int fd = openat (volumes_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE (fd >= 0 && write_all (fd, p, n) == 0);
  close (fd);

  struct ov_volume v = { 0 };
  ov_error_t err = NULL;
  int r = ov_volume_load (store, name, &v, &err);
  unlinkat (volumes_fd, name, 0);
  REQUIRE (r == 0 || r == -1);
  if (r < 0)
    {
      cleanup_free char *key = xasprintf ("volumes/%s", name);
      REQUIRE (err != NULL && err->code == OV_ECORRUPT && strstr (err->msg, key));
      REQUIRE (v.name == NULL);
      ov_error_free (&err);
      return;
    }
  REQUIRE (err == NULL);
  REQUIRE (v.name != NULL && strcmp (v.name, name) == 0 && ov_volume_name_valid (v.name));
  volume_free (&v);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_resealed (data, size, load_one);
  return 0;
}
