/* Putting local files and trees into a volume, by modal volume put's
 * conventions (README: Commands): a REMOTE ending in / receives LOCAL under
 * its base name, a LOCAL directory puts its contents at REMOTE, no REMOTE
 * is the root under LOCAL's base name, a LOCAL ending in / is its contents
 * anywhere. Any number of items land as one snapshot, each applied on the
 * result of the ones before. The CLI and the daemon call this. */
#ifndef OVSNAP_PUT_H
#define OVSNAP_PUT_H

#include "progress.h"
#include "snapshot.h"
#include "store.h"

struct ov_put_item
{
  const char *local;  /* a file or tree; "-": standard input (fd 0) */
  const char *remote; /* a path in the volume; NULL: none given */
};

int ov_put (struct ov_store *s, const char *volume, const struct ov_put_item *items, size_t n,
            const char *message, struct ov_progress *progress, struct ov_snapshot *out,
            ov_error_t *err);

#endif
