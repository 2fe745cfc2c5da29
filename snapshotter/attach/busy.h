/* Who holds a mount: processes with a file open in it, their cwd or root
 * in it, or a file of it mapped. Matched by device number, so it works for
 * processes in other mount namespaces (containers) too. */
#ifndef OVSNAP_BUSY_H
#define OVSNAP_BUSY_H

#include "error.h"
#include <sys/types.h>

/* Returns the number of holders and, if any, a message naming each
 * ("pid 4121 (python3) has /data/model.bin open; ..."), at most `max` of them. */
int ov_holders (dev_t dev, char **message, size_t max, ov_error_t *err);

#endif
