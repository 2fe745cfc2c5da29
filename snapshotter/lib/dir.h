/* Reading directories: the one readdir loop of the engine. */
#ifndef OVSNAP_DIR_H
#define OVSNAP_DIR_H

#include <stdbool.h>

/* cb (dirfd, name, d_type, ctx) for every entry of the directory open as
 * dirfd but "." and ".." (dirfd itself stays open and unmoved; the walk
 * reads a duplicate). A non-zero cb return stops the walk and is
 * returned; -1 with errno if the directory cannot be read. */
int ov_dir_each (int dirfd, int (*cb) (int dirfd, const char *name, unsigned char type, void *ctx),
                 void *ctx);
/* The same for path beneath dirfd (no symlink followed at its end);
 * a missing directory has no entries when missing_ok. */
int ov_dir_each_at (int dirfd, const char *path, bool missing_ok,
                    int (*cb) (int dirfd, const char *name, unsigned char type, void *ctx),
                    void *ctx);

/* Removes name beneath parent and, if it is a directory, everything in
 * it, following no symlink; a missing name is fine. -1 with errno. */
int ov_remove_tree (int parent, const char *name);

#endif
