/* How packs are read through a backend, as a remote store will serve them:
 * opening a store and looking an object up read only each pack's head,
 * tail and index (ranged reads), and open only the pack that holds the
 * object; and a location handed out stays readable after another session
 * rolls the packs up and forgets the one it points into (a daemon's
 * operations overlap). The local backend is wrapped only to count what
 * is read through it. Prints TAP. Usage: test-pack-reads SCRATCH-DIR */
#include "store.h"
#include "pack.h"
#include "tap.h"

#include <stdio.h>

#define BLOB (512u << 10)

static const struct ov_backend *real;
static uint64_t range_bytes;
static int opens;

static int
count_open (void *be, const char *key)
{
  opens++;
  return real->open_read (be, key);
}

static ssize_t
count_range (void *be, const char *key, uint64_t off, void *buf, size_t n)
{
  ssize_t r = real->read_range (be, key, off, buf, n);
  if (r > 0)
    range_bytes += r;
  return r;
}

static void
fill (uint8_t *b, size_t n, int seed)
{
  for (size_t k = 0; k < n; k++)
    b[k] = (uint8_t) (k * 7 + seed * 13 + (k >> 9));
}

/* One pack per put: each sync publishes what the put wrote. */
static int
put_packs (const char *dir, int npacks, struct ov_oid *ids, ov_error_t *err)
{
  struct ov_store *s;
  if (ov_store_open (&s, dir, OV_STORE_CREATE, err) < 0)
    return -1;
  uint8_t *b = xmalloc (BLOB);
  int r = 0;
  for (int i = 0; r == 0 && i < npacks; i++)
    {
      fill (b, BLOB, i);
      r = ov_store_put_blob_mem (s, b, BLOB, &ids[i], NULL, err);
      if (r == 0)
        r = ov_store_sync (s, err);
    }
  free (b);
  ov_store_close (s);
  return r;
}

static bool
holds (const struct ov_blob_loc *loc, int seed)
{
  uint8_t *want = xmalloc (BLOB), *got = xmalloc (BLOB);
  fill (want, BLOB, seed);
  bool same = pread_all (loc->fd, got, BLOB, loc->off) == BLOB && memcmp (want, got, BLOB) == 0;
  free (want);
  free (got);
  return same;
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      fprintf (stderr, "usage: test-pack-reads SCRATCH-DIR\n");
      return 2;
    }
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s/reads", argv[1]);
  ov_error_t err = NULL;
  struct ov_oid ids[4];
  if (put_packs (dir, 4, ids, &err) < 0)
    {
      fprintf (stderr, "%s\n", err->msg);
      return 1;
    }

  struct ov_store *s;
  if (ov_store_open (&s, dir, 0, &err) < 0)
    return 1;
  real = s->be;
  struct ov_backend counting = *s->be;
  counting.open_read = count_open;
  counting.read_range = count_range;
  s->be = &counting;
  struct ov_blob_loc loc;
  bool found = ov_store_blob_loc (s, &ids[2], BLOB, &loc, &err) == 0;
  ok (found && holds (&loc, 2), "an object is found in the third of four packs");
  ok (opens == 1, "only the pack that holds it is opened");
  printf ("# %llu bytes read to look it up, the packs hold %u\n", (unsigned long long) range_bytes,
          4 * BLOB);
  ok (range_bytes > 0 && range_bytes < 4096, "the four indexes are read, not the packs");

  /* Another session rolls the four small packs into one and forgets
   * them (the index reloads); the location above must still read. */
  struct ov_store *other = ov_store_session (s);
  size_t merged = 0;
  int r = ov_packs_consolidate (other, &merged, &err);
  if (r < 0)
    printf ("# %s\n", err->msg);
  ok (r == 0 && merged >= 2, "another session rolls the packs up");
  ok (found && holds (&loc, 2), "the location handed out before still reads the object's bytes");
  if (found)
    ov_blob_loc_release (&loc);
  struct ov_blob_loc again;
  ok (ov_store_blob_loc (s, &ids[0], BLOB, &again, &err) == 0 && holds (&again, 0),
      "and the rolled-up pack serves it to the first session");
  ov_blob_loc_release (&again);
  ov_store_close (other);
  ov_store_close (s);
  ov_error_free (&err);
  printf ("1..%d\n", tests);
  return failures ? 1 : 0;
}
