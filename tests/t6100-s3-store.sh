#!/bin/bash
# The S3 store (snapshotter/store/store-s3.c) against a real S3 endpoint: scripts/s3-server
# (Swift with s3api) on loopback. Two node roots, A and B, share one bucket: each keeps its own
# caches and attachments, the store is only the bucket. Skipped, saying why, without Swift.

test_description='the S3 store: volumes in a bucket shared by two nodes'
. "$(dirname "$0")/lib.sh"

. "$TEST_DIRECTORY/s3-lib.sh"

# s3_curl METHOD KEY [curl args]: a request to the bucket through Swift's own API (the
# access key holds a colon, which curl --user cannot take), for planting damage
s3_curl() {
	local m=$1 k=$2 token; shift 2
	token=$(curl -sf -D - -o /dev/null -H "X-Auth-User: $AWS_ACCESS_KEY_ID" \
		-H "X-Auth-Key: $AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL/auth/v1.0" |
		tr -d "\r" | sed -n "s/^X-Auth-Token: //Ip") &&
	curl -sf -X "$m" -H "X-Auth-Token: $token" "$@" "$AWS_ENDPOINT_URL/v1/AUTH_test/ovsnap/$k"
}

# first_key PREFIX: the first key of the bucket below PREFIX
first_key() {
	s3_curl GET "?prefix=$1" | head -1
}

# flip KEY [FROM_END]: rewrite KEY with one byte changed, near its middle or FROM_END bytes
# before its end (a pack's index, just before its 16-byte tail)
flip() {
	s3_curl GET "$1" -o obj &&
	python3 -c "import sys; b = bytearray(open(\"obj\", \"rb\").read()); e = int(sys.argv[1]); i = len(b) - e if e else len(b) // 2; b[i] ^= 0x40; open(\"obj\", \"wb\").write(b)" "${2:-0}" &&
	s3_curl PUT "$1" --data-binary @obj -H "Content-Type: application/octet-stream" >/dev/null
}

test_expect_success SWIFT 'setup: the server runs, two node roots' '
	s3_setup &&
	mkdir node-a node-b
'
eval "$(cat "$TRASH_DIRECTORY/env" 2>/dev/null)"
# a stopped server is given up on after a few seconds, not the default minute
export OVSNAP_S3_TIMEOUT=4
# nothing here reads or writes the local store: OVSNAP_ROOT points at a node only through --root
unset OVSNAP_ROOT

test_expect_success SWIFT 'volume create, put, get, ls and history on S3' '
	on_node a volume create v &&
	mkdir -p src/dir &&
	echo one >src/dir/one &&
	echo two >src/two &&
	on_node a put v src/ / >/dev/null &&
	on_node a ls v / >ls &&
	grep -x "dir/" ls && grep -x two ls &&
	on_node a get v /dir/one - >got && echo one >want && cmp got want &&
	on_node a volume history v >hist &&
	test_line_count = 3 hist
'

test_expect_success SWIFT 'a node that never saw the store reads the same volume' '
	on_node b volume list >list &&
	grep "^v " list &&
	on_node b get v /two - >got && echo two >want && cmp got want &&
	test -n "$(ls node-b/cache/s3-parts/packs)" &&
	test_path_is_missing node-b/cache/s3/packs
'

# down FILE: the bytes the S3 client received, summed over the processes that wrote FILE
down() { sed -n "s/.* down=\([0-9]*\) .*/\1/p" "$1" | awk '{ n += $1 } END { print n + 0 }'; }

test_expect_success SWIFT 'a fresh node attaching a snapshot that needs a few objects of a big pack fetches those, not the pack' '
	mkdir -p many &&
	for i in $(seq 100 399); do head -c 32768 /dev/urandom >many/f$i || return 1; done &&
	on_node a volume create big &&
	on_node a put big many/ / >/dev/null &&
	on_node a volume create few &&
	mkdir few && cp many/f120 many/f250 many/f399 few/ &&
	on_node a put few few/ / >/dev/null &&
	mkdir node-f F &&
	OVSNAP_S3_STATS=$PWD/attach.stats on_node f mount few "$PWD/F" >/dev/null &&
	test_when_finished "ovsnap --root \"$TRASH_DIRECTORY/node-f\" umount \"$TRASH_DIRECTORY/F\" >/dev/null 2>&1" &&
	for f in f120 f250 f399; do test_cmp few/$f F/$f || return 1; done &&
	cat attach.stats &&
	test "$(down attach.stats)" -lt $((300 * 32768 / 10)) &&
	test "$(down attach.stats)" -gt $((3 * 32768)) &&
	test_path_is_missing node-f/cache/s3/packs &&
	OVSNAP_S3_STATS=$PWD/again.stats on_node f get few / again >/dev/null &&
	for f in f120 f250 f399; do test_cmp few/$f again/$f || return 1; done &&
	cat again.stats &&
	test "$(down again.stats)" -lt 32768
'

# requests FILE: the requests the S3 client made, summed over the processes that wrote FILE
requests() { sed -n "s/.*requests=\([0-9]*\) .*/\1/p" "$1" | awk '{ n += $1 } END { print n + 0 }'; }

test_expect_success SWIFT 'a fresh node attaching 600 files in 30 directories makes a few batched requests, not one per file' '
	mkdir -p wide &&
	for d in $(seq 1 30); do
		mkdir wide/d$d/ && mkdir wide/d$d/sub || return 1
		for f in $(seq 1 10); do
			head -c $((f * 700)) /dev/urandom >wide/d$d/f$f &&
			head -c $((f * 300)) /dev/urandom >wide/d$d/sub/g$f || return 1
		done
	done &&
	on_node a volume create wide &&
	on_node a put wide wide/ / >/dev/null &&
	mkdir node-w W &&
	OVSNAP_S3_STATS=$PWD/wide.stats on_node w mount wide "$PWD/W" >/dev/null &&
	test_when_finished "ovsnap --root \"$TRASH_DIRECTORY/node-w\" umount \"$TRASH_DIRECTORY/W\" >/dev/null 2>&1" &&
	diff -r wide W &&
	cat wide.stats &&
	test "$(requests wide.stats)" -lt 60
'

test_expect_success SWIFT 'Modal across nodes: a commit on A is seen on B only after B reloads' '
	mkdir A B &&
	on_node a mount v "$PWD/A" >/dev/null &&
	test_atexit "ovsnap --root \"$TRASH_DIRECTORY/node-a\" --store \"$OVSNAP_STORE\" umount \"$TRASH_DIRECTORY/A\" >/dev/null 2>&1" &&
	on_node b mount v "$PWD/B" >/dev/null &&
	test_atexit "ovsnap --root \"$TRASH_DIRECTORY/node-b\" --store \"$OVSNAP_STORE\" umount \"$TRASH_DIRECTORY/B\" >/dev/null 2>&1" &&
	echo "from A" >A/new &&
	on_node a commit "$PWD/A" >/dev/null &&
	test_path_is_missing B/new &&
	on_node b reload "$PWD/B" >/dev/null &&
	echo "from A" >want && cmp want B/new
'

test_expect_success SWIFT 'two nodes committing different files at once both keep them' '
	for i in 1 2 3 4 5
	do
		echo "a$i" >A/a$i && echo "b$i" >B/b$i &&
		{ on_node a commit "$PWD/A" >/dev/null & pa=$!; } &&
		on_node b commit "$PWD/B" >/dev/null &&
		wait $pa || return 1
	done &&
	on_node a ls v / >ls &&
	for i in 1 2 3 4 5
	do
		grep -x a$i ls && grep -x b$i ls || return 1
	done &&
	on_node b reload "$PWD/B" >/dev/null &&
	echo a5 >want && cmp want B/a5
'

test_expect_success SWIFT 'the server stopped: commit fails naming the endpoint, keeps the upper; the next one captures it' '
	echo "while down" >A/down &&
	s3_stop &&
	test_must_fail on_node a commit "$PWD/A" 2>err &&
	cat err &&
	grep -F "${AWS_ENDPOINT_URL#http://}" err &&
	! grep -F "$AWS_SECRET_ACCESS_KEY" err &&
	echo "while down" >want && cmp want A/down &&
	s3_start &&
	on_node a commit "$PWD/A" >/dev/null &&
	on_node b get v /down - >got && cmp want got
'

test_expect_success SWIFT 'a flipped byte in a snapshot record in the bucket is refused with exit 6 naming the key' '
	on_node a volume create w &&
	echo w >wf && on_node a put w wf /wf >/dev/null &&
	key=$(first_key snapshots/) && test -n "$key" &&
	s3_curl GET "$key" -o saved &&
	flip "$key" &&
	mkdir node-c &&
	test_expect_code 6 ovsnap --root "$PWD/node-c" --store "$OVSNAP_STORE" fsck >out 2>err &&
	cat out err &&
	grep -F "${key#snapshots/}" out err | grep -q . &&
	s3_curl PUT "$key" --data-binary @saved >/dev/null
'

test_expect_success SWIFT 'a flipped byte in a pack is refused with exit 6 naming the pack' '
	key=$(first_key packs/) && test -n "$key" &&
	s3_curl GET "$key" -o saved &&
	test_when_finished "s3_curl PUT $key --data-binary @saved >/dev/null" &&
	flip "$key" 20 &&
	mkdir node-d &&
	test_expect_code 6 ovsnap --root "$PWD/node-d" --store "$OVSNAP_STORE" fsck >out 2>err &&
	cat out err &&
	grep -F "$key" out err | grep -q . &&
	s3_curl PUT "$key" --data-binary @saved >/dev/null
'

test_expect_success SWIFT 'a flipped byte in an object a fresh node fetches by range: exit 6 naming the pack and the object; other volumes work' '
	key=$(s3_curl GET "?prefix=packs/&format=json" | python3 -c "import json, sys; print(max(json.load(sys.stdin), key=lambda o: o[\"bytes\"])[\"name\"])") &&
	test -n "$key" &&
	s3_curl GET "$key" -o saved &&
	test_when_finished "s3_curl PUT $key --data-binary @saved >/dev/null" &&
	flip "$key" &&
	mkdir node-g &&
	test_expect_code 6 ovsnap --root "$PWD/node-g" --store "$OVSNAP_STORE" get big / big.out 2>err &&
	cat err &&
	grep -F "$key" err | grep "object [0-9a-f]* is corrupt" &&
	ovsnap --root "$PWD/node-g" --store "$OVSNAP_STORE" get v /two - >got && echo two >want && cmp got want
'

test_expect_success SWIFT 'a big file on an S3 store: the node cache image holds its bytes (no loose objects on the node)' '
	on_node a volume create bigfile &&
	head -c 3000000 /dev/urandom >big.bin &&
	on_node a put bigfile big.bin >/dev/null &&
	mkdir Cbig &&
	on_node b mount bigfile "$PWD/Cbig" >/dev/null &&
	cmp big.bin Cbig/big.bin &&
	grep -x "meta 0" node-b/cache/layers/*/info &&
	test "$(du -bc node-b/cache/layers/*/image | tail -n 1 | cut -f1)" -gt 3000000 &&
	on_node b umount "$PWD/Cbig" >/dev/null
'

test_expect_success SWIFT 'fsck is clean on both nodes' '
	on_node a fsck &&
	on_node b fsck
'

test_expect_success SWIFT 'detach on both nodes' '
	on_node a umount "$PWD/A" >/dev/null &&
	on_node b umount "$PWD/B" >/dev/null
'

test_done
