/* Fuzz target: ov_control_handle, the agent's control-socket protocol, on a
 * store opened once in a scratch directory under $TMPDIR with one volume and
 * no attachment (commit and reload then answer "error notfound ..."). The
 * input is cut into request lines the way the agent's client reader does
 * (at '\n', one trailing '\r' dropped, lines with NUL or longer than
 * OV_CONTROL_LINE_MAX never reach the handler). Every reply must be
 * newline-terminated lines: status lines ("VOLUME PATH SNAPSHOT state"),
 * then exactly one final line, "ok..." or "error CODE MESSAGE" with a
 * documented CODE. Violations abort. */
#include "agent.h"
#include "volume.h"
#include "fuzz.h"

#include <stdio.h>

#define CONTAINER "fuzz-container"

static struct ov_store *store;

static void
close_store (void)
{
  ov_store_close (store);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  const char *scratch = fuzz_scratch ("control");
  cleanup_free char *root = xasprintf ("%s/store", scratch);
  ov_error_t err = NULL;
  struct ov_volume v;
  if (ov_store_open (&store, root, OV_STORE_CREATE, &err) < 0
      || ov_volume_create (store, "data", OV_DEFAULT_MAX_INODES, &v, &err) < 0)
    {
      fprintf (stderr, "fuzz-control: %s\n", err->msg);
      abort ();
    }
  volume_free (&v);
  atexit (close_store);
  return 0;
}

static bool
known_code (const char *word, size_t len)
{
  static const char *const codes[] = { "error", "usage", "notfound", "busy", "nospace", "corrupt" };
  for (size_t i = 0; i < ARRAY_SIZE (codes); i++)
    if (strlen (codes[i]) == len && memcmp (codes[i], word, len) == 0)
      return true;
  return false;
}

/* "VOLUME PATH SNAPSHOT clean|dirty|readonly" */
static bool
status_line (const char *l, size_t len)
{
  const char *end = l + len, *sp[3];
  const char *p = l;
  for (int i = 0; i < 3; i++)
    {
      sp[i] = memchr (p, ' ', end - p);
      if (sp[i] == NULL || sp[i] == p)
        return false;
      p = sp[i] + 1;
    }
  size_t sl = end - p;
  return (sl == 5 && memcmp (p, "clean", 5) == 0) || (sl == 5 && memcmp (p, "dirty", 5) == 0)
         || (sl == 8 && memcmp (p, "readonly", 8) == 0);
}

static void
check_reply (const struct ov_buf *r)
{
  REQUIRE (r->len > 0 && r->data[r->len - 1] == '\n');
  REQUIRE (memchr (r->data, '\0', r->len) == NULL);
  const char *p = (const char *) r->data, *end = p + r->len;
  while (p < end)
    {
      const char *nl = memchr (p, '\n', end - p);
      size_t len = nl - p;
      bool last = nl + 1 == end;
      if (last && len >= 2 && memcmp (p, "ok", 2) == 0)
        REQUIRE (len == 2 || p[2] == ' ');
      else if (last && len > 6 && memcmp (p, "error ", 6) == 0)
        {
          const char *code = p + 6, *sp = memchr (code, ' ', len - 6);
          REQUIRE (sp != NULL && known_code (code, sp - code) && sp + 1 < nl);
        }
      else
        REQUIRE (!last && status_line (p, len));
      p = nl + 1;
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *p = data, *end = data + size;
  while (p < end)
    {
      const uint8_t *nl = memchr (p, '\n', end - p);
      size_t len = (nl ? nl : end) - p;
      if (len > 0 && p[len - 1] == '\r')
        len--;
      if (len <= OV_CONTROL_LINE_MAX && memchr (p, '\0', len) == NULL)
        {
          cleanup_free char *line = xstrndup ((const char *) p, len);
          struct ov_buf reply = { 0 };
          ov_control_handle (store, CONTAINER, line, &reply);
          check_reply (&reply);
          buf_free (&reply);
        }
      p = nl ? nl + 1 : end;
    }
  return 0;
}
