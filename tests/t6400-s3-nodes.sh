#!/bin/bash
# Two nodes over one bucket (scripts/s3-server): history, diff and rollback seen from either
# node; gc on one node while the other is in the middle of a commit keeps the other's fresh
# objects (the grace period, by the server's clock), and gc with OVSNAP_S3_GRACE=0 once writes
# have stopped removes the garbage; fsck clean on both. Then the Modal scenario with real runc
# containers and the hook: a container on node A writes and commits through its control
# socket; a running container on node B sees nothing until it reloads, then sees the write.

test_description='the S3 store: two nodes, the maintenance commands, containers on both'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"
. "$TEST_DIRECTORY/s3-lib.sh"

history_on() { on_node "$1" --json volume history v | json "len(d)"; }

# unreferenced_on N: the number of unreferenced objects fsck on node N reports
unreferenced_on() {
	on_node "$1" fsck >fsck.out &&
	sed -n "s/.* \([0-9]*\) unreferenced objects.*/\1/p" fsck.out
}

test_expect_success SWIFT 'setup: the server, two nodes' '
	s3_setup &&
	mkdir node-a node-b
'
eval "$(cat "$TRASH_DIRECTORY/env" 2>/dev/null)"
unset OVSNAP_ROOT
export OVSNAP_S3_TIMEOUT=90

test_expect_success SWIFT 'history, diff and rollback: written on A, read and rolled back on B' '
	on_node a volume create v &&
	echo 1 >f && on_node a put v f /f -m one >/dev/null &&
	echo 2 >f && on_node a put v f /f -m two >/dev/null &&
	echo g >g && on_node a put v g /g -m three >/dev/null &&
	test "$(history_on b)" = 4 &&
	on_node b volume history v | sed -n 2p | grep three &&
	on_node b diff v head~2 head >diff &&
	printf "M f\nA g\n" >want && test_cmp want diff &&
	on_node b rollback v head~2 >/dev/null &&
	on_node a get v /f - >got && echo 1 >want && test_cmp want got &&
	test_must_fail on_node a get v /g - 2>/dev/null &&
	test "$(history_on a)" = 5 &&
	on_node a fsck && on_node b fsck
'

test_expect_success SWIFT 'gc on A while B is in the middle of a commit keeps B'"'"'s fresh objects' '
	mkdir B &&
	on_node b mount v "$PWD/B" >/dev/null &&
	test_atexit "ovsnap --root \"$TRASH_DIRECTORY/node-b\" umount \"$TRASH_DIRECTORY/B\"" &&
	echo fresh >B/fresh &&
	paused b record-published on_node b commit "$PWD/B" &&
	on_node a gc >gc.out &&
	cat gc.out &&
	go b &&
	test "$(status_of b)" = 0 &&
	on_node a get v /fresh - >got && echo fresh >want && test_cmp want got &&
	on_node a fsck && on_node b fsck
'

test_expect_success SWIFT 'gc with OVSNAP_S3_GRACE=0 once writes have stopped removes the garbage' '
	on_node a volume create junk &&
	head -c 100000 /dev/urandom >big && on_node a put junk big /big >/dev/null &&
	on_node a volume delete junk &&
	test "$(unreferenced_on b)" -gt 0 &&
	OVSNAP_S3_GRACE=0 on_node a gc >gc.out &&
	cat gc.out &&
	test "$(unreferenced_on a)" = 0 &&
	test "$(unreferenced_on b)" = 0 &&
	on_node b get v /fresh - >got && echo fresh >want && test_cmp want got &&
	on_node b umount "$PWD/B" >/dev/null
'

test_expect_success SWIFT,RUNC,BUSYBOX,STATIC_CC 'Modal across nodes with runc: A commits in its container; B'"'"'s running container sees it only after it reloads' '
	container_setup &&
	OVSNAP_ROOT=$TRASH_DIRECTORY/node-a container_bundle writer v:/data org.ovsnap.commit-interval=0 -- sleep 1000 &&
	OVSNAP_ROOT=$TRASH_DIRECTORY/node-b container_bundle reader v:/data org.ovsnap.commit-interval=0 -- sleep 1000 &&
	OVSNAP_ROOT=$TRASH_DIRECTORY/node-a rt_start writer &&
	OVSNAP_ROOT=$TRASH_DIRECTORY/node-b rt_start reader &&
	rt_exec reader cat /data/fresh >got && echo fresh >want && test_cmp want got &&
	rt_exec writer sh -c "echo from-a >/data/modal && ovsnap-ctl commit" >reply &&
	read -r word id <reply && test "$word" = ok &&
	test_must_fail rt_exec reader cat /data/modal 2>/dev/null &&
	on_node b get v /modal - >got && echo from-a >want && test_cmp want got &&
	test_must_fail rt_exec reader cat /data/modal 2>/dev/null &&
	rt_exec reader ovsnap-ctl reload v >reply &&
	echo "ok $id" >want && test_cmp want reply &&
	rt_exec reader cat /data/modal >got && echo from-a >want && test_cmp want got &&
	rt_exec reader sh -c "echo from-b >/data/back && ovsnap-ctl commit" >/dev/null &&
	rt_exec writer ovsnap-ctl reload v >/dev/null &&
	rt_exec writer cat /data/back >got && echo from-b >want && test_cmp want got
'

test_expect_success SWIFT,RUNC,BUSYBOX,STATIC_CC 'the containers stop: their agents detach; fsck clean on both nodes' '
	OVSNAP_ROOT=$TRASH_DIRECTORY/node-a rt_stop writer &&
	OVSNAP_ROOT=$TRASH_DIRECTORY/node-b rt_stop reader &&
	ovsnap --root "$TRASH_DIRECTORY/node-a" --json status | json_assert "d == []" &&
	ovsnap --root "$TRASH_DIRECTORY/node-b" --json status | json_assert "d == []" &&
	on_node a fsck && on_node b fsck
'

test_done
