#include "oidset.h"
#include "util.h"

static size_t
slot_of (const struct ov_oid *id, size_t cap)
{
  uint64_t h;
  memcpy (&h, id->b, 8);
  return (h ^ id->variant) & (cap - 1);
}

static void
grow (struct ov_oidset *s)
{
  struct ov_oidset n = { .cap = s->cap ? s->cap * 2 : 1024 };
  n.slots = xcalloc (n.cap, sizeof *n.slots);
  n.used = xcalloc (n.cap, 1);
  for (size_t i = 0; i < s->cap; i++)
    if (s->used[i])
      oidset_add (&n, &s->slots[i]);
  oidset_free (s);
  *s = n;
}

bool
oidset_add (struct ov_oidset *s, const struct ov_oid *id)
{
  if ((s->n + 1) * 2 > s->cap)
    grow (s);
  for (size_t i = slot_of (id, s->cap);; i = (i + 1) & (s->cap - 1))
    {
      if (!s->used[i])
        {
          s->used[i] = 1;
          s->slots[i] = *id;
          s->n++;
          return true;
        }
      if (oid_eq (&s->slots[i], id))
        return false;
    }
}

bool
oidset_has (const struct ov_oidset *s, const struct ov_oid *id)
{
  if (s->cap == 0)
    return false;
  for (size_t i = slot_of (id, s->cap);; i = (i + 1) & (s->cap - 1))
    {
      if (!s->used[i])
        return false;
      if (oid_eq (&s->slots[i], id))
        return true;
    }
}

void
oidset_free (struct ov_oidset *s)
{
  free (s->slots);
  free (s->used);
  memset (s, 0, sizeof *s);
}
