/* Helpers shared by the CLI verbs: option parsing, store opening, output. */
#include "cli.h"
#include "util.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int
cli_open_store (struct cli *c, ov_error_t *err)
{
  if (c->store)
    return 0;
  if (ov_node_open_store (&c->node, c->root, c->store_url, OV_STORE_CREATE, err) < 0)
    return -1;
  c->store = c->node->store;
  /* Shared: every command may run beside others; gc waits for them. */
  return ov_store_lock (c->store, false, err);
}

void
cli_print_help (const char *verb, const struct cli_opts *o)
{
  printf ("usage: ovsnap %s %s\n", verb, o->usage);
  if (o->help && o->help[0])
    printf ("\n%s", o->help);
  printf ("\ncommon options:\n"
          "  --json        machine-readable output on stdout\n"
          "  --root DIR    store root (default $OVSNAP_ROOT or /var/lib/ovsnap); with\n"
          "                --store, this node's caches and attachments\n"
          "  --store URL   s3://BUCKET[/PREFIX] (default $OVSNAP_STORE): a bucket shared\n"
          "                by many nodes; endpoint and credentials from AWS_*\n"
          "  -h, --help    this help\n"
          "\nexit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 busy, 5 no space,\n"
          "            6 corrupt store\n");
}

int
cli_usage_error (const struct cli_opts *o, const char *verb, ov_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *msg;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    abort ();
  va_end (ap);
  ov_error_set (err, OV_EUSAGE, 0, "%s\nusage: ovsnap %s %s", msg, verb, o->usage);
  free (msg);
  return -2;
}

int
cli_parse (struct cli *c, int argc, char **argv, const char *verb, const struct cli_opts *o,
           const char *shortopts, const void *longopts_in,
           int (*handle) (int opt, const char *arg, void *ctx), void *ctx, ov_error_t *err)
{
  const struct option *in = longopts_in;
  size_t n = 0;
  while (in && in[n].name)
    n++;
  struct option *lo = xcalloc (n + 5, sizeof *lo);
  if (n)
    memcpy (lo, in, n * sizeof *lo);
  lo[n] = (struct option){ "json", no_argument, NULL, 0x100 };
  lo[n + 1] = (struct option){ "root", required_argument, NULL, 0x101 };
  lo[n + 2] = (struct option){ "help", no_argument, NULL, 'h' };
  lo[n + 3] = (struct option){ "store", required_argument, NULL, 0x102 };
  cleanup_free char *so = xasprintf (":h%s", shortopts ? shortopts : "");
  optind = 0;
  opterr = 0;
  int opt, ret = 0;
  while ((opt = getopt_long (argc, argv, so, lo, NULL)) != -1)
    {
      if (opt == 0x100)
        c->json = true;
      else if (opt == 0x101)
        c->root = optarg;
      else if (opt == 0x102)
        c->store_url = optarg;
      else if (opt == 'h')
        {
          cli_print_help (verb, o);
          ret = -1;
          break;
        }
      else if (opt == '?')
        {
          ret = cli_usage_error (o, verb, err, "unknown option '%s'", argv[optind - 1]);
          break;
        }
      else if (opt == ':')
        {
          ret = cli_usage_error (o, verb, err, "option '%s' needs a value", argv[optind - 1]);
          break;
        }
      else if (handle == NULL || handle (opt, optarg, ctx) < 0)
        {
          ret = cli_usage_error (o, verb, err, "invalid value for option '%s'", argv[optind - 1]);
          break;
        }
    }
  free (lo);
  return ret < 0 ? ret : optind;
}

void
cli_json_print (struct json_object *o)
{
  puts (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                               | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
}

struct json_object *
cli_json_id (const struct ov_oid *id)
{
  char hex[OV_OID_STR];
  oid_hex (id, hex);
  return json_object_new_string (hex);
}

char *
cli_time (int64_t ns)
{
  time_t t = ns / 1000000000;
  struct tm tm;
  gmtime_r (&t, &tm);
  char buf[64];
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return xstrdup (buf);
}

char *
cli_short_id (const struct ov_oid *id)
{
  char hex[OV_OID_STR];
  oid_hex (id, hex);
  hex[12] = '\0';
  return xstrdup (hex);
}

int
cli_load_snapshot (struct cli *c, const char *volume, const char *at, struct ov_snapshot *out,
                   ov_error_t *err)
{
  if (cli_open_store (c, err) < 0)
    return -1;
  struct ov_volume v;
  if (ov_volume_load (c->store, volume, &v, err) < 0)
    return -1;
  struct ov_oid id;
  int r = ov_volume_resolve (c->store, &v, at ? at : "head", &id, err);
  volume_free (&v);
  if (r == 0)
    r = ov_snapshot_load (c->store, &id, out, err);
  return r;
}

void
cli_print_snapshot (struct cli *c, const struct ov_snapshot *snap)
{
  if (c->json)
    {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "snapshot", cli_json_id (&snap->id));
      json_object_object_add (o, "files", json_object_new_int64 (snap->root.inodes));
      json_object_object_add (o, "bytes", json_object_new_int64 (snap->root.size));
      cli_json_print (o);
    }
  else
    {
      char hex[OV_OID_STR];
      oid_hex (&snap->id, hex);
      puts (hex);
    }
}

/* JSON strings must be UTF-8; file names need not be. Invalid bytes become
 * U+FFFD so the document stays valid (the plain output keeps the bytes). */
struct json_object *
cli_json_str (const char *s)
{
  size_t n = strlen (s);
  struct ov_buf b = { 0 };
  const unsigned char *p = (const unsigned char *) s;
  for (size_t i = 0; i < n;)
    {
      unsigned c = p[i];
      size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
      bool ok = len > 0 && i + len <= n;
      for (size_t k = 1; ok && k < len; k++)
        ok = (p[i + k] & 0xc0) == 0x80;
      if (ok && len == 2 && c < 0xc2)
        ok = false; /* overlong */
      if (ok && len == 3)
        {
          unsigned cp = (c & 0x0f) << 12 | (p[i + 1] & 0x3f) << 6 | (p[i + 2] & 0x3f);
          ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
        }
      if (ok && len == 4)
        {
          unsigned cp = (c & 0x07) << 18 | (p[i + 1] & 0x3f) << 12 | (p[i + 2] & 0x3f) << 6
                        | (p[i + 3] & 0x3f);
          ok = cp >= 0x10000 && cp <= 0x10ffff;
        }
      if (ok)
        {
          buf_put (&b, p + i, len);
          i += len;
        }
      else
        {
          buf_put (&b, "\xef\xbf\xbd", 3);
          i++;
        }
    }
  struct json_object *o = json_object_new_string_len (b.len ? (const char *) b.data : "", b.len);
  buf_free (&b);
  return o;
}

int
cli_opt_flag (int opt UNUSED, const char *arg UNUSED, void *ctx)
{
  *(bool *) ctx = true;
  return 0;
}

int
cli_opt_string (int opt UNUSED, const char *arg, void *ctx)
{
  *(const char **) ctx = arg;
  return 0;
}
