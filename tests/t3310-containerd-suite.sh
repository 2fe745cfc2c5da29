#!/bin/bash
# containerd's own snapshotter test suite (snapshots/testsuite in Debian's containerd 1.6 sources),
# through containerd's proxy client, against the proxy snapshotter under test:
#
#   OVSNAP_SNAPSHOTTER       a binary taking --root DIR --address SOCK (default: the
#                            ovsnap-snapshotter beside $OVSNAP, so the ASan pass runs the ASan
#                            daemon; build/containerd-refserver is the reference, containerd's
#                            builtin overlayfs snapshotter served over gRPC)
#   OVSNAP_SNAPSHOTTER_ARGS  extra arguments for it, before --root (e.g. --debug)
#   OVSNAP_CONTAINERD_SUITE  the runner (default build/containerd-suite)
#
# Both binaries come from `make containerd-suite` (Go, built offline from Debian's golang-*-dev
# packages; see tests/containerd-suite/README.md). First one snapshotter serves the whole suite,
# whose cases run side by side (many clients of one daemon, as containerd is), one test here per
# suite case so that a failure names it; then the suite again with a fresh snapshotter per case,
# each stopped by SIGTERM, which must end it with status 0.

test_description='containerd snapshotter test suite against a proxy snapshotter'
. "$(dirname "$0")/lib.sh"

SUITE=${OVSNAP_CONTAINERD_SUITE:-$REPO_ROOT/build/containerd-suite}
SNAPSHOTTER=${OVSNAP_SNAPSHOTTER:-$(dirname "$OVSNAP")/ovsnap-snapshotter}
CASES_OF=$TEST_DIRECTORY/containerd-suite/gotest-cases
# containerd 1.6's SnapshotterSuite, in its order (the names are the suite's, typos included):
# each must report a result; a case the suite gains later is added from its output.
CASES='Basic StatActive StatComitted TransitivityTest PreareViewFailingtest Update Remove Walk
LayerFileupdate RemoveDirectoryInLowerLayer Chown DirectoryPermissionOnCommit
RemoveIntermediateSnapshot DeletedFilesInChildSnapshot MoveFileFromLowerLayer Rename
ViewReadonly StatInWalk CloseTwice RootPermission 128LayersMount'
# per run of the suite (two runs): a hung snapshotter ends in a panic naming the case, well
# before tests/run's 600 s for the script
SUITE_TIMEOUT=240s

skip=
if ! test_have_prereq ROOT; then
	skip='needs root: the suite mounts the snapshots'
elif ! [ -x "$SUITE" ]; then
	if command -v go >/dev/null; then
		skip="no suite runner at $SUITE: run make containerd-suite"
	else
		skip="no Go toolchain and no suite runner at $SUITE: install golang-go (scripts/install-deps), then make containerd-suite"
	fi
elif ! [ -x "$SNAPSHOTTER" ]; then
	skip="no snapshotter at $SNAPSHOTTER: run make"
fi
if [ -n "$skip" ]; then
	test_expect_success CONTAINERD_SUITE "containerd snapshotter suite ($skip)" ':'
	test_done
fi

# sn_start DIR: the snapshotter under test on DIR/root and DIR/sock, its output in DIR/log
# (OVSNAP_SNAPSHOTTER_ARGS is split on blanks, as the runner's -exec does)
# shellcheck disable=SC2086
sn_start() {
	mkdir -p "$1" &&
	{ "$SNAPSHOTTER" ${OVSNAP_SNAPSHOTTER_ARGS:-} --root "$PWD/$1/root" --address "$PWD/$1/sock" >"$1/log" 2>&1 5>&- 6>&- 7>&- 8>&- &
	  echo $! >"$1/pid"; } &&
	test_atexit "sn_kill_ $PWD/$1" &&
	sn_wait_socket_ "$1" 20
}

# sn_wait_socket_ DIR SECONDS: until DIR/sock is there; fail at once if the snapshotter exits
sn_wait_socket_() {
	local -; set +x
	local pid
	pid=$(cat "$1/pid")
	for _ in $(seq 1 $(($2 * 10))); do
		[ -S "$1/sock" ] && kill -0 "$pid" 2>/dev/null && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			echo "the snapshotter exited (status $?) before it listened on $1/sock; its log:"
			cat "$1/log"
			return 1
		fi
		sleep 0.1
	done
	echo "the snapshotter did not listen on $1/sock within $2 s; its log:"
	cat "$1/log"
	return 1
}

# sn_stop DIR: SIGTERM; it must exit 0 within 10 s
sn_stop() {
	local -; set +x
	local pid status
	pid=$(cat "$1/pid")
	kill -TERM "$pid" || return 1
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "the snapshotter is still running 10 s after SIGTERM"
		return 1
	fi
	wait "$pid"
	status=$?
	rm -f "$1/pid"
	[ "$status" = 0 ] || { echo "the snapshotter exited with status $status after SIGTERM; its log:"; cat "$1/log"; return 1; }
}

sn_kill_() {
	[ -e "$1/pid" ] || return 0
	kill -KILL "$(cat "$1/pid")"
	wait "$(cat "$1/pid")"
}

# suite_run OUT ARGS...: the runner with ARGS, -v output to OUT.out, its exit status to OUT.rc,
# the cases split into OUT/ (gotest-cases); fails only if the run did not get to its end
suite_run() {
	local out=$1
	shift
	"$SUITE" -test.v -test.timeout "$SUITE_TIMEOUT" "$@" >"$out.out" 2>&1
	echo $? >"$out.rc"
	"$CASES_OF" "$out" <"$out.out" && return 0
	echo "the suite runner did not finish (status $(cat "$out.rc")); the end of its output:"
	tail -n 40 "$out.out"
	return 1
}

# suite_result DIR CASE: pass, fail, skip, none (started, no result) or nothing (never started)
suite_result() {
	[ -f "$1/results" ] || return 0
	awk -v c="$2" '$2 == c { print $1 }' "$1/results"
}

# suite_case_passed DIR CASE: the case passed; else show its output
suite_case_passed() {
	local -; set +x
	local r
	r=$(suite_result "$1" "$2")
	[ "$r" = pass ] && return 0
	suite_explain_ "$1" "$2" "$r"
	return 1
}

suite_explain_() {
	case $3 in
	fail) echo "suite case $2 failed; its output:" ;;
	none) echo "suite case $2 started but has no result (the runner died or timed out); its output:" ;;
	'') echo "suite case $2 never started; the end of the runner's output:"; tail -n 20 "$1.out"; return 0 ;;
	*) echo "suite case $2: $3; its output:" ;;
	esac
	cat "$1/$2.log"
}

# suite_all_passed DIR: every known case passed or was skipped by the suite itself
suite_all_passed() {
	local -; set +x
	local c r bad="" seen=""
	for c in $CASES $(awk '{ print $2 }' "$1/results"); do
		case " $seen " in *" $c "*) continue ;; esac
		seen="$seen $c"
		r=$(suite_result "$1" "$c")
		case $r in
		pass|skip) ;;
		*) bad="$bad $c"; suite_explain_ "$1" "$c" "$r" ;;
		esac
	done
	[ -z "$bad" ] || { echo "failed:$bad"; return 1; }
}

test_expect_success 'start the snapshotter under test' '
	sn_start sn
'

test_expect_success 'the suite runs to its end against it' '
	suite_run one -socket "$PWD/sn/sock" -tmpdir "$PWD/o"
'

# one test per case; a case the suite skips itself (Rename, upstream) is a skip here, with its reason
seen=
for c in $CASES $(awk '{ print $2 }' one/results 2>/dev/null); do
	case " $seen " in *" $c "*) continue ;; esac
	seen="$seen $c"
	if [ "$(suite_result one "$c")" = skip ]; then
		why=$(grep -v -e '^--- SKIP' -e 'log_hook.go' "one/$c.log" | head -n 1 | sed 's/^ *[^ :]*:[0-9]*: //')
		test_expect_success SKIPPED_BY_THE_SUITE "$c (the suite skips it: $why)" ':'
	else
		test_expect_success "$c" "suite_case_passed one $c"
	fi
done

test_expect_success 'the runner exits 0' '
	{ [ "$(cat one.rc)" = 0 ] || { tail -n 20 one.out; false; }; }
'

test_expect_success 'the snapshotter is still serving, and stops on SIGTERM with status 0' '
	test -S sn/sock &&
	sn_stop sn
'

test_expect_success 'the whole suite with a fresh snapshotter per case, each stopped by SIGTERM' '
	suite_run each -exec "$SNAPSHOTTER" -tmpdir "$PWD/e" &&
	suite_all_passed each &&
	[ "$(cat each.rc)" = 0 ]
'

test_done
