/* A cache layer as one EROFS image (snapshotter/erofs), and its mount.
 *
 * An image holds a snapshot tree (full) or what changed since a base tree
 * (delta: new and changed entries, whiteouts as char 0/0 for what went,
 * trusted.overlay.opaque on a directory that replaced a non-directory),
 * with exact metadata. Small contents (pack blobs) are copied in, every
 * byte checked against its hash on the way. Big contents (loose objects)
 * are not copied when the store has a local directory of them: the image
 * holds a metacopy entry (trusted.overlay.metacopy, trusted.overlay.redirect
 * = "/ab/cdef..") that the object directory, a data-only lower, serves.
 * Hard links (link_id) are one inode. Xattrs under trusted.overlay. of the
 * snapshot are dropped: overlay would obey them (a redirect could name any
 * object of the store).
 *
 * The mount: every image of a stack is mounted file-backed and detached
 * (fsopen "erofs", no loop device, no path on the host); when a layer of
 * the stack holds metacopy entries, a read-only overlay
 * lowerdir+=IMAGES..., datadir+=OBJECTS (metacopy=on) joins them into one
 * lower. The attachment's writable overlay takes the result as O_PATH-less
 * mount fds (lowerdir+ by FSCONFIG_SET_FD) and keeps private clones of
 * them: nothing is mounted on the host, so nothing can leak, and an image
 * is freed when its file is unlinked and the last overlay on it goes. */
#ifndef OVSNAP_IMAGE_H
#define OVSNAP_IMAGE_H

#include "node.h"
#include "tree.h"

/* Writes the image of root (delta over base_tree when not NULL) to out_fd.
 * loose_dir: the store's directory of loose objects, or NULL (big contents
 * are then copied in). *metacopy says whether the image has metacopy
 * entries, *full whether it holds the whole tree: a delta that touches a
 * hard-link group is written whole (the group's other names would come
 * from the image below, another inode). */
int ov_image_write (struct ov_store *s, const struct ov_entry *root, const struct ov_oid *base_tree,
                    const char *loose_dir, int out_fd, bool *metacopy, bool *full,
                    ov_error_t *err);

/* Mounts images (paths, top first) detached; with data_dir set (or join
 * and several images), joins them under a read-only overlay (with that
 * data-only lower). Returns in fds the mounts an overlay takes as lowers,
 * top first (*nfds of them; the caller closes them). */
int ov_image_mount (char *const *images, size_t n, const char *data_dir, bool join, int **fds,
                    size_t *nfds, ov_error_t *err);

#endif
