// containerd-refserver: containerd's builtin overlayfs snapshotter (snapshots/overlay, from
// Debian's containerd 1.6 sources) served as a proxy snapshotter, over gRPC on a unix socket,
// with containerd's own service adapter (contrib/snapshotservice). It is the reference the
// containerd suite runner is checked against (tests/t3310) and what scripts/bench compares
// ovsnap's snapshotter with. Options as containerd 1.6 configures its overlayfs plugin:
// asynchronous remove (a Cleanup RPC deletes removed snapshots' directories).
//
// SIGTERM or SIGINT stops it: no new RPCs, running ones finish (at most 10 s), the
// snapshotter's metadata is closed, exit 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/snapshots/overlay"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

var refserver = program{
	usage: "--root DIR --address SOCK [--debug]",
	nargs: 0,
	setup: func(fs *flag.FlagSet) func([]string) error {
		root := fs.String("root", "/var/lib/containerd-refserver", "the snapshotter's root directory")
		address := fs.String("address", "/run/containerd-refserver/snapshotter.sock", "unix socket to serve on")
		debug := fs.Bool("debug", false, "log every RPC")
		return func([]string) error { return serve(*root, *address, *debug) }
	},
}

func serve(root, address string, debug bool) error {
	if err := os.MkdirAll(root, 0700); err != nil {
		return err
	}
	sn, err := overlay.NewSnapshotter(root, overlay.AsynchronousRemove)
	if err != nil {
		return fmt.Errorf("overlayfs snapshotter on %s: %w", root, err)
	}
	defer sn.Close()

	if err := os.MkdirAll(filepath.Dir(address), 0700); err != nil {
		return err
	}
	if err := os.Remove(address); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove the old socket: %w", err)
	}
	l, err := net.Listen("unix", address)
	if err != nil {
		return err
	}

	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
		grpc.MaxSendMsgSize(defaults.DefaultMaxSendMsgSize),
		grpc.UnaryInterceptor(logUnary(debug)),
		grpc.StreamInterceptor(logStream(debug)),
	)
	snapshotsapi.RegisterSnapshotsServer(srv, snapshotservice.FromSnapshotter(sn))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve %s: %w", address, err)
	case <-sigs:
	}
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		srv.Stop()
	}
	os.Remove(address)
	return nil
}

// One line per failed RPC; with --debug, one per RPC.
func logUnary(debug bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (interface{}, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		logRPC(debug, info.FullMethod, start, err)
		return resp, err
	}
}

func logStream(debug bool) grpc.StreamServerInterceptor {
	return func(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		logRPC(debug, info.FullMethod, start, err)
		return err
	}
}

func logRPC(debug bool, method string, start time.Time, err error) {
	if err == nil && !debug {
		return
	}
	code := status.Code(err)
	msg := ""
	if err != nil {
		msg = ": " + status.Convert(err).Message()
	}
	fmt.Fprintf(os.Stderr, "containerd-refserver: %s %v %v%s\n", filepath.Base(method), code, time.Since(start).Round(time.Microsecond), msg)
}
