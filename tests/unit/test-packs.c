/* Pack indexes against hostile bytes: a pack may come from another node
 * or be damaged on disk. Each case writes a real pack through the store,
 * breaks one thing in its index, re-seals the index checksum so only that
 * thing is wrong, and expects a clean refusal (OV_ECORRUPT, the pack
 * named) from a fresh store handle, never a read outside the pack.
 * Prints TAP. Usage: test-packs SCRATCH-DIR */
#include "store.h"
#include "file.h"
#include "tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>


#define ENTRY 34 /* kind, hash[16], variant, offset u64, size u64 */

static uint64_t
get64 (const uint8_t *p)
{
  struct ov_reader r = { p, 8, 0 };
  return rd_u64 (&r);
}

static void
put64 (uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = v >> (8 * i);
}

struct pack
{
  char path[PATH_MAX];
  struct ov_buf bytes;
  uint64_t ioff, ilen; /* the index record */
};

static uint8_t *
entry (struct pack *p, int i)
{
  return p->bytes.data + p->ioff + 8 + 4 + 8 + (size_t) i * ENTRY;
}

static void
reseal_and_write (struct pack *p)
{
  uint8_t *rec = p->bytes.data + p->ioff;
  put64 (rec + p->ilen - 8, ov_checksum (rec, p->ilen - 8));
  int fd = open (p->path, O_WRONLY | O_TRUNC);
  if (fd < 0 || write_all (fd, p->bytes.data, p->bytes.len) < 0)
    {
      perror (p->path);
      exit (2);
    }
  close (fd);
}

/* A store in dir holding two small objects in one pack; ids in a and b. */
static void
make_store (const char *dir, struct ov_oid *a, struct ov_oid *b, struct pack *p)
{
  struct ov_store *s;
  ov_error_t err = NULL;
  if (ov_store_open (&s, dir, OV_STORE_CREATE, &err) < 0
      || ov_store_put_blob_mem (s, "first object", 12, a, NULL, &err) < 0
      || ov_store_put_blob_mem (s, "second object", 13, b, NULL, &err) < 0
      || ov_store_sync (s, &err) < 0)
    {
      fprintf (stderr, "setup: %s\n", err ? err->msg : "?");
      exit (2);
    }
  ov_store_close (s);
  char cmd[PATH_MAX + 64];
  snprintf (cmd, sizeof cmd, "ls %s/packs/*.pack", dir);
  FILE *f = popen (cmd, "r");
  if (f == NULL || fgets (p->path, sizeof p->path, f) == NULL)
    exit (2);
  pclose (f);
  p->path[strcspn (p->path, "\n")] = '\0';
  int fd = open (p->path, O_RDONLY);
  p->bytes.len = 0;
  if (fd < 0 || ov_read_fd (fd, &p->bytes, 1 << 20) < 0)
    exit (2);
  close (fd);
  p->ioff = get64 (p->bytes.data + p->bytes.len - 16);
  p->ilen = get64 (p->bytes.data + p->bytes.len - 8);
}

/* Reading object `id` (12 or 13 bytes) from a fresh handle must fail as corrupt, naming the pack. */
static void
expect_refused (const char *dir, const struct pack *p, const struct ov_oid *id, uint64_t size,
                const char *what)
{
  struct ov_store *s;
  ov_error_t err = NULL;
  if (ov_store_open (&s, dir, 0, &err) < 0)
    exit (2);
  struct ov_blob_loc loc;
  int r = ov_store_blob_loc (s, id, size, &loc, &err);
  const char *base = strrchr (p->path, '/') + 1;
  bool named = err && strstr (err->msg, base);
  ok (r < 0 && err && err->code == OV_ECORRUPT && named, what);
  if (r == 0)
    ov_blob_loc_release (&loc);
  if (err && !named)
    printf ("# message: %s\n", err->msg);
  ov_error_free (&err);
  ov_store_close (s);
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      fprintf (stderr, "usage: test-packs SCRATCH-DIR\n");
      return 2;
    }
  struct ov_oid a, b;
  struct pack p = { 0 };
  char dir[PATH_MAX];
  ov_error_t err = NULL;

  snprintf (dir, sizeof dir, "%s/good", argv[1]);
  make_store (dir, &a, &b, &p);
  struct ov_store *s;
  struct ov_blob_loc loc;
  int r = ov_store_open (&s, dir, 0, &err) == 0 ? ov_store_blob_loc (s, &a, 12, &loc, &err) : -1;
  char got[12];
  ok (r == 0 && pread_all (loc.fd, got, 12, loc.off) == 12 && memcmp (got, "first object", 12) == 0,
      "a well-formed pack serves its objects");
  if (r == 0)
    ov_blob_loc_release (&loc);
  ov_store_close (s);

  static const char *const cases[] = {
    "an entry whose offset is past the data",
    "an entry whose size runs past the data",
    "an entry of an unknown kind",
    "entries out of order",
    "an entry count larger than the index",
  };
  for (size_t c = 0; c < ARRAY_SIZE (cases); c++)
    {
      snprintf (dir, sizeof dir, "%s/case%zu", argv[1], c);
      make_store (dir, &a, &b, &p);
      /* which index entry is a? entries are sorted by key */
      int ia = memcmp (entry (&p, 0) + 1, a.b, 16) == 0 ? 0 : 1;
      uint8_t *e = entry (&p, ia);
      switch (c)
        {
        case 0:
          put64 (e + 18, p.ioff + 4096);
          break;
        case 1:
          put64 (e + 26, 1u << 20);
          break;
        case 2:
          e[0] = 7;
          break;
        case 3:
          {
            uint8_t t[ENTRY];
            memcpy (t, entry (&p, 0), ENTRY);
            memcpy (entry (&p, 0), entry (&p, 1), ENTRY);
            memcpy (entry (&p, 1), t, ENTRY);
            break;
          }
        case 4:
          put64 (p.bytes.data + p.ioff + 12, 1000);
          break;
        }
      reseal_and_write (&p);
      /* a size that matches the entry, so only the entry's own fault can refuse it */
      expect_refused (dir, &p, &a, c == 1 ? (1u << 20) : 12, cases[c]);
    }
  buf_free (&p.bytes);
  printf ("1..%d\n", tests);
  return failures ? 1 : 0;
}
