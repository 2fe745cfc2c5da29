/* Edits of a volume that read no local data: remove a path, copy paths
 * within the volume (sharing storage), roll back to an older snapshot's
 * tree. Each is one new snapshot, merged onto the newest head. Paths as
 * users write them (path.h); usage errors for hostile ones. The CLI and
 * the daemon call these. */
#ifndef OVSNAP_EDIT_H
#define OVSNAP_EDIT_H

#include "volume.h"

int ov_rm (struct ov_store *s, const char *volume, const char *path, bool recursive,
           struct ov_snapshot *out, ov_error_t *err);
/* Several SRC, a DST ending in /, or an existing directory DST: each SRC
 * lands in DST under its own name (DST made if missing). */
int ov_cp (struct ov_store *s, const char *volume, char *const *srcs, size_t nsrc,
           const char *dst, struct ov_snapshot *out, ov_error_t *err);
/* spec: as ov_volume_resolve takes it (head~N, an id prefix). */
int ov_rollback (struct ov_store *s, const char *volume, const char *spec,
                 struct ov_snapshot *out, ov_error_t *err);

#endif
