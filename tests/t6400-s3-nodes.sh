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

# consolidate_idle N: no pack roll-up runs on node N (each holds its node-local lock)
consolidate_idle() { flock -n "$TRASH_DIRECTORY/node-$1/locks/consolidate" true; }

test_expect_success SWIFT 'pack roll-ups on both nodes at once: the later one finds its packs merged and stops quietly' '
	on_node a volume create r &&
	OVSNAP_S3_GRACE=0 on_node a gc >/dev/null &&
	test "$(bucket_count packs/)" -lt 15 &&
	i=0 &&
	while [ "$(bucket_count packs/)" -lt 15 ]; do
		i=$((i + 1)) && echo "r$i" >r && on_node a put r r /r$i >/dev/null || return 1
	done &&
	consolidate_idle a &&
	echo b >r &&
	paused rb consolidate-chosen on_node b put r r /b &&
	test "$(status_of rb)" = 0 &&
	echo a >r && on_node a put r r /a >/dev/null &&
	wait_for 120 consolidate_idle a &&
	test "$(bucket_count packs/)" -lt 15 &&
	go rb &&
	wait_for 120 consolidate_idle b &&
	cat rb.err &&
	test_must_be_empty rb.err &&
	for f in $(seq -f r%g 1 $i) a b; do
		on_node b get r /$f - >/dev/null || return 1
	done &&
	on_node a fsck && on_node b fsck
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
	ovsnap --root "$TRASH_DIRECTORY/node-a" --json status | json_assert "[a for a in d if a[\"container\"]] == []" &&
	ovsnap --root "$TRASH_DIRECTORY/node-b" --json status | json_assert "[a for a in d if a[\"container\"]] == []" &&
	on_node a fsck && on_node b fsck
'

# The containerd daemon on S3: snapshotter N serves sdN.sock with its own node root sdN, the
# store in the bucket. snap N ARGS: a gRPC call to it (tests/helpers/grpc-client.py).
SNAPD=${OVSNAP_SNAPSHOTTER:-$(dirname "$OVSNAP")/ovsnap-snapshotter}
test_lazy_prereq H2 '/usr/bin/python3 -c "import h2"'
snap() { local n=$1; shift; /usr/bin/python3 "$TEST_DIRECTORY/helpers/grpc-client.py" "$TRASH_DIRECTORY/sd$n.sock" "$@"; }
snapd_start() {
	{ "$SNAPD" --root "$TRASH_DIRECTORY/sd$1" --store "$OVSNAP_STORE" --address "$TRASH_DIRECTORY/sd$1.sock" \
		>>"$TRASH_DIRECTORY/sd$1.log" 2>&1 & echo $! >"$TRASH_DIRECTORY/sd$1.pid"; } &&
	test_atexit "kill -KILL \$(cat \"$TRASH_DIRECTORY/sd$1.pid\")" &&
	wait_for 30 snap "$1" list
}
# fails_with STATUS CMD...: the call fails with that gRPC status
fails_with() { local want=$1; shift; ! "$@" >status.out 2>&1 && cat status.out && grep -q "^$want: " status.out; }
snapd_gone() { ! kill -0 "$(cat "$TRASH_DIRECTORY/sd$1.pid")" 2>/dev/null; }
opts_of() { python3 -c 'import json, sys; print(",".join(json.load(sys.stdin)[0]["options"]))'; }
source_of() { python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["source"])'; }

test_expect_success SWIFT,H2,ROOT 'containerd on S3: a layer node A'"'"'s daemon committed is not unpacked again by node B'"'"'s' '
	L=containerd.io/snapshot.ref &&
	layer=sha256:$(echo layer | sha256sum | cut -d" " -f1) &&
	snapd_start 1 && snapd_start 2 &&
	snap 1 prepare "ns/1/extract-1 $layer" -l $L=$layer >m.json &&
	src=$(source_of <m.json) &&
	mkdir -p "$src/etc" && echo "from node A" >"$src/etc/layer" &&
	snap 1 commit "ns/2/$layer" "ns/1/extract-1 $layer" -l $L=$layer &&
	fails_with AlreadyExists snap 2 prepare "ns/1/extract-1 $layer" -l $L=$layer &&
	snap 2 list "labels.\"$L\"==$layer" >l &&
	grep "\"kind\": \"committed\"" l &&
	P=$(python3 -c "import json; print(json.load(open(\"l\"))[\"name\"])") &&
	snap 2 prepare "ns/3/run" "$P" >m.json &&
	mkdir mnt &&
	mount -t overlay overlay -o "$(opts_of <m.json)" mnt &&
	test_when_finished "umount mnt" &&
	echo "from node A" >want && test_cmp want mnt/etc/layer
'

test_expect_success SWIFT,H2,ROOT 'the daemons stop on SIGTERM; fsck clean on both nodes' '
	kill -TERM "$(cat sd1.pid)" "$(cat sd2.pid)" &&
	wait_for 10 snapd_gone 1 && wait_for 10 snapd_gone 2 &&
	on_node a fsck && on_node b fsck
'

test_done
