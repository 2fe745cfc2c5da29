// containerd's own snapshotter test suite (snapshots/testsuite, from Debian's
// golang-github-containerd-containerd-dev) run against a proxy snapshotter: a
// process serving containerd.services.snapshots.v1.Snapshots over gRPC on a unix
// socket, reached through containerd's own proxy client (snapshots/proxy) dialled
// the way containerd dials its proxy_plugins.
//
// Built by `make containerd-suite` into build/containerd-suite (a `go test -c`
// binary); see tests/containerd-suite/README.md. Two ways to reach the snapshotter:
//
//	-exec BIN   (or $OVSNAP_SNAPSHOTTER): every suite case starts its own
//	            `BIN --root ROOT --address SOCK` on the fresh root the suite gives
//	            the case, and stops it with SIGTERM at the end of the case, which
//	            must end it with status 0. This is how containerd runs the suite
//	            for its builtin snapshotters: a new snapshotter per case.
//	-socket SOCK (or $OVSNAP_SNAPSHOTTER_SOCK): every case talks to one running
//	            snapshotter. The suite uses some fixed keys (Walk: "a", "p", ...),
//	            so the snapshotter must be fresh: a second run against the same
//	            daemon fails.
//
// -tmpdir DIR (or $OVSNAP_SUITE_TMPDIR) is where the suite makes each case's
// directory (its work area, and in -exec mode the snapshotter's root and socket).
// Run as root: the suite mounts what the snapshotter returns.
package containerdsuite

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/pkg/dialer"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

var (
	flagSocket  = flag.String("socket", "", "unix socket of a running proxy snapshotter (default $OVSNAP_SNAPSHOTTER_SOCK)")
	flagExec    = flag.String("exec", "", "a snapshotter binary taking --root DIR --address SOCK, started afresh for every case (default $OVSNAP_SNAPSHOTTER, if $OVSNAP_SNAPSHOTTER_SOCK is not set)")
	flagArgs    = flag.String("exec-args", os.Getenv("OVSNAP_SNAPSHOTTER_ARGS"), "extra arguments for the -exec binary, split on blanks (default $OVSNAP_SNAPSHOTTER_ARGS)")
	flagTmpdir  = flag.String("tmpdir", os.Getenv("OVSNAP_SUITE_TMPDIR"), "directory for the suite's per-case directories (default $OVSNAP_SUITE_TMPDIR, else $TMPDIR)")
	flagName    = flag.String("name", "ovsnap", "snapshotter name sent in each request, as containerd sends the proxy plugin's name")
	flagTimeout = flag.Duration("start-timeout", 20*time.Second, "how long an -exec snapshotter may take to accept connections, and to stop after SIGTERM")
)

// sunPathMax is the size of sockaddr_un.sun_path on Linux, NUL included.
const sunPathMax = 108

func TestMain(m *testing.M) {
	flag.Parse()
	// A flag wins over the environment; of the two variables, the socket wins (a test script
	// may export OVSNAP_SNAPSHOTTER for the daemon it starts and hand its socket over).
	if *flagSocket == "" && *flagExec == "" {
		if *flagSocket = os.Getenv("OVSNAP_SNAPSHOTTER_SOCK"); *flagSocket == "" {
			*flagExec = os.Getenv("OVSNAP_SNAPSHOTTER")
		}
	}
	if *flagTmpdir != "" {
		if err := os.MkdirAll(*flagTmpdir, 0755); err != nil {
			fmt.Fprintf(os.Stderr, "containerd-suite: -tmpdir: %v\n", err)
			os.Exit(2)
		}
		// os.MkdirTemp("", ...) in the suite reads $TMPDIR
		os.Setenv("TMPDIR", *flagTmpdir)
	}
	os.Exit(m.Run())
}

// TestSnapshotterSuite is containerd's suite; its cases are the subtests
// TestSnapshotterSuite/Basic, .../StatActive, ..., .../128LayersMount.
func TestSnapshotterSuite(t *testing.T) {
	if (*flagSocket == "") == (*flagExec == "") {
		t.Fatal("give exactly one of -socket SOCK ($OVSNAP_SNAPSHOTTER_SOCK) and -exec BIN ($OVSNAP_SNAPSHOTTER)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the suite mounts the snapshots it prepares: run it as root")
	}
	if *flagExec != "" {
		bin, err := exec.LookPath(*flagExec)
		if err != nil {
			t.Fatalf("-exec %s: %v", *flagExec, err)
		}
		if bin, err = filepath.Abs(bin); err != nil {
			t.Fatal(err)
		}
		testsuite.SnapshotterSuite(t, "Proxy", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
			return startSnapshotter(ctx, bin, root)
		})
		return
	}
	if fi, err := os.Stat(*flagSocket); err != nil {
		t.Fatalf("-socket: %v", err)
	} else if fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("-socket %s: not a unix socket (%v)", *flagSocket, fi.Mode())
	}
	testsuite.SnapshotterSuite(t, "Proxy", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		conn, err := dial(ctx, *flagSocket)
		if err != nil {
			return nil, nil, err
		}
		return proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), *flagName), conn.Close, nil
	})
}

// dial connects to a proxy snapshotter as containerd 1.6 does for a proxy_plugins entry
// (services/server/server.go, proxyClients.getClient), and waits until the connection is up.
func dial(ctx context.Context, sock string) (*grpc.ClientConn, error) {
	backoffConfig := backoff.DefaultConfig
	backoffConfig.MaxDelay = 3 * time.Second
	ctx, cancel := context.WithTimeout(ctx, *flagTimeout)
	defer cancel()
	conn, err := grpc.DialContext(ctx, dialer.DialAddress(sock),
		grpc.WithInsecure(),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoffConfig}),
		grpc.WithContextDialer(dialer.ContextDialer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(defaults.DefaultMaxRecvMsgSize)),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(defaults.DefaultMaxSendMsgSize)),
		grpc.WithBlock(),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to the snapshotter at %s: %w", sock, err)
	}
	return conn, nil
}

// startSnapshotter runs `bin --root ROOT --address SOCK` for one case, its output going to the
// case's log, and returns a proxy client of it and the function that stops it.
func startSnapshotter(ctx context.Context, bin, root string) (snapshots.Snapshotter, func() error, error) {
	// The socket sits beside root, in the case's own directory, with a short name.
	sock := filepath.Join(filepath.Dir(root), "sock")
	if len(sock) >= sunPathMax {
		return nil, nil, fmt.Errorf("socket path %s is %d bytes, more than a unix socket takes (%d): use a shorter -tmpdir", sock, len(sock), sunPathMax-1)
	}
	args := append(strings.Fields(*flagArgs), "--root", root, "--address", sock)
	cmd := exec.Command(bin, args...)
	cmd.Stdin = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	logger := log.G(ctx).WithField("snapshotter", filepath.Base(bin))
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		logLines(logger, out)
	}()
	exited := make(chan error, 1)
	go func() {
		copied.Wait() // Wait closes the pipe: read it all first
		exited <- cmd.Wait()
	}()

	stop := func() error {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("SIGTERM to %s: %w", bin, err)
		}
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("%s after SIGTERM: %v (it must exit 0)", bin, err)
			}
			return nil
		case <-time.After(*flagTimeout):
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", bin, *flagTimeout)
		}
	}

	// Wait for the socket; fail at once if the snapshotter exits first.
	deadline := time.Now().Add(*flagTimeout)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			return nil, nil, fmt.Errorf("%s %v exited before it listened on %s: %v", bin, args, sock, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return nil, nil, fmt.Errorf("%s %v did not listen on %s within %v", bin, args, sock, *flagTimeout)
		}
	}
	conn, err := dial(ctx, sock)
	if err != nil {
		if serr := stop(); serr != nil {
			err = fmt.Errorf("%w; %v", err, serr)
		}
		return nil, nil, err
	}
	sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), *flagName)
	return sn, func() error {
		cerr := conn.Close()
		if err := stop(); err != nil {
			return err
		}
		return cerr
	}, nil
}

// logLines copies the snapshotter's output, line by line, into the case's log (shown with -v,
// and for a failed case).
func logLines(logger interface{ Info(...interface{}) }, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		logger.Info(sc.Text())
	}
	// a line longer than the buffer: drain the rest so that the process never blocks on a write
	io.Copy(io.Discard, r)
}
