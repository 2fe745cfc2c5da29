/* Decoding request messages from a peer with protobuf-c, strictly: a
 * message protobuf-c refuses, or whose string fields (at any depth) hold a
 * NUL byte or are not UTF-8, is refused with a reason. protobuf-c alone
 * would cut a string at its first NUL, so a key "a\0b" would silently
 * become "a". Pure (no I/O): the fuzz harness of the request decoders
 * calls it as the service does. */
#ifndef OVSNAP_GRPC_PB_H
#define OVSNAP_GRPC_PB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* The message, or NULL with *why (static text) set. Free the message with
 * protobuf_c_message_free_unpacked (m, NULL). */
ProtobufCMessage *ov_pb_unpack (const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                                const char **why);
/* The checks alone, on bytes protobuf-c accepted: 0, or -1 with *why. */
int ov_pb_check_strings (const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                         int depth, const char **why);

#endif
