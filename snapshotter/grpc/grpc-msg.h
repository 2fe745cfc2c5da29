/* gRPC's framing of messages inside an HTTP/2 stream, and the small text
 * formats of its headers: pure functions, no I/O, so that the server
 * (grpc-server.c) and the fuzz harness (tests/fuzz/fuzz-grpc-frame.c)
 * drive the same code.
 *
 * A message on the wire: 1 flag byte (bit 0: compressed), a 4-byte
 * big-endian length, the bytes. Messages may span DATA frames and a frame
 * may hold several; the decoder takes whatever chunks the transport has. */
#ifndef OVSNAP_GRPC_MSG_H
#define OVSNAP_GRPC_MSG_H

#include "util.h"

#include <stdbool.h>
#include <stdint.h>

/* containerd's limit, both ways (defaults.DefaultMaxRecvMsgSize) */
#define OV_GRPC_MAX_MESSAGE (16u << 20)

enum ov_grpc_code
{
  OV_GRPC_OK = 0,
  OV_GRPC_CANCELLED = 1,
  OV_GRPC_UNKNOWN = 2,
  OV_GRPC_INVALID_ARGUMENT = 3,
  OV_GRPC_DEADLINE_EXCEEDED = 4,
  OV_GRPC_NOT_FOUND = 5,
  OV_GRPC_ALREADY_EXISTS = 6,
  OV_GRPC_PERMISSION_DENIED = 7,
  OV_GRPC_RESOURCE_EXHAUSTED = 8,
  OV_GRPC_FAILED_PRECONDITION = 9,
  OV_GRPC_ABORTED = 10,
  OV_GRPC_OUT_OF_RANGE = 11,
  OV_GRPC_UNIMPLEMENTED = 12,
  OV_GRPC_INTERNAL = 13,
  OV_GRPC_UNAVAILABLE = 14,
  OV_GRPC_DATA_LOSS = 15,
  OV_GRPC_UNAUTHENTICATED = 16,
};

/* "NotFound", ... (the names containerd and grpc-go print) */
const char *ov_grpc_code_name (int code);

/* An ov_error code that carries a gRPC status (ov_error_set (err,
 * OV_GRPC_ERR (OV_GRPC_NOT_FOUND), 0, ...)); ov_grpc_code_of maps any
 * error to the status it is answered with. */
#define OV_GRPC_ERR(c) (100 + (c))
int ov_grpc_code_of (int ov_error_code);

enum ov_grpc_rx_state
{
  OV_GRPC_RX_MORE,    /* every byte consumed, no complete message */
  OV_GRPC_RX_MESSAGE, /* a message is complete: take it with ov_grpc_rx_take */
  OV_GRPC_RX_ERROR,   /* the stream is broken: code and why say how */
};

struct ov_grpc_rx
{
  uint32_t max;        /* largest message accepted */
  uint8_t hdr[5];
  unsigned hdr_len;    /* bytes of the prefix seen so far */
  uint32_t want;       /* length of the message being collected */
  struct ov_buf body;  /* its bytes so far */
  bool ready;          /* body holds a complete message */
  int code;            /* OV_GRPC_RX_ERROR: the status to answer */
  const char *why;     /* and a static reason */
  uint64_t messages;   /* complete messages so far */
};

void ov_grpc_rx_init (struct ov_grpc_rx *rx, uint32_t max);
void ov_grpc_rx_free (struct ov_grpc_rx *rx);
/* Consume up to n bytes; *used says how many. Stops after each complete
 * message (OV_GRPC_RX_MESSAGE) so the caller sees them one at a time. A
 * length over max is refused as soon as its prefix is seen, before any of
 * the body is buffered (RESOURCE_EXHAUSTED); the compressed flag is refused
 * (we announce no encoding; UNIMPLEMENTED); any other flag bit: INTERNAL.
 * After an error every call returns the error again. */
enum ov_grpc_rx_state ov_grpc_rx_feed (struct ov_grpc_rx *rx, const uint8_t *p, size_t n,
                                       size_t *used);
/* The complete message: moves it into *msg (the caller frees msg->data). */
void ov_grpc_rx_take (struct ov_grpc_rx *rx, struct ov_buf *msg);
/* The stream ended: an error (INTERNAL) if it ended inside a message. */
enum ov_grpc_rx_state ov_grpc_rx_end (struct ov_grpc_rx *rx);

/* Appends the 5-byte prefix and the message. */
void ov_grpc_frame (struct ov_buf *out, const void *msg, size_t n);

/* grpc-timeout: "1*8DIGIT UNIT" with UNIT one of H M S m u n; the value in
 * nanoseconds (saturated), or -1 when the text is not of that form. */
int64_t ov_grpc_parse_timeout (const char *s, size_t n);

/* grpc-message: percent-encode every byte outside 0x20..0x7e and '%';
 * the result is NUL-terminated and at most max_out bytes long (a long
 * message is cut at a character boundary of the encoding). */
char *ov_grpc_percent_encode (const char *msg, size_t max_out);

#endif
