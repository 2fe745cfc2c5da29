/* What every harness shares: the contract check, the "as given and
 * resealed" double decode for checksummed records, and a scratch directory
 * under $TMPDIR that is removed at exit. Header only: tests/fuzz/build
 * compiles each harness on its own. */
#ifndef OVSNAP_FUZZ_H
#define OVSNAP_FUZZ_H

#include "hash.h"
#include "util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond)                                                                              \
  do                                                                                               \
    {                                                                                              \
      if (!(cond))                                                                                 \
        {                                                                                          \
          fprintf (stderr, "contract violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__);         \
          abort ();                                                                                \
        }                                                                                          \
    }                                                                                              \
  while (0)

/* Run `one` on the input as given, so the checksum check itself is fuzzed,
 * and again with a correct XXH3-64 trailer, so mutations reach the body. */
static inline void
fuzz_resealed (const uint8_t *data, size_t size, void (*one) (const uint8_t *p, size_t n))
{
  one (data, size);
  if (size < 8)
    return;
  uint8_t *sealed = xmalloc (size);
  memcpy (sealed, data, size);
  uint64_t sum = ov_checksum (sealed, size - 8);
  for (int i = 0; i < 8; i++)
    sealed[size - 8 + i] = sum >> (8 * i);
  if (memcmp (sealed + size - 8, data + size - 8, 8) != 0)
    one (sealed, size);
  free (sealed);
}

static char fuzz_scratch_dir[PATH_MAX];

static inline int
fuzz_remove_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st;
  (void) flag;
  (void) ftw;
  remove (path);
  return 0;
}

static inline void
fuzz_remove_scratch (void)
{
  nftw (fuzz_scratch_dir, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory for this harness, removed at exit (after the handlers
 * the harness registers later, which run first). */
static inline const char *
fuzz_scratch (const char *name)
{
  const char *tmp = getenv ("TMPDIR");
  snprintf (fuzz_scratch_dir, sizeof fuzz_scratch_dir, "%s/ovsnap-fuzz-%s.XXXXXX",
            tmp && *tmp ? tmp : "/tmp", name);
  if (mkdtemp (fuzz_scratch_dir) == NULL)
    {
      perror (fuzz_scratch_dir);
      abort ();
    }
  atexit (fuzz_remove_scratch);
  return fuzz_scratch_dir;
}

#endif
