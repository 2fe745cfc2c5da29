/* Fuzz target: tree_decode, the reader of tree objects (trees/ab/...), which
 * another machine may have written. Every input is decoded twice: as given,
 * so the checksum check itself is fuzzed, and resealed with a correct
 * trailer, so mutations reach the entries behind it. A decoded tree must
 * keep what tree.h promises and encode back to the very same bytes; a
 * refusal must be a corrupt-record error naming the object that leaves the
 * tree empty. The entry-by-entry scanner that merges use must accept and
 * refuse exactly the same inputs, and its raw entries, copied as bytes,
 * must rebuild the same tree. Any violation aborts, which libFuzzer reports as a crash. */
#include "tree.h"
#include "fuzz.h"

#include <stdio.h>

#define WHAT "trees/ab/fuzz"

static void
check_entry (const struct ov_entry *e)
{
  REQUIRE (e->name != NULL);
  REQUIRE (name_valid (e->name, strlen (e->name)));
  REQUIRE (e->type != 0 && ov_type_from_mode (e->mode) == e->type);
  REQUIRE (e->mtime_nsec < 1000000000u);
  REQUIRE ((e->type == OV_LNK) == (e->target != NULL));
  if (e->target)
    REQUIRE (strlen (e->target) == e->size && e->size >= 1 && e->size <= OV_TARGET_MAX);
  if (e->type != OV_REG && e->type != OV_DIR)
    REQUIRE (oid_is_zero (&e->oid));
  if (e->type == OV_DIR)
    REQUIRE (!oid_is_zero (&e->oid) && e->link_id == 0);
  else
    REQUIRE (e->inodes == 0);
  if (e->type != OV_CHR && e->type != OV_BLK)
    REQUIRE (e->rdev == 0);
  REQUIRE ((e->nxattrs == 0) == (e->xattrs == NULL));
  for (int i = 0; i < e->nxattrs; i++)
    {
      const struct ov_xattr *x = &e->xattrs[i];
      REQUIRE (x->name && x->name[0] && strlen (x->name) <= 255);
      REQUIRE (x->len <= OV_XATTR_VALUE_MAX && x->value != NULL);
      if (i > 0)
        REQUIRE (strcmp (e->xattrs[i - 1].name, x->name) < 0);
    }
}

/* The scanner agrees with tree_decode: same verdict, same entries, and
 * raw bytes that rebuild the input. */
static void
scan_one (const uint8_t *p, size_t n, const struct ov_tree *t, bool accepted)
{
  struct ov_tree_scan ts;
  ov_error_t err = NULL;
  struct ov_buf again = { 0 };
  int r = tree_scan_open (p, n, &ts, WHAT, &err);
  size_t i = 0;
  uint64_t inodes = 0, bytes = 0;
  if (r == 0)
    {
      tree_begin (&again, ts.count);
      struct ov_entry_raw x;
      while ((r = tree_scan_next (&ts, &x, &err)) > 0)
        {
          /* a refused tree may yield good entries before the bad one */
          if (accepted)
            {
              REQUIRE (i < t->n);
              struct ov_entry e;
              entry_from_raw (&x, &e);
              REQUIRE (strcmp (e.name, t->e[i].name) == 0 && entry_same (&e, &t->e[i]));
              entry_free (&e);
            }
          buf_put (&again, x.start, x.len);
          inodes += entry_inodes (&x.e);
          bytes += entry_bytes (&x.e);
          i++;
        }
    }
  REQUIRE ((r == 0) == accepted);
  if (r < 0)
    {
      REQUIRE (err != NULL && err->code == OV_ECORRUPT && strstr (err->msg, WHAT));
      ov_error_free (&err);
    }
  else
    {
      REQUIRE (i == t->n);
      tree_finish (&again, i, inodes, bytes);
      REQUIRE (again.len == n && memcmp (again.data, p, n) == 0);
    }
  buf_free (&again);
}

static void
decode_one (const uint8_t *p, size_t n)
{
  struct ov_tree t;
  ov_error_t err = NULL;
  int r = tree_decode (p, n, &t, WHAT, &err);
  REQUIRE (r == 0 || r == -1);
  scan_one (p, n, &t, r == 0);
  if (r < 0)
    {
      REQUIRE (err != NULL && err->code == OV_ECORRUPT && strstr (err->msg, WHAT));
      REQUIRE (t.e == NULL && t.n == 0);
      ov_error_free (&err);
      return;
    }
  REQUIRE (err == NULL);
  REQUIRE (t.n == 0 || t.e != NULL);
  for (size_t i = 0; i < t.n; i++)
    {
      check_entry (&t.e[i]);
      if (i > 0)
        REQUIRE (strcmp (t.e[i - 1].name, t.e[i].name) < 0);
      REQUIRE (tree_find (&t, t.e[i].name) == &t.e[i]);
    }
  struct ov_buf again = { 0 };
  tree_encode (&t, &again);
  REQUIRE (again.len == n && memcmp (again.data, p, n) == 0);
  buf_free (&again);
  tree_free (&t);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_resealed (data, size, decode_one);
  return 0;
}
