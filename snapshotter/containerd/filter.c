/* A port of containerd's filters scanner and parser (filters/scanner.go,
 * parser.go, quote.go), byte for byte where the input is ASCII. */
#include "filter.h"
#include "grpc-msg.h"
#include "util.h"

#include <regex.h>
#include <stdio.h>

enum
{
  T_EOF = -1,
  T_QUOTED = -2,
  T_VALUE = -3,
  T_FIELD = -4,
  T_SEP = -5,
  T_OP = -6,
  T_ILLEGAL = -7,
};

enum op
{
  OP_PRESENT,
  OP_EQ,
  OP_NE,
  OP_MATCH,
};

struct selector
{
  char **path;
  size_t n_path;
  enum op op;
  char *value;
  regex_t re;
  bool have_re;
};

struct conj
{
  struct selector *s;
  size_t n;
};

struct ov_filter
{
  struct conj *any;
  size_t n;
  bool always;
};

struct scanner
{
  const char *in;
  size_t len, pos, ppos;
  bool value;
  const char *err;
};

static int
next (struct scanner *s)
{
  if (s->ppos >= s->len)
    {
      s->pos = s->ppos;
      return T_EOF;
    }
  s->pos = s->ppos;
  unsigned char c = s->in[s->ppos++];
  if (c == 0)
    {
      if (!s->err)
        s->err = "unexpected null";
      return T_ILLEGAL;
    }
  return c; /* bytes >= 0x80 stand for themselves: values and quoted text only */
}

static int
peek (struct scanner *s)
{
  size_t pos = s->pos, ppos = s->ppos;
  int c = next (s);
  s->pos = pos;
  s->ppos = ppos;
  return c;
}

static bool is_field (int c) { return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static bool is_op (int c) { return c == '=' || c == '!' || c == '~'; }
static bool is_quote (int c) { return c == '/' || c == '|' || c == '"'; }
static bool is_sep (int c) { return c == ',' || c == '.'; }
static bool is_space (int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static bool is_value (int c) { return c >= 0 && c != ',' && !is_space (c) && (c > 0x20 && c != 0x7f); }

static int
hexval (int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return 16;
}

static int
scan_digits (struct scanner *s, int c, int base, int n, bool *legal)
{
  while (n > 0 && c >= 0 && hexval (c) < base)
    {
      c = next (s);
      n--;
    }
  if (n > 0)
    {
      if (!s->err)
        s->err = "illegal numeric escape sequence";
      *legal = false;
    }
  return c;
}

static bool
scan_quoted (struct scanner *s, int quote)
{
  bool legal = true;
  int c = next (s);
  while (c != quote)
    {
      if (c == '\n' || c < 0)
        {
          if (!s->err)
            s->err = "quoted literal not terminated";
          return false;
        }
      if (c == '\\')
        {
          c = next (s);
          switch (c)
            {
            case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
              c = next (s);
              break;
            case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
              c = scan_digits (s, c, 8, 3, &legal);
              break;
            case 'x':
              c = scan_digits (s, next (s), 16, 2, &legal);
              break;
            case 'u':
              c = scan_digits (s, next (s), 16, 4, &legal);
              break;
            case 'U':
              c = scan_digits (s, next (s), 16, 8, &legal);
              break;
            default:
              if (c == quote)
                {
                  c = next (s);
                  break;
                }
              if (!s->err)
                s->err = "illegal escape sequence";
              legal = false;
            }
        }
      else
        c = next (s);
    }
  return legal;
}

/* one token: its bytes are in[*tpos, *tpos + *tlen) */
static int
scan (struct scanner *s, size_t *tpos, size_t *tlen)
{
  int c = next (s);
  size_t pos = s->pos;
  for (;;)
    {
      *tpos = pos;
      *tlen = 0;
      if (c == T_EOF || c == T_ILLEGAL)
        return c;
      if (is_quote (c))
        {
          bool ok = scan_quoted (s, c);
          *tlen = s->ppos - pos;
          return ok ? T_QUOTED : T_ILLEGAL;
        }
      if (is_sep (c))
        {
          s->value = false;
          *tlen = 1;
          return T_SEP;
        }
      if (is_op (c))
        {
          while (is_op (peek (s)))
            next (s);
          s->value = true;
          *tlen = s->ppos - pos;
          return T_OP;
        }
      if (is_space (c))
        {
          c = next (s);
          pos = s->pos;
          continue;
        }
      if (s->value)
        {
          while (is_value (peek (s)))
            next (s);
          s->value = false;
          *tlen = s->ppos - pos;
          return T_VALUE;
        }
      if (is_field (c))
        {
          while (is_field (peek (s)))
            next (s);
          *tlen = s->ppos - pos;
          return T_FIELD;
        }
      return c;
    }
}

static void
put_utf8 (struct ov_buf *b, uint32_t r)
{
  if (r < 0x80)
    buf_u8 (b, r);
  else if (r < 0x800)
    {
      buf_u8 (b, 0xc0 | r >> 6);
      buf_u8 (b, 0x80 | (r & 0x3f));
    }
  else if (r < 0x10000)
    {
      buf_u8 (b, 0xe0 | r >> 12);
      buf_u8 (b, 0x80 | ((r >> 6) & 0x3f));
      buf_u8 (b, 0x80 | (r & 0x3f));
    }
  else
    {
      buf_u8 (b, 0xf0 | r >> 18);
      buf_u8 (b, 0x80 | ((r >> 12) & 0x3f));
      buf_u8 (b, 0x80 | ((r >> 6) & 0x3f));
      buf_u8 (b, 0x80 | (r & 0x3f));
    }
}

/* quote.go's unquote: the text between the quotes with escapes decoded;
 * NULL if malformed or if it decodes to a NUL byte */
static char *
unquote (const char *p, size_t n)
{
  if (n < 2 || p[0] != p[n - 1])
    return NULL;
  char q = p[0];
  struct ov_buf b = { 0 };
  for (size_t i = 1; i < n - 1;)
    {
      unsigned char c = p[i];
      if (c == (unsigned char) q)
        goto bad;
      if (c != '\\')
        {
          buf_u8 (&b, c);
          i++;
          continue;
        }
      if (i + 1 >= n - 1)
        goto bad;
      c = p[i + 1];
      i += 2;
      uint32_t v = 0;
      switch (c)
        {
        case 'a': v = '\a'; break;
        case 'b': v = '\b'; break;
        case 'f': v = '\f'; break;
        case 'n': v = '\n'; break;
        case 'r': v = '\r'; break;
        case 't': v = '\t'; break;
        case 'v': v = '\v'; break;
        case '\\': v = '\\'; break;
        case 'x': case 'u': case 'U':
          {
            size_t k = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            if (n - 1 - i < k)
              goto bad;
            for (size_t j = 0; j < k; j++)
              {
                int h = hexval ((unsigned char) p[i + j]);
                if (h > 15)
                  goto bad;
                v = v << 4 | h;
              }
            i += k;
            if (c != 'x')
              {
                if (v > 0x10ffff)
                  goto bad;
                if (v == 0)
                  goto bad;
                put_utf8 (&b, v);
                continue;
              }
            break;
          }
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
          v = c - '0';
          if (n - 1 - i < 2)
            goto bad;
          for (int j = 0; j < 2; j++)
            {
              int d = (unsigned char) p[i + j] - '0';
              if (d < 0 || d > 7)
                goto bad;
              v = v << 3 | d;
            }
          i += 2;
          if (v > 255)
            goto bad;
          break;
        case '\'': case '"': case '|': case '/':
          if (c != (unsigned char) q)
            goto bad;
          v = c;
          break;
        default:
          goto bad;
        }
      if (v == 0)
        goto bad;
      buf_u8 (&b, v);
    }
  buf_u8 (&b, 0);
  return (char *) b.data;
bad:
  buf_free (&b);
  return NULL;
}

struct parser
{
  struct scanner sc;
  ov_error_t *err;
};

static int
perr (struct parser *p, size_t pos, const char *msg)
{
  return ov_error_set (p->err, OV_GRPC_ERR (OV_GRPC_INVALID_ARGUMENT), 0,
                       "filter \"%.*s\": parse error at byte %zu: %s", (int) (p->sc.len < 200 ? p->sc.len : 200), p->sc.in,
                       pos, msg);
}

static char *
tok_text (struct parser *p, size_t pos, size_t len)
{
  return xstrndup (p->sc.in + pos, len);
}

static char *
field (struct parser *p)
{
  size_t pos, len;
  int t = scan (&p->sc, &pos, &len);
  if (t == T_FIELD)
    return tok_text (p, pos, len);
  if (t == T_QUOTED)
    {
      char *u = p->sc.in[pos] == '"' ? unquote (p->sc.in + pos, len) : NULL;
      if (u == NULL)
        perr (p, pos, p->sc.in[pos] == '"' ? "unquoting failed" : "invalid quote encountered");
      return u;
    }
  perr (p, pos, t == T_ILLEGAL && p->sc.err ? p->sc.err : "expected field or quoted");
  return NULL;
}

static void
selector_free (struct selector *s)
{
  for (size_t i = 0; i < s->n_path; i++)
    free (s->path[i]);
  free (s->path);
  free (s->value);
  if (s->have_re)
    regfree (&s->re);
}

/* glibc's regcomp copies a subtree for each '+' (a+ is aa*) and m times for
 * a {m,n}, nested ones multiplying, and back-references make matching
 * exponential: a peer's pattern could take gigabytes or hours. So a
 * pattern is refused unless small: 256 bytes, at most 6 '+', at most one
 * {m,n} of at most 64 (and then at most 2 '+'), at most 16 repetitions in
 * all and none repeating a repetition ("a***" took 27 s to compile under
 * the fuzzer), no back-reference. */
static bool
regex_bounded (const char *re)
{
  if (strlen (re) > 256)
    return false;
  int plus = 0, braces = 0, reps = 0;
  bool after_rep = false;
  for (const char *c = re; *c; c++)
    {
      if (c[0] == '\\' && c[1] >= '1' && c[1] <= '9')
        return false;
      if (c[0] == '\\' && c[1])
        {
          c++; /* an escaped character repeats nothing */
          after_rep = false;
          continue;
        }
      bool rep = strchr ("*+?{", *c) != NULL;
      if (rep && (after_rep || ++reps > 16))
        return false;
      after_rep = rep;
      plus += *c == '+';
      if (*c == '{')
        {
          braces++;
          const char *d = c + 1;
          while (*d && *d != '}')
            if (*d >= '0' && *d <= '9')
              {
                char *end;
                if (strtol (d, &end, 10) > 64)
                  return false;
                d = end;
              }
            else
              d++;
          c = *d ? d : d - 1; /* on the '}' */
        }
    }
  return braces <= 1 && plus <= (braces ? 2 : 6);
}

static int
selector (struct parser *p, struct selector *s)
{
  *s = (struct selector){ 0 };
  char *f = field (p);
  if (f == NULL)
    return -1;
  s->path = xmalloc (sizeof *s->path);
  s->path[s->n_path++] = f;
  while (peek (&p->sc) == '.')
    {
      size_t pos, len;
      if (scan (&p->sc, &pos, &len) != T_SEP)
        return perr (p, pos, "expected a field separator (`.`)");
      if ((f = field (p)) == NULL)
        return -1;
      s->path = xrealloc (s->path, (s->n_path + 1) * sizeof *s->path);
      s->path[s->n_path++] = f;
    }
  int c = peek (&p->sc);
  if (c == ',' || c == T_EOF)
    {
      s->op = OP_PRESENT;
      return 0;
    }
  size_t pos, len;
  int t = scan (&p->sc, &pos, &len);
  if (t != T_OP)
    return perr (p, pos, t == T_ILLEGAL && p->sc.err ? p->sc.err
                                                      : "expected an operator (\"==\"|\"!=\"|\"~=\")");
  if (len == 2 && memcmp (p->sc.in + pos, "==", 2) == 0)
    s->op = OP_EQ;
  else if (len == 2 && memcmp (p->sc.in + pos, "!=", 2) == 0)
    s->op = OP_NE;
  else if (len == 2 && memcmp (p->sc.in + pos, "~=", 2) == 0)
    s->op = OP_MATCH;
  else
    return perr (p, pos, "unsupported operator");
  t = scan (&p->sc, &pos, &len);
  if (t == T_VALUE || t == T_FIELD)
    s->value = tok_text (p, pos, len);
  else if (t == T_QUOTED)
    {
      if (s->op != OP_MATCH && p->sc.in[pos] != '"')
        return perr (p, pos, "invalid quote encountered");
      if ((s->value = unquote (p->sc.in + pos, len)) == NULL)
        return perr (p, pos, "unquoting failed");
    }
  else
    return perr (p, pos, t == T_ILLEGAL && p->sc.err ? p->sc.err : "expected value or quoted");
  if (s->op == OP_MATCH)
    {
      if (!regex_bounded (s->value))
        return perr (p, pos, "regular expression too costly (at most 256 bytes, 16 repetitions, "
                             "none repeated, 6 '+', one {m,n} of at most 64, no back-reference)");
      int r = regcomp (&s->re, s->value, REG_EXTENDED | REG_NOSUB);
      if (r != 0)
        return perr (p, pos, "not a valid regular expression");
      s->have_re = true;
    }
  return 0;
}

static int
parse_one (const char *text, struct conj *cj, ov_error_t *err)
{
  struct parser p = { { text, strlen (text), 0, 0, false, NULL }, err };
  *cj = (struct conj){ 0 };
  for (;;)
    {
      cj->s = xrealloc (cj->s, (cj->n + 1) * sizeof *cj->s);
      if (selector (&p, &cj->s[cj->n]) < 0)
        {
          selector_free (&cj->s[cj->n]);
          return -1;
        }
      cj->n++;
      int c = peek (&p.sc);
      if (c == T_EOF)
        return 0;
      if (c != ',')
        return perr (&p, p.sc.ppos, "unexpected input");
      size_t pos, len;
      scan (&p.sc, &pos, &len);
    }
}

int
ov_filter_parse (struct ov_filter **out, char *const *filters, size_t n, ov_error_t *err)
{
  struct ov_filter *f = xcalloc (1, sizeof *f);
  f->always = n == 0;
  for (size_t i = 0; i < n; i++)
    {
      if (filters[i][0] == '\0')
        {
          f->always = true;
          continue;
        }
      f->any = xrealloc (f->any, (f->n + 1) * sizeof *f->any);
      if (parse_one (filters[i], &f->any[f->n], err) < 0)
        {
          f->n++;
          ov_filter_free (f);
          return -1;
        }
      f->n++;
    }
  *out = f;
  return 0;
}

static bool
selector_match (const struct selector *s, ov_filter_field_fn field_fn, void *ctx)
{
  bool present = false;
  const char *v = field_fn (ctx, s->path, s->n_path, &present);
  if (!present || v == NULL)
    v = "";
  switch (s->op)
    {
    case OP_PRESENT:
      return present;
    case OP_EQ:
      return present && strcmp (v, s->value) == 0;
    case OP_NE:
      return strcmp (v, s->value) != 0;
    case OP_MATCH:
      return regexec (&s->re, v, 0, NULL, 0) == 0;
    }
  return false;
}

bool
ov_filter_match (const struct ov_filter *f, ov_filter_field_fn field_fn, void *ctx)
{
  if (f->always)
    return true;
  for (size_t i = 0; i < f->n; i++)
    {
      bool all = true;
      for (size_t k = 0; k < f->any[i].n && all; k++)
        all = selector_match (&f->any[i].s[k], field_fn, ctx);
      if (all)
        return true;
    }
  return false;
}

void
ov_filter_free (struct ov_filter *f)
{
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->n; i++)
    {
      for (size_t k = 0; k < f->any[i].n; k++)
        selector_free (&f->any[i].s[k]);
      free (f->any[i].s);
    }
  free (f->any);
  free (f);
}
