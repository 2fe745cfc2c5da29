/* A set of object ids (open addressing), for gc marking and fsck. */
#ifndef OVSNAP_OIDSET_H
#define OVSNAP_OIDSET_H

#include "hash.h"

struct ov_oidset
{
  struct ov_oid *slots;
  uint8_t *used;
  size_t cap, n;
};

/* Returns true if id was newly added. */
bool oidset_add (struct ov_oidset *s, const struct ov_oid *id);
bool oidset_has (const struct ov_oidset *s, const struct ov_oid *id);
void oidset_free (struct ov_oidset *s);

#endif
