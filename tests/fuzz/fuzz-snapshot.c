/* Fuzz target: snapshot_decode, the reader of snapshot records
 * (snapshots/ab/...), which another machine may have written. Every input is
 * decoded as given and resealed with a correct trailer (so mutations get
 * past the checksum). A decoded record must keep what snapshot.h promises
 * (a volume name without NUL, a bounded message, a root directory entry)
 * and encode back to the very same bytes; a refusal must be a
 * corrupt-record error naming the record that leaves nothing to free.
 * Violations abort. */
#include "snapshot.h"
#include "fuzz.h"

#include <stdio.h>

#define WHAT "snapshots/ab/fuzz"

static void
check_root (const struct ov_entry *e)
{
  REQUIRE (e->name != NULL && e->name[0] == '\0');
  REQUIRE (e->type == OV_DIR && ov_type_from_mode (e->mode) == OV_DIR);
  REQUIRE (!oid_is_zero (&e->oid));
  REQUIRE (e->mtime_nsec < 1000000000u);
  REQUIRE (e->target == NULL && e->rdev == 0 && e->link_id == 0);
  REQUIRE ((e->nxattrs == 0) == (e->xattrs == NULL));
  for (int i = 0; i < e->nxattrs; i++)
    {
      REQUIRE (e->xattrs[i].name && e->xattrs[i].name[0] && e->xattrs[i].len <= OV_XATTR_VALUE_MAX);
      if (i > 0)
        REQUIRE (strcmp (e->xattrs[i - 1].name, e->xattrs[i].name) < 0);
    }
}

static void
decode_one (const uint8_t *p, size_t n)
{
  struct ov_snapshot s;
  ov_error_t err = NULL;
  int r = snapshot_decode (p, n, &s, WHAT, &err);
  REQUIRE (r == 0 || r == -1);
  if (r < 0)
    {
      REQUIRE (err != NULL && err->code == OV_ECORRUPT && strstr (err->msg, WHAT));
      /* the fields may hold partial values, but nothing is left to free */
      REQUIRE (s.volume == NULL && s.message == NULL && s.root.name == NULL && s.root.target == NULL
               && s.root.xattrs == NULL);
      ov_error_free (&err);
      return;
    }
  REQUIRE (err == NULL);
  REQUIRE (s.volume != NULL && s.volume[0] != '\0' && strlen (s.volume) <= UINT16_MAX);
  REQUIRE (s.message != NULL && strlen (s.message) <= OV_MESSAGE_MAX);
  check_root (&s.root);
  struct ov_buf again = { 0 };
  snapshot_encode (&s, &again);
  REQUIRE (again.len == n && memcmp (again.data, p, n) == 0);
  buf_free (&again);
  snapshot_free (&s);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_resealed (data, size, decode_one);
  return 0;
}
