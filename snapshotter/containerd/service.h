/* containerd.services.snapshots.v1.Snapshots over the gRPC server: decodes
 * each request (strictly, grpc-pb.h), calls the snapshotter (snapshots.h)
 * and encodes the answer. The method table is what the daemon serves. */
#ifndef OVSNAP_SERVICE_H
#define OVSNAP_SERVICE_H

#include "grpc-server.h"
#include "snapshots.h"

extern const struct ov_grpc_method ov_snapshots_methods[];
extern const size_t ov_snapshots_n_methods;

#endif
