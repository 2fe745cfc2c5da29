/* Replaying one writer's edit onto a head it did not see: the changes
 * from `base` to `snap` (what the writer did, found with ov_diff) become
 * a changeset applied over `onto` (changeset_apply), per path last writer
 * wins: a path this writer set or deleted ends as in `snap`; every other
 * path keeps what `onto` has; directories merge by name. The result is
 * a snapshot on top of `onto` with snap's message and time, built only
 * from the three records, so every node that replays the same edit onto
 * the same head gets the same id (tree/heads.c relies on it). */
#ifndef OVSNAP_REPLAY_H
#define OVSNAP_REPLAY_H

#include "snapshot.h"

/* *out: the new snapshot (stored, durable), or onto's id when the edit
 * is all there already. */
int ov_replay (struct ov_store *s, const struct ov_snapshot *onto, const struct ov_snapshot *base,
               const struct ov_snapshot *snap, struct ov_oid *out, ov_error_t *err);

#endif
