#!/bin/bash
# The S3 store when the endpoint goes away in the middle of an operation: the real server
# (scripts/s3-server) is stopped at a chosen step inside put, commit, reload, `ovsnap mount` and
# the hook on a node that never saw the volume (pause points, lib/fault.h: OVSNAP_PAUSE with
# OVSNAP_PAUSE_FILE), then started again. Back within the retry time (OVSNAP_S3_TIMEOUT), the
# operation goes through; gone for longer, it fails naming the operation and the endpoint, the
# volume's head is unchanged, the upper is kept and the next commit captures it; fsck is clean on
# both nodes. A hung server (SIGSTOP) ends a commit within the time bound too.

test_description='the S3 store: the server stopped and restarted in the middle of operations'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"

. "$TEST_DIRECTORY/s3-lib.sh"

# let the released operations meet the stopped server before it comes back
s3_bounce() { sleep 1 && s3_start; }

# retried NAME: the paused command NAME met the stopped server (some request was retried)
retried() { sed -n "s/.* retries=\([0-9]*\) .*/\1/p" "$TRASH_DIRECTORY/$1.stats" | awk '{ n += $1 } END { exit !(n > 0) }'; }

history_length_on() { on_node "$1" --json volume history v | json 'len(d)'; }

# a clear error: the operation and the endpoint named, no secret
clear_error() {
	cat "$2" &&
	grep -F "$1" "$2" &&
	grep -F "${AWS_ENDPOINT_URL#http://}" "$2" &&
	! grep -F "$AWS_SECRET_ACCESS_KEY" "$2"
}

test_expect_success SWIFT 'setup: the server, two nodes with the volume mounted' '
	s3_setup &&
	mkdir node-a node-b A B &&
	on_node a volume create v &&
	mkdir -p src/d && for i in 1 2 3; do echo "file $i" >src/d/f$i || return 1; done &&
	on_node a put v src/ / >/dev/null &&
	on_node a mount v "$PWD/A" >/dev/null &&
	test_atexit "ovsnap --root \"$TRASH_DIRECTORY/node-a\" umount \"$TRASH_DIRECTORY/A\"" &&
	on_node b mount v "$PWD/B" >/dev/null &&
	test_atexit "ovsnap --root \"$TRASH_DIRECTORY/node-b\" umount \"$TRASH_DIRECTORY/B\""
'
eval "$(cat "$TRASH_DIRECTORY/env" 2>/dev/null)"
unset OVSNAP_ROOT
# long enough to outlast a restart of the server on a busy machine
export OVSNAP_S3_TIMEOUT=90

test_expect_success SWIFT 'put and commit: the server stopped after the pack, or after the snapshot record, and back: both go through' '
	echo put >p &&
	paused put pack-published on_node b put v p /put &&
	echo committed >A/c1 &&
	paused commit record-published on_node a commit "$PWD/A" &&
	s3_stop && go put && go commit && s3_bounce &&
	test "$(status_of put)" = 0 &&
	test "$(status_of commit)" = 0 &&
	cat put.err commit.err put.stats commit.stats &&
	retried put && retried commit &&
	on_node b get v /put - >got && test_cmp p got &&
	on_node b get v /c1 - >got && echo committed >want && test_cmp want got &&
	on_node a get v /put - >got && test_cmp p got
'

test_expect_success SWIFT 'reload, mount and the hook on fresh nodes: the server stopped after the head is read, and back: all go through' '
	echo newer >A/c2 && on_node a commit "$PWD/A" >/dev/null &&
	paused reload head-read on_node b reload "$PWD/B" &&
	mkdir node-c C &&
	paused mount head-read on_node c mount v "$PWD/C" &&
	test_atexit "ovsnap --root \"$TRASH_DIRECTORY/node-c\" umount \"$TRASH_DIRECTORY/C\"" &&
	if test_have_prereq "$RT_PREREQ"
	then
		container_setup &&
		mkdir node-d &&
		OVSNAP_ROOT=$TRASH_DIRECTORY/node-d OVSNAP_PAUSE=head-read \
		OVSNAP_PAUSE_FILE=$TRASH_DIRECTORY/hook.paused \
			container_bundle hooked v:/data org.ovsnap.commit-interval=0 -- cat /data/c2 &&
		{ rt_run hooked >hooked.out 2>hooked.err; echo $? >hook.rc; } &
		wait_for 60 test -e hook.paused
	fi &&
	s3_stop && go reload && go mount && go hook && s3_bounce &&
	test "$(status_of reload)" = 0 &&
	test "$(status_of mount)" = 0 &&
	retried reload && retried mount &&
	echo newer >want &&
	test_cmp want B/c2 &&
	test_cmp want C/c2 && test_cmp src/d/f1 C/d/f1 &&
	if test_have_prereq "$RT_PREREQ"
	then
		test "$(status_of hook)" = 0 &&
		test_cmp want hooked.out
	fi
'

test_expect_success SWIFT 'commit: the server stopped after the pack and not back in time: a clear error, the head unchanged, the upper kept' '
	n=$(history_length_on b) &&
	echo lost? >A/c3 &&
	paused commit pack-published env OVSNAP_S3_TIMEOUT=3 \
		ovsnap --root "$TRASH_DIRECTORY/node-a" --store "$OVSNAP_STORE" commit "$PWD/A" &&
	s3_stop && go commit &&
	test "$(status_of commit)" = 1 &&
	clear_error "commit $TRASH_DIRECTORY/A" commit.err &&
	echo lost? >want && test_cmp want A/c3
'

test_expect_success SWIFT 'while it is down: reload and mount on a fresh node fail clearly and change nothing' '
	OVSNAP_S3_TIMEOUT=2 test_must_fail on_node b reload "$PWD/B" 2>err &&
	clear_error "reload $TRASH_DIRECTORY/B" err &&
	echo newer >want && test_cmp want B/c2 &&
	echo still-writable >B/w && test_cmp B/w B/w &&
	mkdir node-e E &&
	OVSNAP_S3_TIMEOUT=2 test_must_fail on_node e mount v "$PWD/E" 2>err &&
	clear_error mount err &&
	! mountpoint -q E &&
	ovsnap --root "$TRASH_DIRECTORY/node-e" --json status >st.json &&
	json_assert "d == []" <st.json
'

test_expect_success SWIFT 'back up: nothing half-published, fsck clean on both nodes, the next commit captures the kept upper' '
	s3_start &&
	test "$(history_length_on b)" = "$n" &&
	on_node a fsck && on_node b fsck &&
	on_node a commit "$PWD/A" >/dev/null &&
	on_node b reload "$PWD/B" >/dev/null &&
	echo lost? >want && test_cmp want B/c3 &&
	test_cmp B/w B/w &&
	on_node b commit "$PWD/B" >/dev/null &&
	on_node a get v /w - >got && echo still-writable >want && test_cmp want got
'

test_expect_success SWIFT 'a hung server (SIGSTOP): the commit ends within the time bound with a clear error; after SIGCONT the next one captures it' '
	pgid=$(cat s3/run/proxy.pid) &&
	echo hung >A/h &&
	kill -STOP -- -"$pgid" &&
	test_when_finished "kill -CONT -- -$pgid" &&
	OVSNAP_S3_TIMEOUT=3 OVSNAP_S3_STALL=1 test_must_fail on_node a commit "$PWD/A" 2>err &&
	kill -CONT -- -"$pgid" &&
	clear_error "commit $TRASH_DIRECTORY/A" err &&
	grep -i "timed out\|timeout" err &&
	on_node a commit "$PWD/A" >/dev/null &&
	on_node b get v /h - >got && echo hung >want && test_cmp want got
'

test_expect_success SWIFT 'fsck is clean on every node; detach' '
	on_node a fsck && on_node b fsck && on_node c fsck &&
	on_node a umount "$PWD/A" >/dev/null &&
	on_node b umount "$PWD/B" >/dev/null &&
	on_node c umount "$PWD/C" >/dev/null
'

test_done
