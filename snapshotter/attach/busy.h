/* Who holds a mount: processes with a file open in it, their cwd or root
 * in it, or a file of it mapped. Matched by device number, so it works for
 * processes in other mount namespaces (containers) too. */
#ifndef OVSNAP_BUSY_H
#define OVSNAP_BUSY_H

#include "error.h"
#include <sys/types.h>

/* Holders of the overlay with device dev, mounted in the mount namespace
 * of ns_pid (0: ours). An overlay whose lower is an overlay itself (a
 * metacopy stack) shows its files with other, per-layer device numbers:
 * open files are then also matched by the mount they were opened through
 * (fdinfo's mnt_id against the mounts of dev in that namespace), and
 * mappings by lower_dev (not 0), the lower overlay's device. Returns the
 * number of holders and, if any, a message naming each ("pid 4121
 * (python3) has /data/model.bin open; ..."), at most `max` of them. */
int ov_holders (dev_t dev, dev_t lower_dev, pid_t ns_pid, char **message, size_t max,
                ov_error_t *err);

#endif
