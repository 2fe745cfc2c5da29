/* S3's XML answers (ListObjectsV2 pages, <Error> bodies, multipart
 * replies) through libxml2. The body comes from the network: it is parsed
 * with no network access, no DTD loading and no entity substitution, a
 * document with a DOCTYPE is refused, and every field is bounds-checked
 * before use. */
#include "s3-int.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>

#define XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)
#define XML_MAX (32u << 20)

static void
quiet (void *ctx UNUSED, const char *msg UNUSED, ...)
{
}

void
s3_xml_init (void)
{
  xmlInitParser ();
  xmlSetGenericErrorFunc (NULL, quiet);
}

static xmlDocPtr
parse (const uint8_t *p, size_t n)
{
  if (n == 0 || n > XML_MAX)
    return NULL;
  xmlDocPtr d = xmlReadMemory ((const char *) p, (int) n, "s3.xml", NULL, XML_OPTS);
  if (d && (d->intSubset || d->extSubset || xmlDocGetRootElement (d) == NULL))
    {
      xmlFreeDoc (d);
      return NULL;
    }
  return d;
}

static bool
is (xmlNodePtr n, const char *name)
{
  return n->type == XML_ELEMENT_NODE && strcmp ((const char *) n->name, name) == 0;
}

static xmlNodePtr
child (xmlNodePtr parent, const char *name)
{
  for (xmlNodePtr c = parent->children; c; c = c->next)
    if (is (c, name))
      return c;
  return NULL;
}

/* the element's text (a malloc'd string) */
static char *
text (xmlNodePtr n)
{
  xmlChar *t = xmlNodeGetContent (n);
  if (t == NULL)
    return xstrdup ("");
  char *r = xstrdup ((const char *) t);
  xmlFree (t);
  return r;
}

static void
copy_text (xmlNodePtr n, char *dst, size_t cap)
{
  cleanup_free char *t = n ? text (n) : xstrdup ("");
  size_t i = 0;
  for (; t[i] && i + 1 < cap; i++)
    dst[i] = (unsigned char) t[i] < 0x20 ? '?' : t[i];
  dst[i] = '\0';
}

int
s3_xml_error (const uint8_t *p, size_t n, struct s3_xml_error *out)
{
  out->code[0] = out->message[0] = '\0';
  xmlDocPtr d = parse (p, n);
  if (d == NULL)
    return -1;
  xmlNodePtr root = xmlDocGetRootElement (d);
  int rc = -1;
  if (is (root, "Error"))
    {
      copy_text (child (root, "Code"), out->code, sizeof out->code);
      copy_text (child (root, "Message"), out->message, sizeof out->message);
      rc = 0;
    }
  xmlFreeDoc (d);
  return rc;
}

char *
s3_xml_field (const uint8_t *p, size_t n, const char *root_name, const char *name)
{
  xmlDocPtr d = parse (p, n);
  if (d == NULL)
    return NULL;
  xmlNodePtr root = xmlDocGetRootElement (d);
  char *r = NULL;
  if (root_name == NULL || is (root, root_name))
    {
      xmlNodePtr c = child (root, name);
      if (c)
        r = text (c);
    }
  xmlFreeDoc (d);
  return r;
}

/* encoding-type=url: %XX, and '+' for a space (AWS writes that; Swift
 * writes %20 and %2B) */
static char *
url_decode (const char *s, bool *ok)
{
  size_t n = strlen (s);
  char *r = xmalloc (n + 1), *o = r;
  *ok = true;
  for (size_t i = 0; i < n; i++)
    {
      if (s[i] == '%')
        {
          int v = 0;
          for (int j = 1; j <= 2; j++)
            {
              char c = i + j < n ? s[i + j] : 0;
              int d = c >= '0' && c <= '9' ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
              if (d < 0)
                {
                  *ok = false;
                  free (r);
                  return NULL;
                }
              v = v * 16 + d;
            }
          if (v == 0)
            {
              *ok = false;
              free (r);
              return NULL;
            }
          *o++ = (char) v;
          i += 2;
        }
      else
        *o++ = s[i] == '+' ? ' ' : s[i];
    }
  *o = '\0';
  return r;
}

int64_t
s3_parse_iso8601 (const char *s)
{
  struct tm tm = { 0 };
  int used = 0;
  if (sscanf (s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
              &tm.tm_min, &tm.tm_sec, &used)
      != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return timegm (&tm);
}

static bool
parse_size (const char *t, uint64_t *out)
{
  if (*t < '0' || *t > '9' || strlen (t) > 19)
    return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull (t, &end, 10);
  if (errno || *end)
    return false;
  *out = v;
  return true;
}

/* a key from the page, below the store's prefix */
static char *
below_prefix (struct ov_s3 *s, xmlNodePtr n, const char *what, ov_error_t *err)
{
  cleanup_free char *enc = n ? text (n) : NULL;
  if (enc == NULL)
    return ov_error (err, EPROTO, "S3 LIST %s: an entry without its %s", s->name, what), NULL;
  bool ok;
  char *k = url_decode (enc, &ok);
  if (!ok)
    return ov_error (err, EPROTO, "S3 LIST %s: a %s that is not url-encoded: '%.80s'", s->name,
                     what, enc),
           NULL;
  size_t pl = strlen (s->prefix);
  if (strncmp (k, s->prefix, pl) != 0 || strlen (k) > 1024)
    {
      ov_error (err, EPROTO, "S3 LIST %s: the server listed '%.80s', outside the prefix", s->name,
                enc);
      free (k);
      return NULL;
    }
  memmove (k, k + pl, strlen (k + pl) + 1);
  return k;
}

int
s3_xml_list_page (struct ov_s3 *s, const uint8_t *p, size_t n, struct ov_s3_list *out,
                  struct s3_list_page *page, ov_error_t *err)
{
  page->truncated = false;
  page->token = NULL;
  xmlDocPtr d = parse (p, n);
  if (d == NULL)
    return ov_error (err, EPROTO, "S3 LIST %s: the answer is not XML (%zu bytes)", s->name, n);
  xmlNodePtr root = xmlDocGetRootElement (d);
  int rc = -1;
  if (!is (root, "ListBucketResult"))
    {
      ov_error (err, EPROTO, "S3 LIST %s: the answer is <%.40s>, not <ListBucketResult>", s->name,
                (const char *) root->name);
      goto out;
    }
  for (xmlNodePtr c = root->children; c; c = c->next)
    {
      if (is (c, "IsTruncated"))
        {
          cleanup_free char *t = text (c);
          page->truncated = strcmp (t, "true") == 0;
        }
      else if (is (c, "NextContinuationToken"))
        {
          free (page->token);
          page->token = text (c);
        }
      else if (is (c, "Contents"))
        {
          struct ov_s3_entry e = { 0 };
          e.key = below_prefix (s, child (c, "Key"), "Key", err);
          if (e.key == NULL)
            goto out;
          xmlNodePtr sz = child (c, "Size");
          cleanup_free char *st = sz ? text (sz) : xstrdup ("");
          if (!parse_size (st, &e.size))
            {
              ov_error (err, EPROTO, "S3 LIST %s: key '%.80s' has the size '%.32s'", s->name,
                        e.key, st);
              free (e.key);
              goto out;
            }
          xmlNodePtr lm = child (c, "LastModified");
          if (lm)
            {
              cleanup_free char *t = text (lm);
              e.mtime = s3_parse_iso8601 (t);
            }
          copy_text (child (c, "ETag"), e.etag, sizeof e.etag);
          size_t el = strlen (e.etag);
          if (el >= 2 && e.etag[0] == '"' && e.etag[el - 1] == '"')
            {
              memmove (e.etag, e.etag + 1, el - 2);
              e.etag[el - 2] = '\0';
            }
          if ((out->n & (out->n - 1)) == 0)
            out->entries = xrealloc (out->entries, (out->n ? out->n * 2 : 1) * sizeof e);
          out->entries[out->n++] = e;
        }
      else if (is (c, "CommonPrefixes"))
        {
          char *k = below_prefix (s, child (c, "Prefix"), "Prefix", err);
          if (k == NULL)
            goto out;
          if ((out->nprefixes & (out->nprefixes - 1)) == 0)
            out->prefixes
                = xrealloc (out->prefixes, (out->nprefixes ? out->nprefixes * 2 : 1) * sizeof k);
          out->prefixes[out->nprefixes++] = k;
        }
    }
  rc = 0;
out:
  if (rc < 0)
    {
      free (page->token);
      page->token = NULL;
    }
  xmlFreeDoc (d);
  return rc;
}
