/* The snapshotter's trash (<root>/trash), emptied off the hot path.
 * Deleting an upper of a few thousand files takes tens of milliseconds,
 * and on a disk like this one (ext4, discard) file creation is slower for
 * a while after a mass delete: a Commit whose upper went into the store,
 * and a Remove, only rename the directory into the trash (one rename: a
 * crash leaves it whole in one place or the other). A thread of its own
 * deletes what is there once the daemon has had no Prepare, Commit or
 * Remove for OV_REAPER_QUIET_MS; Cleanup and the start empty the trash at
 * once. (No lowered priority: Cleanup may wait for the entry the thread
 * is deleting.) */
#ifndef OVSNAP_REAPER_H
#define OVSNAP_REAPER_H

#include "error.h"

#define OV_REAPER_QUIET_MS 2000

struct ov_reaper;

/* rootfd (kept open by the caller) holds trash/; root names it in errors. */
struct ov_reaper *ov_reaper_start (int rootfd, const char *root);
/* An operation is writing: hold off for another quiet period. */
void ov_reaper_busy (struct ov_reaper *r);
/* Moves name (beneath rootfd, "s/<id>") into the trash for the thread;
 * trash_name is its name there. */
int ov_reaper_trash (struct ov_reaper *r, const char *from, const char *trash_name,
                     ov_error_t *err);
/* Empties the trash now (whatever the thread is doing). */
int ov_reaper_empty (struct ov_reaper *r, ov_error_t *err);
/* Stops the thread (what it was deleting it finishes; the rest stays for
 * the next start). NULL is fine. */
void ov_reaper_stop (struct ov_reaper *r);

#endif
