/* Fuzz target: manifest_load, the reader of an attachment's commit manifest
 * (<root>/attach/ID/manifest). It reads from a directory fd and a name, so
 * each input is written to a file in a scratch directory under $TMPDIR,
 * once as given and once resealed with a correct trailer. A loaded manifest
 * must answer manifest_get for each of its paths and survive a save and a
 * load unchanged; a refusal must be a corrupt-record error that leaves the
 * manifest empty. Violations abort. */
#include "hash.h"
#include "manifest.h"
#include "util.h"
#include "fuzz.h"

#include <fcntl.h>
#include <stdio.h>

static int scratch_fd = -1;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  const char *scratch = fuzz_scratch ("manifest");
  if ((scratch_fd = open (scratch, O_RDONLY | O_DIRECTORY)) < 0)
    {
      perror (scratch);
      abort ();
    }
  return 0;
}

static size_t
count_paths (const struct ov_manifest *m)
{
  size_t n = 0;
  for (size_t i = 0; i < m->cap; i++)
    n += m->paths[i] != NULL;
  return n;
}

static void
check_manifest (const struct ov_manifest *m)
{
  REQUIRE (m->cap == 0 || (m->cap & (m->cap - 1)) == 0);
  REQUIRE (m->n * 2 <= m->cap || (m->n == 0 && m->cap == 0));
  REQUIRE (count_paths (m) == m->n);
  for (size_t i = 0; i < m->cap; i++)
    if (m->paths[i])
      REQUIRE (manifest_get (m, m->paths[i]) == &m->sigs[i]);
}

static void
load_one (const uint8_t *p, size_t n)
{
  int fd = openat (scratch_fd, "in", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE (fd >= 0 && write_all (fd, p, n) == 0);
  close (fd);

  struct ov_manifest m;
  ov_error_t err = NULL;
  int r = manifest_load (scratch_fd, "in", &m, &err);
  REQUIRE (r == 0 || r == -1);
  if (r < 0)
    {
      REQUIRE (err != NULL && err->code == OV_ECORRUPT && strstr (err->msg, "manifest"));
      REQUIRE (m.paths == NULL && m.sigs == NULL && m.n == 0 && m.cap == 0);
      ov_error_free (&err);
      return;
    }
  REQUIRE (err == NULL);
  check_manifest (&m);

  struct ov_manifest again;
  REQUIRE (manifest_save (scratch_fd, "copy", &m, &err) == 0);
  REQUIRE (manifest_load (scratch_fd, "copy", &again, &err) == 0);
  check_manifest (&again);
  REQUIRE (again.n == m.n);
  for (size_t i = 0; i < m.cap; i++)
    if (m.paths[i])
      {
        const struct ov_sig *a = &m.sigs[i], *b = manifest_get (&again, m.paths[i]);
        REQUIRE (b != NULL && sig_eq (a, b) && a->opaque == b->opaque);
      }
  manifest_free (&again);
  manifest_free (&m);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_resealed (data, size, load_one);
  return 0;
}
