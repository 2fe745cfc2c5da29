/* What the files of attach/ share (state.c, attach.c, commit.c,
 * reload.c); nothing outside attach/ includes this. */
#ifndef OVSNAP_ATTACH_INT_H
#define OVSNAP_ATTACH_INT_H

#include "attach.h"
#include "layer.h"

/* state.c: the record, the directory and its lock, settling after a crash */
int att_state_save (struct ov_node *n, const struct ov_attachment *a, ov_error_t *err);
int att_dirfd (struct ov_node *n, const char *id, ov_error_t *err);
/* The attachment's directory, locked against other commits and reloads. */
int att_open_locked (struct ov_node *n, const struct ov_attachment *a, int *afd, int *lock,
                     ov_error_t *err);
/* Settles a reload or commit a crash interrupted (with the lock held). */
/* -1 if the settled state cannot be saved: the caller stops (nothing has
 * changed; the next command settles it again). */
int att_reconcile (struct ov_node *n, int afd, struct ov_attachment *a, ov_error_t *err);
void att_trash (struct ov_node *n, int dirfd, const char *name);
/* upper.N and work.N to the trash, manifest.N gone: generation N is no more. */
void att_drop_gen (struct ov_node *n, int afd, int gen);
/* Whose mount namespace holds the mount: the container's init, or 0 (ours). */
pid_t att_ns_pid (const struct ov_attachment *a);
/* manifest.N: what the last commit captured from upper.N */
void att_manifest_name (int gen, char out[32]);

/* attach.c: uppers and overlays */
int att_make_upper (struct ov_node *n, int afd, int gen, const struct ov_entry *root,
                    ov_error_t *err);
int att_upper_root_meta (int fd, const struct ov_entry *root, ov_error_t *err);
int att_seed_manifest (int afd, int gen, ov_error_t *err);
int att_build_overlay (struct ov_node *n, const struct ov_attachment *a, int gen,
                       const struct ov_layers *l, uint64_t *dev, uint64_t *lower_dev,
                       ov_error_t *err);
void att_set_layers (struct ov_attachment *a, const struct ov_layers *l);
void att_flatten_later (struct ov_node *n, bool deep, const struct ov_snapshot *snap);

/* commit.c */
int att_commit_held (struct ov_node *n, struct ov_attachment *a, int afd, int lock,
                     const char *message, struct ov_snapshot *out, bool *changed,
                     ov_error_t *err);
/* Releases the attachment before background work starts: a detached
 * process inherits open files, and with them the lock. */
void att_close (int *afd, int *lock);

#endif
