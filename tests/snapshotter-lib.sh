# shellcheck shell=bash
# tests/snapshotter-lib.sh: helpers for the ovsnap-snapshotter tests (t33xx), sourced after lib.sh.
#
# The daemon under test is the one built beside $OVSNAP (snapshotter/ovsnap-snapshotter, or
# build-asan/ovsnap-snapshotter for build-asan/ovsnap), or $OVSNAP_SNAPSHOTTER.
#
#   expect_status NAME CMD...     CMD fails with gRPC status NAME (its output in status.out)
#   mount_src, mount_opts, mount_type <MOUNTS-JSON
#                                 the source, the comma-joined options, the type of the one mount
#   Nodes: daemon N (1, 2, ...) has root $TRASH_DIRECTORY/sdN (its node sdN/node), socket sdN.sock,
#   log sdN.log, and shares the store $STORE with the other nodes:
#   sd N ARGS...                  tests/helpers/grpc-client.py against daemon N
#   sd_start N [ENV=VALUE...]     start daemon N (--debug), wait until it serves
#   sd_stop N                     SIGTERM, wait until it is gone
#   sd_gone N                     daemon N is not running
# Every daemon started here is killed when the script ends.

if [ -z "${OVSNAP_SNAPSHOTTER:-}" ]; then
	OVSNAP_SNAPSHOTTER=$(dirname "$OVSNAP")/ovsnap-snapshotter
fi
case $OVSNAP_SNAPSHOTTER in /*) ;; *) OVSNAP_SNAPSHOTTER=$PWD/$OVSNAP_SNAPSHOTTER ;; esac
if ! [ -x "$OVSNAP_SNAPSHOTTER" ]; then
	echo "Bail out! no ovsnap-snapshotter at $OVSNAP_SNAPSHOTTER (run make, or set OVSNAP_SNAPSHOTTER)"
	exit 1
fi
# python3-h2 is a Debian package: the system python has it whatever python3 is first on PATH
H2PY=/usr/bin/python3
test_lazy_prereq H2 '/usr/bin/python3 -c "import h2"'
: "${STORE:=$TRASH_DIRECTORY/store}"

expect_status() {
	local want=$1
	shift
	"$@" >status.out 2>&1
	local rc=$?
	cat status.out
	[ "$rc" != 0 ] && [ "$rc" != 64 ] && grep -q "^$want: " status.out
}

mount_src() { python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["source"])'; }
mount_opts() { python3 -c 'import json,sys; m=json.load(sys.stdin); assert len(m)==1; print(",".join(m[0]["options"]))'; }
mount_type() { python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["type"])'; }

sd() { local n=$1; shift; "$H2PY" "$TEST_DIRECTORY/helpers/grpc-client.py" "$TRASH_DIRECTORY/sd$n.sock" "$@"; }
sd_start() {
	local n=$1; shift
	{ env "$@" "$OVSNAP_SNAPSHOTTER" --root "$TRASH_DIRECTORY/sd$n" --store "$STORE" \
		--address "$TRASH_DIRECTORY/sd$n.sock" --debug >>"$TRASH_DIRECTORY/sd$n.log" 2>&1 5>&- 6>&- 7>&- 8>&- &
		echo $! >"$TRASH_DIRECTORY/sd$n.pid"; } &&
	wait_for 10 test -S "$TRASH_DIRECTORY/sd$n.sock" &&
	wait_for 10 sd "$n" list
}
sd_gone() { ! kill -0 "$(cat "$TRASH_DIRECTORY/sd$1.pid")" 2>/dev/null; }
sd_stop() { kill -TERM "$(cat "$TRASH_DIRECTORY/sd$1.pid")" && wait_for 10 sd_gone "$1"; }
sd_atexit_() {
	local p
	for p in "$TRASH_DIRECTORY"/sd*.pid; do
		[ -e "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null
	done
	return 0
}
test_atexit sd_atexit_
