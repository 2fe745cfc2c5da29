/* containerd's filter syntax (containerd/filters), as List sends it:
 *   selectors := selector ("," selector)*
 *   selector  := fieldpath [("==" | "!=" | "~=") value]
 *   fieldpath := field ("." field)*, a field is [A-Za-z0-9_]+ or "quoted"
 *   value     := quoted | a run of printable non-space bytes but ','
 * Several filter strings are ORed; the selectors of one are ANDed; an
 * empty string matches everything. `labels."containerd.io/snapshot.ref"==X`,
 * `parent==P`, `name==N`, `kind==committed`. ~= is a POSIX extended regex
 * here (Go's RE2 there): the same for the simple patterns containerd uses.
 * Pure: the fuzz harness parses and matches as List does. */
#ifndef OVSNAP_FILTER_H
#define OVSNAP_FILTER_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

struct ov_filter;

/* The value at a field path and whether it is present. */
typedef const char *(*ov_filter_field_fn) (void *ctx, char *const *path, size_t n, bool *present);

int ov_filter_parse (struct ov_filter **out, char *const *filters, size_t n, ov_error_t *err);
bool ov_filter_match (const struct ov_filter *f, ov_filter_field_fn field, void *ctx);
void ov_filter_free (struct ov_filter *f);

#endif
