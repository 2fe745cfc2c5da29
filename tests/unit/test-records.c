/* Store record decoders against hostile bytes: every record a reader gets
 * may have been written by another machine or damaged on disk. Each case
 * builds a record, breaks one thing, fixes the checksum so only the broken
 * thing is wrong, and expects a refusal that names the record. Prints TAP. */
#include "snapshot.h"
#include "tree.h"
#include "tap.h"

#include <stdio.h>


static void
add_file (struct ov_tree *t, const char *name)
{
  struct ov_entry *e = tree_add (t);
  e->name = xstrdup (name);
  e->type = OV_REG;
  e->mode = S_IFREG | 0644;
  e->size = 5;
  ov_hash ("hello", 5, &e->oid);
}

/* Re-seal a record after tampering: the trailer checksum covers the rest. */
static void
reseal (struct ov_buf *b)
{
  uint64_t sum = ov_checksum (b->data, b->len - 8);
  for (int i = 0; i < 8; i++)
    b->data[b->len - 8 + i] = sum >> (8 * i);
}

static int
decode_tree (struct ov_buf *b, ov_error_t *err)
{
  struct ov_tree t;
  int r = tree_decode (b->data, b->len, &t, "trees/xx/test", err);
  if (r == 0)
    tree_free (&t);
  return r;
}

/* Encode a tree whose only entry has `name`, bypassing the encoder's
 * assumptions by patching the bytes. */
static void
tree_with_name (const char *name, size_t len, struct ov_buf *out)
{
  struct ov_tree t = { 0 };
  char placeholder[300];
  memset (placeholder, 'x', len);
  placeholder[len] = '\0';
  add_file (&t, placeholder);
  tree_encode (&t, out);
  tree_free (&t);
  /* header: magic 8, version 4, count 4, inodes 8, bytes 8; then u16 len, name */
  memcpy (out->data + 34, name, len);
  reseal (out);
}

static void
expect_refused (struct ov_buf *b, const char *what, const char *needle)
{
  ov_error_t err = NULL;
  int r = decode_tree (b, &err);
  char title[256];
  snprintf (title, sizeof title, "tree refused: %s", what);
  ok (r < 0 && err && err->code == OV_ECORRUPT && strstr (err->msg, "trees/xx/test")
          && (needle == NULL || strstr (err->msg, needle)),
      title);
  if (err && r == 0)
    printf ("# unexpected: %s\n", err->msg);
  ov_error_free (&err);
}

int
main (void)
{
  struct ov_buf b = { 0 };

  /* a good tree decodes */
  struct ov_tree t = { 0 };
  add_file (&t, "a");
  add_file (&t, "b");
  tree_encode (&t, &b);
  ov_error_t err = NULL;
  ok (decode_tree (&b, &err) == 0, "a well-formed tree decodes");
  ov_error_free (&err);

  /* duplicates and order */
  struct ov_buf d = { 0 };
  struct ov_tree dup = { 0 };
  add_file (&dup, "same");
  add_file (&dup, "same");
  tree_encode (&dup, &d);
  expect_refused (&d, "duplicate entries", "sorted or duplicated");
  buf_free (&d);
  tree_free (&dup);
  struct ov_tree rev = { 0 };
  add_file (&rev, "b");
  add_file (&rev, "a");
  tree_encode (&rev, &d);
  expect_refused (&d, "unsorted entries", "sorted");
  buf_free (&d);
  tree_free (&rev);

  /* hostile names */
  tree_with_name ("a/b", 3, &d);
  expect_refused (&d, "a name with '/'", "invalid entry name");
  buf_free (&d);
  tree_with_name ("a\0b", 3, &d);
  expect_refused (&d, "a name with NUL", "invalid entry name");
  buf_free (&d);
  tree_with_name ("..", 2, &d);
  expect_refused (&d, "the name '..'", "invalid entry name");
  buf_free (&d);
  tree_with_name (".", 1, &d);
  expect_refused (&d, "the name '.'", "invalid entry name");
  buf_free (&d);

  /* version, truncation, checksum, sizes */
  struct ov_buf v = { 0 };
  buf_put (&v, b.data, b.len);
  v.data[8] = 2;
  reseal (&v);
  expect_refused (&v, "an unknown format version", "version");
  v.len = 0;
  buf_put (&v, b.data, b.len - 20);
  expect_refused (&v, "a truncated record", NULL);
  v.len = 0;
  buf_put (&v, b.data, b.len);
  v.data[40] ^= 1;
  expect_refused (&v, "a flipped byte (checksum)", "checksum");
  v.len = 0;
  buf_put (&v, b.data, b.len);
  v.data[16] ^= 1; /* header inode total */
  reseal (&v);
  expect_refused (&v, "totals that do not match the entries", "totals");
  v.len = 0;
  buf_put (&v, b.data, b.len);
  v.data[12] = 200; /* entry count */
  reseal (&v);
  expect_refused (&v, "an entry count larger than the record", NULL);
  buf_free (&v);

  /* a symlink whose size does not match its target */
  struct ov_tree l = { 0 };
  struct ov_entry *e = tree_add (&l);
  e->name = xstrdup ("link");
  e->type = OV_LNK;
  e->mode = S_IFLNK | 0777;
  e->target = xstrdup ("target");
  e->size = 99;
  tree_encode (&l, &d);
  expect_refused (&d, "a symlink with the wrong size", "size");
  buf_free (&d);
  tree_free (&l);

  /* a type that does not match its mode */
  struct ov_tree m = { 0 };
  add_file (&m, "f");
  m.e[0].mode = S_IFDIR | 0755;
  tree_encode (&m, &d);
  expect_refused (&d, "a type that contradicts the mode", "does not match mode");
  buf_free (&d);
  tree_free (&m);

  /* snapshot records */
  struct ov_snapshot s = { 0 };
  s.volume = xstrdup ("vol");
  s.message = xstrdup ("m");
  s.time_ns = 1;
  s.root.type = OV_DIR;
  s.root.mode = S_IFDIR | 0755;
  ov_hash ("x", 1, &s.root.oid);
  struct ov_buf sb = { 0 };
  snapshot_encode (&s, &sb);
  struct ov_snapshot back;
  err = NULL;
  ok (snapshot_decode (sb.data, sb.len, &back, "snapshots/xx/test", &err) == 0,
      "a well-formed snapshot record decodes");
  snapshot_free (&back);
  ov_error_free (&err);
  sb.len -= 9;
  ok (snapshot_decode (sb.data, sb.len, &back, "snapshots/xx/test", &err) < 0 && err
          && strstr (err->msg, "snapshots/xx/test"),
      "a truncated snapshot record is refused, naming the record");
  ov_error_free (&err);
  buf_free (&sb);
  snapshot_free (&s);

  buf_free (&b);
  tree_free (&t);
  printf ("1..%d\n", tests);
  return failures ? 1 : 0;
}
