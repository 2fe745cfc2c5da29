# shellcheck shell=bash
# tests/lib.sh: a tiny git-style test harness for ovsnap (modelled on git's t/test-lib.sh).
#
# A test script looks like:
#
#   #!/bin/bash
#   test_description='what this script covers'
#   . "$(dirname "$0")/lib.sh"
#   test_expect_success 'what a user does' '
#       ovsnap volume create data &&
#       ovsnap volume list >out &&
#       grep -x data out
#   '
#   test_done
#
# Each script runs in its own throwaway directory under ${TMPDIR:-/tmp} (the cwd of every test),
# with OVSNAP_ROOT pointing at a store inside it. The binary under test is $OVSNAP (default:
# <repo>/snapshotter/ovsnap), callable as `ovsnap`. A test body is evaluated in the script's shell,
# git-style: chain every step with && (the harness refuses a body with a broken top-level chain),
# and end a failing step inside a loop with `|| return 1`. Before each test the cwd is reset to the
# trash directory and OVSNAP_ROOT to the script's store, so a body may cd or export freely.
#
# Options of a script: -v (show every test's output), -i (stop at the first failure),
# -d (keep the trash directory even when everything passes). Output is TAP: `ok N - title`.

test_description=${test_description:-}
TEST_DIRECTORY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || exit 1
REPO_ROOT=$(cd "$TEST_DIRECTORY/.." && pwd) || exit 1
TEST_NAME=$(basename "$0" .sh)

test_verbose_= test_immediate_= test_debug_=
for test_arg_ in "$@"; do
	case $test_arg_ in
	-v|--verbose) test_verbose_=t ;;
	-i|--immediate) test_immediate_=t ;;
	-d|--debug) test_debug_=t ;;
	-h|--help)
		echo "usage: $0 [-v] [-i] [-d]"
		[ -n "$test_description" ] && echo "$test_description"
		exit 0 ;;
	*) echo "Bail out! unknown option: $test_arg_"; exit 1 ;;
	esac
done
unset test_arg_

export LC_ALL=C TZ=UTC
unset CDPATH GREP_OPTIONS LANGUAGE

: "${OVSNAP:=$REPO_ROOT/snapshotter/ovsnap}"
case $OVSNAP in /*) ;; *) OVSNAP=$PWD/$OVSNAP ;; esac
if ! [ -f "$OVSNAP" ] || ! [ -x "$OVSNAP" ]; then
	echo "Bail out! no ovsnap binary at $OVSNAP (run make, or set OVSNAP)"
	exit 1
fi
export OVSNAP

# A sanitizer report must fail the command even where a test expects a failure: give sanitizers
# an exit code that test_must_fail refuses. The caller's own options come last and win.
export ASAN_OPTIONS="exitcode=99:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=99${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
test_sanitizer_code_=99

TRASH_DIRECTORY=$(mktemp -d "${TMPDIR:-/tmp}/ovsnap-test.$TEST_NAME.XXXXXX") || {
	echo "Bail out! cannot create a trash directory under ${TMPDIR:-/tmp}"
	exit 1
}
TEST_HARNESS_DIR=$TRASH_DIRECTORY/.harness
TEST_STORE=$TRASH_DIRECTORY/store
mkdir -p "$TEST_HARNESS_DIR/bin" || exit 1
ln -s "$OVSNAP" "$TEST_HARNESS_DIR/bin/ovsnap" || exit 1
PATH=$TEST_HARNESS_DIR/bin:$PATH
HOME=$TRASH_DIRECTORY
export PATH HOME TRASH_DIRECTORY TEST_DIRECTORY
OVSNAP_ROOT=$TEST_STORE
export OVSNAP_ROOT
cd "$TRASH_DIRECTORY" || exit 1

test_count=0 test_success=0 test_failure=0 test_skipped=0
test_done_called_=
test_cleanup_=
test_prereqs_ok_=" " test_prereqs_no_=" "
declare -A test_lazy_prereq_

# fd 5: shell trace of the running test; fd 7: the harness's messages (both into the test's log
# while a test runs, so they never land in a file a test body redirects); fd 6/8: the script's own
# stdout/stderr.
exec 5>/dev/null 6>&1 7>&2 8>&2
BASH_XTRACEFD=5
PS4='+ '

# --- mounts and background processes below the trash directory ---------------------------------
# Tests may create real (overlay) mounts below the trash directory and start background processes
# that hold files there. Removing a tree with a live mount inside would delete files through the
# mount, so the harness, before it removes the trash directory and whenever a script ends (passed,
# failed, bailed out or interrupted), kills the background processes registered with test_bg_pid,
# then unmounts every mount below the trash directory, deepest first (umount -l as a last resort).
# It never removes the trash directory while a mount below it remains.

test_bg_pids_=

# test_bg_pid PID...: a background process of the running test; killed (SIGKILL) when the test
# ends, and at the latest when the script exits, whatever happens. Start holders with `exec` as
# the last command (`(cd DIR && exec sleep 100) &`) so that PID is the process that holds DIR.
test_bg_pid() {
	local p
	for p in "$@"; do
		case $p in ''|*[!0-9]*) BUG "test_bg_pid: not a pid: '$p'" ;; esac
		test_bg_pids_="$test_bg_pids_ $p"
	done
}

# test_kill_pid_ PID: SIGKILL PID and wait (up to ~5 s) until it is gone
test_kill_pid_() {
	local p=$1 i
	kill -KILL "$p" 2>/dev/null || return 0
	wait "$p" 2>/dev/null
	for i in $(seq 1 50); do
		[ -d "/proc/$p" ] || return 0
		# a zombie that is not our child: gone as far as mounts are concerned
		case $(awk '/^State:/ { print $2 }' "/proc/$p/status" 2>/dev/null) in Z|X|'') return 0 ;; esac
		sleep 0.1
	done
	echo "# warning: background process $p did not die" >&8
}

test_kill_bg_() {
	local p
	for p in $test_bg_pids_; do
		test_kill_pid_ "$p"
	done
	test_bg_pids_=
}

# test_mounts_below_ DIR: the mount points at or below DIR (a physical path), deepest first,
# NUL-terminated (mountinfo's octal escapes decoded)
test_mounts_below_() {
	awk -v top="$1" 'BEGIN { ORS = "\0" }
	function unesc(s,   r, i, c) {
		r = ""
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			if (c == "\\" && substr(s, i + 1, 3) ~ /^[0-7][0-7][0-7]$/) {
				c = sprintf("%c", (substr(s, i + 1, 1) * 64) + (substr(s, i + 2, 1) * 8) + substr(s, i + 3, 1))
				i += 3
			}
			r = r c
		}
		return r
	}
	{
		p = unesc($5)
		if (p == top || index(p, top "/") == 1)
			print gsub("/", "/", p) "\t" p
	}' /proc/self/mountinfo | sort -z -s -rn | cut -z -f2-
}

# test_umount_below_ DIR: unmount everything at or below DIR; fails (and says what is left) if
# something stays mounted
test_umount_below_() {
	local top m pass left
	top=$(cd "$1" 2>/dev/null && pwd -P) || return 0
	for pass in 1 2 3 4; do
		left=
		while IFS= read -r -d "" m; do
			left=t
			if [ "$pass" -le 2 ]; then
				umount "$m" 2>/dev/null
			else
				umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
			fi
		done < <(test_mounts_below_ "$top")
		[ -z "$left" ] && return 0
	done
	left=$(test_mounts_below_ "$top" | tr '\0' ' ')
	[ -z "$left" ] && return 0
	echo "# still mounted below $top: $left" >&8
	return 1
}

# test_atexit CMD: run CMD once when the script ends (passed, failed, bailed out or interrupted),
# before the harness kills the background processes and unmounts what is below the trash
# directory: stop the containers and services a script started. The latest registered runs first;
# output goes to .harness/atexit.log; a failing CMD does not stop the others.
test_atexit_cmds_=
test_atexit() {
	test_atexit_cmds_="{ $*
} >>\"\$TEST_HARNESS_DIR/atexit.log\" 2>&1 </dev/null
$test_atexit_cmds_"
}

test_run_atexit_() {
	local cmds=$test_atexit_cmds_
	test_atexit_cmds_=
	[ -n "$cmds" ] && eval "$cmds"
	return 0
}

# test_release_trash_: run the test_atexit commands, kill the registered background processes,
# unmount everything below the trash directory; fails if a mount remains
test_release_trash_() {
	test_run_atexit_
	test_kill_bg_
	test_umount_below_ "$TRASH_DIRECTORY"
}

test_remove_trash_() {
	cd / || return 1
	if ! test_release_trash_; then
		echo "# mounts remain: trash directory kept: $TRASH_DIRECTORY" >&6
		return 1
	fi
	rm -rf --one-file-system "$TRASH_DIRECTORY"
}

test_at_exit_() {
	local rc=$?
	test_release_trash_ || { [ "$rc" = 0 ] && rc=1; }
	if [ -z "$test_done_called_" ]; then
		echo "Bail out! $TEST_NAME exited before test_done (status $rc; a test body may have called exit)" >&6
		echo "# trash directory kept: $TRASH_DIRECTORY" >&6
		[ "$rc" = 0 ] && rc=1
	fi
	exit "$rc"
}
trap test_at_exit_ EXIT
trap 'echo "# interrupted; trash directory kept: $TRASH_DIRECTORY" >&6; test_done_called_=t; exit 130' INT TERM

BUG() {
	echo "Bail out! BUG in $TEST_NAME: $*" >&6
	test_done_called_=t
	echo "# trash directory kept: $TRASH_DIRECTORY" >&6
	exit 1
}

say_() { echo "$*" >&7; }

# --- prerequisites -------------------------------------------------------------------------

test_set_prereq() { test_prereqs_ok_="$test_prereqs_ok_$1 "; }

# test_lazy_prereq NAME SCRIPT: SCRIPT runs in a subshell, in a scratch dir, on first use.
test_lazy_prereq() { test_lazy_prereq_[$1]=$2; }

test_have_prereq() {
	local p
	for p in ${1//,/ }; do
		case $test_prereqs_ok_ in *" $p "*) continue ;; esac
		case $test_prereqs_no_ in *" $p "*) return 1 ;; esac
		if [ -n "${test_lazy_prereq_[$p]+set}" ]; then
			local d="$TEST_HARNESS_DIR/prereq-$p"
			mkdir -p "$d"
			if (cd "$d" && eval "${test_lazy_prereq_[$p]}") >/dev/null 2>&1; then
				test_set_prereq "$p"
				continue
			fi
		fi
		test_prereqs_no_="$test_prereqs_no_$p "
		return 1
	done
	return 0
}

test_lazy_prereq ROOT '[ "$(id -u)" = 0 ]'
test_lazy_prereq XATTR 'command -v setfattr && command -v getfattr && : >f && setfattr -n user.t -v 1 f'
test_lazy_prereq PYTHON 'command -v python3'
test_lazy_prereq TMPFS_MOUNT '
	mkdir m && mount -t tmpfs -o size=1m ovsnap-test m && umount m
'

# --- running tests -------------------------------------------------------------------------

test_eval_inner_() {
	set -x
	eval "$1"
}

test_when_finished() {
	test_cleanup_="{ $*
} && $test_cleanup_"
}

test_run_() {
	local title=$1 body=$2 log="$TEST_HARNESS_DIR/log.$test_count" status lint
	: >"$log"
	cd "$TRASH_DIRECTORY" || BUG "cannot cd to $TRASH_DIRECTORY"
	OVSNAP_ROOT=$TEST_STORE
	export OVSNAP_ROOT

	# git's &&-chain lint: with a complete top-level chain nothing after `(exit 117)` runs.
	lint=$( (eval "(exit 117) && $body
(exit \$?)") </dev/null >/dev/null 2>&1; echo $?)
	[ "$lint" = 117 ] || BUG "broken &&-chain in test '$title':
$body"
	cd "$TRASH_DIRECTORY" || BUG "cannot cd to $TRASH_DIRECTORY"

	test_cleanup_=:
	exec 5>>"$log" 7>>"$log"
	{
		test_eval_inner_ "$body"
		status=$?
		{ set +x; } 2>/dev/null
		if [ "$test_cleanup_" != : ]; then
			cd "$TRASH_DIRECTORY" || BUG "cannot cd to $TRASH_DIRECTORY"
			echo "# cleanup"
			test_eval_inner_ "$test_cleanup_" || { [ "$status" = 0 ] && status=1; }
			{ set +x; } 2>/dev/null
		fi
		test_kill_bg_
	} >>"$log" 2>&1 </dev/null
	exec 5>/dev/null 7>&8

	if [ "$status" = 0 ]; then
		test_success=$((test_success + 1))
		echo "ok $test_count - $title"
		[ -n "$test_verbose_" ] && sed 's/^/#	/' "$log"
	else
		test_failure=$((test_failure + 1))
		echo "not ok $test_count - $title"
		echo "#	(exit status $status; '+' lines are the shell trace)"
		sed 's/^/#	/' "$log"
		if [ -n "$test_immediate_" ]; then
			test_done
		fi
	fi
	cd "$TRASH_DIRECTORY" || BUG "cannot cd to $TRASH_DIRECTORY"
}

# test_expect_success [PREREQ] TITLE BODY
test_expect_success() {
	local prereq=
	if [ $# = 3 ]; then prereq=$1; shift; fi
	[ $# = 2 ] || BUG "test_expect_success needs 2 or 3 arguments, got $#"
	test_count=$((test_count + 1))
	if [ -n "$prereq" ] && ! test_have_prereq "$prereq"; then
		test_skipped=$((test_skipped + 1))
		echo "ok $test_count # skip $1 (missing $prereq)"
		return 0
	fi
	test_run_ "$1" "$2"
}

test_done() {
	test_done_called_=t
	echo "1..$test_count"
	if [ "$test_failure" = 0 ]; then
		if [ "$test_skipped" = 0 ]; then
			echo "# passed all $test_success test(s)"
		else
			echo "# passed all $test_success test(s), skipped $test_skipped"
		fi
		if [ -z "$test_debug_" ]; then
			test_remove_trash_
		else
			echo "# trash directory kept: $TRASH_DIRECTORY"
		fi
		exit 0
	fi
	echo "# failed $test_failure among $test_count test(s)"
	echo "# trash directory kept: $TRASH_DIRECTORY"
	exit 1
}

# --- helpers for test bodies ---------------------------------------------------------------

# describe how a command ended: "exit N" or "killed by signal N" or a sanitizer report
test_describe_exit_() {
	local code=$1
	if [ "$code" -gt 128 ] && [ "$code" -le 192 ]; then
		echo "killed by signal $((code - 128))"
	elif [ "$code" = "$test_sanitizer_code_" ]; then
		echo "exit $code (a sanitizer report, see the output above)"
	else
		echo "exit $code"
	fi
}

test_bad_exit_() {
	local code=$1
	[ "$code" -gt 128 ] || [ "$code" = 126 ] || [ "$code" = 127 ] || [ "$code" = "$test_sanitizer_code_" ]
}

# test_must_fail CMD...: CMD must exit non-zero, but not by a signal, a sanitizer report or 'not found'
test_must_fail() {
	local -; set +x
	"$@"
	local code=$?
	if [ "$code" = 0 ]; then
		echo "test_must_fail: command succeeded: $*" >&7
		return 1
	fi
	if test_bad_exit_ "$code"; then
		echo "test_must_fail: $(test_describe_exit_ "$code"): $*" >&7
		return 1
	fi
	return 0
}

# test_expect_code N CMD...: CMD must exit with status N
# killed CMD...: CMD must die by SIGKILL (an OVSNAP_FAULT crash point)
killed() {
	"$@"
	local code=$?
	[ "$code" = 137 ] && return 0
	echo "expected death by SIGKILL (137), got $code: $*" >&7
	return 1
}

test_expect_code() {
	local -; set +x
	local want=$1
	shift
	"$@"
	local code=$?
	[ "$code" = "$want" ] && return 0
	echo "test_expect_code: want exit $want, got $(test_describe_exit_ "$code"): $*" >&7
	return 1
}

test_cmp() { local -; set +x; diff -u -- "$1" "$2" >&7; }
test_cmp_bin() { local -; set +x; cmp -- "$1" "$2" >&7; }

test_must_be_empty() {
	local -; set +x
	if [ -s "$1" ]; then
		echo "'$1' is not empty, it contains:" >&7
		cat -- "$1" >&7
		return 1
	fi
	[ -e "$1" ] || { echo "'$1' does not exist" >&7; return 1; }
}

# test_line_count OP N FILE
test_line_count() {
	local -; set +x
	local n
	n=$(wc -l <"$3") || return 1
	if ! [ "$n" "$1" "$2" ]; then
		echo "test_line_count: line count of '$3' is $n, not $1 $2; it contains:" >&7
		cat -- "$3" >&7
		return 1
	fi
}

test_path_is_file() { [ -f "$1" ] || { echo "'$1' is not a file" >&7; return 1; }; }
test_path_is_dir() { [ -d "$1" ] || { echo "'$1' is not a directory" >&7; return 1; }; }
test_path_is_missing() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		echo "'$1' exists but should not" >&7
		ls -ld -- "$1" >&7
		return 1
	fi
}

# the "ovsnap: ..." message on stderr must mention every given string (case-insensitive)
test_stderr_mentions() {
	local -; set +x
	local f=$1 s
	shift
	for s in "$@"; do
		grep -qiF -- "$s" "$f" || { echo "'$f' does not mention '$s'; it contains:" >&7; cat -- "$f" >&7; return 1; }
	done
}

# is_snapshot_id STRING: 32 lower-case hex digits
is_snapshot_id() {
	local -; set +x
	[[ $1 =~ ^[0-9a-f]{32}$ ]] || { echo "not a snapshot id: '$1'" >&7; return 1; }
}

# json_valid FILE: FILE holds exactly one JSON document
json_valid() {
	local -; set +x
	python3 -m json.tool -- "$1" >/dev/null || { echo "'$1' is not valid JSON; it contains:" >&7; cat -- "$1" >&7; return 1; }
}

# json EXPR <FILE: print EXPR evaluated with d = the document (strings raw, the rest as JSON)
json() {
	local -; set +x
	python3 -c '
import json, sys
d = json.load(sys.stdin)
r = eval(sys.argv[1])
if isinstance(r, str):
    print(r)
else:
    print(json.dumps(r, sort_keys=True))
' "$1"
}

# json_assert EXPR <FILE: succeed if EXPR (with d = the document) is true; else show the document
json_assert() {
	local -; set +x
	python3 -c '
import json, sys
raw = sys.stdin.read()
try:
    d = json.loads(raw)
except ValueError as e:
    sys.stderr.write("not valid JSON (%s):\n%s\n" % (e, raw)); sys.exit(1)
try:
    ok = eval(sys.argv[1])
except Exception as e:
    ok = False; sys.stderr.write("%s: %r\n" % (type(e).__name__, e))
if not ok:
    sys.stderr.write("json_assert failed: %s\non: %s\n" % (sys.argv[1], json.dumps(d, indent=1)[:4000]))
    sys.exit(1)
' "$1" 2>&7
}

# history_length VOLUME: the number of snapshots in VOLUME's history
history_length() {
	local -; set +x
	ovsnap --json volume history "$1" | json 'len(d)'
}

# head_of VOLUME: the id of VOLUME's newest snapshot (from the history)
head_of() {
	local -; set +x
	ovsnap --json volume history "$1" | json 'd[0]["id"]'
}

# store_bytes DIR: apparent bytes of all regular files under DIR
store_bytes() {
	local -; set +x
	find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'
}

# use_store NAME: point this test at its own store (the harness resets OVSNAP_ROOT after each test)
use_store() {
	OVSNAP_ROOT=$TRASH_DIRECTORY/$1
	export OVSNAP_ROOT
}

# content_bytes: apparent bytes of the store's content: big objects (loose files under objects/)
# and packs (trees and small objects, under packs/)
content_bytes() {
	local -; set +x
	echo $(($(store_bytes "$OVSNAP_ROOT/objects") + $(store_bytes "$OVSNAP_ROOT/packs")))
}

# random_file PATH BYTES: a file of incompressible bytes
random_file() {
	local -; set +x
	head -c "$2" /dev/urandom >"$1"
}

# flip_byte FILE OFFSET: invert one byte in place
flip_byte() {
	local -; set +x
	python3 -c '
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1)
    if not b: sys.exit("offset %d is past the end of %s" % (off, p))
    f.seek(off); f.write(bytes([b[0] ^ 0xff]))
' "$1" "$2"
}

# newest_file DIR: the most recently modified regular file under DIR
newest_file() {
	local -; set +x
	find "$1" -type f -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-
}

# tree_manifest [--file-mtimes-only] DIR: one line per entry of DIR (itself included) with its
# type and mode, owner, size, nanosecond mtime, link target or device numbers, link count,
# content hash and every xattr; then the hard-link groups. Names are printed with repr(), so a
# newline or a byte that is not UTF-8 stays on one line. Two trees are equal when their manifests
# are. --file-mtimes-only leaves out the mtimes of directories and symlinks.
tree_manifest() {
	local -; set +x
	python3 - "$@" <<-\EOF
	import hashlib, os, stat, sys
	args = sys.argv[1:]
	all_mtimes = True
	if args and args[0] == "--file-mtimes-only":
	    all_mtimes = False
	    args = args[1:]
	top = os.fsencode(args[0])
	lines, inodes = [], {}
	def walk(rel):
	    p = os.path.join(top, rel) if rel else top
	    st = os.lstat(p)
	    m = st.st_mode
	    f = [repr(rel or b"."), "%07o" % m, "%d:%d" % (st.st_uid, st.st_gid)]
	    if all_mtimes or not (stat.S_ISDIR(m) or stat.S_ISLNK(m)):
	        f.append("mtime=%d" % st.st_mtime_ns)
	    if stat.S_ISREG(m):
	        h = hashlib.sha256()
	        with open(p, "rb") as fh:
	            for chunk in iter(lambda: fh.read(1 << 20), b""):
	                h.update(chunk)
	        f += ["size=%d" % st.st_size, "sha256=" + h.hexdigest()[:16]]
	        inodes.setdefault(st.st_ino, []).append(rel)
	    elif stat.S_ISLNK(m):
	        f.append("-> " + repr(os.readlink(p)))
	    elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
	        f.append("dev=%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
	    if not stat.S_ISDIR(m):
	        f.append("nlink=%d" % st.st_nlink)
	    for x in sorted(os.listxattr(p, follow_symlinks=False)):
	        v = os.getxattr(p, x, follow_symlinks=False)
	        v = v.hex() if len(v) <= 32 else "%dbytes:%s" % (len(v), hashlib.sha256(v).hexdigest()[:16])
	        f.append("xattr:%s=%s" % (x, v))
	    lines.append(" ".join(f))
	    if stat.S_ISDIR(m):
	        for e in sorted(os.listdir(p)):
	            walk(os.path.join(rel, e) if rel else e)
	walk(b"")
	for l in lines:
	    print(l)
	for g in sorted(sorted(v) for v in inodes.values() if len(v) > 1):
	    print("hardlinks: " + " = ".join(repr(x) for x in g))
	EOF
}

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds; fail after SECONDS
wait_for() {
	local -; set +x
	local secs=$1 end
	shift
	end=$(($(date +%s%N) + secs * 1000000000))
	while :; do
		"$@" && return 0
		[ "$(date +%s%N)" -ge "$end" ] && break
		sleep 0.1
	done
	echo "wait_for: still failing after ${secs}s: $*" >&7
	return 1
}
