/* The envelope every ovsnap record shares: an 8-byte magic, a u32 format
 * version, the body, and an XXH3-64 checksum of all that as the trailer.
 * One writer and one checker, so every record kind is refused the same
 * way when it is damaged or from an unknown version. */
#ifndef OVSNAP_RECORD_H
#define OVSNAP_RECORD_H

#include "error.h"
#include "util.h"

void record_begin (struct ov_buf *b, const char magic[8], uint32_t version);
void record_seal (struct ov_buf *b);
/* Checks magic, checksum and version; on success *body reads the body.
 * `kind` ("tree object", ...) and `what` (the file) go into the error. */
int record_open (const uint8_t *p, size_t n, const char magic[8], uint32_t version,
                 const char *kind, const char *what, struct ov_reader *body, ov_error_t *err);

#endif
