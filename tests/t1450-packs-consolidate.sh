#!/bin/bash
# Every put and commit adds a pack, and every lookup and store open pays for each pack. When 16 small
# packs crowd a store, the writer leaves a detached process that rolls them into one (geometric rule:
# O(log) small packs stay). Nothing may be lost on the way, by the roll-up itself or when it is killed.

test_description='small packs are rolled together in the background, losing nothing'
. "$(dirname "$0")/lib.sh"

npacks() { find "$OVSNAP_ROOT/packs" -name '*.pack' | wc -l; }

# consolidated: the background roll-up is over (its lock is free and fewer than 16 packs remain);
# polls for up to 60 s
consolidated() {
	local i
	for ((i = 0; i < 600; i++)); do
		if [ "$(npacks)" -lt 16 ] && flock -n -x "$OVSNAP_ROOT/locks/consolidate" true; then
			return 0
		fi
		sleep 0.1
	done
	echo "still $(npacks) packs after 60 s" >&2
	return 1
}

# put_many VOLUME N: N puts of one new file each (file-I of 1-9 KiB, random)
put_many() {
	local i
	for ((i = 1; i <= $2; i++)); do
		head -c $((1024 * (i % 9 + 1))) /dev/urandom >"file-$1-$i" &&
		ovsnap put "$1" "file-$1-$i" >/dev/null || return 1
	done
}

# check_all VOLUME N: every file put reads back byte for byte
check_all() {
	local i
	for ((i = 1; i <= $2; i++)); do
		ovsnap get "$1" "file-$1-$i" - >got && cmp "file-$1-$i" got || return 1
	done
}

test_expect_success 'a new volume and 14 puts leave 15 packs (not crowded yet)' '
	ovsnap volume create v &&
	put_many v 14 &&
	test "$(npacks)" -ge 15
'

test_expect_success '45 puts later fewer than 16 packs remain (46 without roll-ups), every file intact' '
	put_many v 30 &&
	consolidated &&
	test "$(npacks)" -lt 16 &&
	check_all v 30 &&
	ovsnap fsck >fsck.out &&
	grep " 0 problems" fsck.out
'

test_expect_success 'history survives: every earlier snapshot still reads back' '
	ovsnap get v file-v-3 - --at head~27 >got &&
	cmp file-v-3 got
'

test_expect_success '24 commits of an attachment: fewer than 16 packs remain, every file intact' '
	ovsnap volume create c &&
	mkdir mnt &&
	ovsnap mount c mnt &&
	test_when_finished "ovsnap umount mnt 2>/dev/null || :" &&
	for i in $(seq 1 24); do
		head -c $((1000 + i)) /dev/urandom >"mnt/c$i" &&
		cp "mnt/c$i" "want-c$i" &&
		ovsnap commit mnt >/dev/null || return 1
	done &&
	consolidated &&
	test "$(npacks)" -lt 16 &&
	ovsnap umount mnt &&
	for i in $(seq 1 24); do
		ovsnap get c "c$i" - >got && cmp "want-c$i" got || return 1
	done &&
	ovsnap fsck >fsck.out &&
	grep " 0 problems" fsck.out
'

test_expect_success 'a roll-up killed after publishing leaves both copies: no loss, fsck clean' '
	export OVSNAP_ROOT=$PWD/store-kill &&
	ovsnap volume create k &&
	OVSNAP_FAULT=consolidate-after-publish put_many k 20 &&
	for i in $(seq 1 100); do
		flock -n -x "$OVSNAP_ROOT/locks/consolidate" true && break
		sleep 0.1
	done &&
	test "$(npacks)" -ge 16 &&
	check_all k 20 &&
	ovsnap fsck >fsck.out &&
	grep " 0 problems" fsck.out
'

test_expect_success 'the next roll-up finishes the job; gc drops the duplicates' '
	export OVSNAP_ROOT=$PWD/store-kill &&
	put_many k 21 &&
	consolidated &&
	check_all k 21 &&
	ovsnap gc >/dev/null &&
	check_all k 21 &&
	ovsnap fsck >fsck.out &&
	grep " 0 problems" fsck.out
'

test_expect_success 'a damaged small pack is not rolled up: the roll-up stops, nothing is removed' '
	export OVSNAP_ROOT=$PWD/store-bad &&
	ovsnap volume create b &&
	put_many b 10 &&
	# the smallest pack holding a file (the geometric rule always takes the smallest into a
	# roll-up; the empty first snapshot'"'"'s pack is too short to damage at byte 200)
	victim=$(find "$OVSNAP_ROOT/packs" -name "*.pack" -size +1k -printf "%s %p\n" | sort -n | head -n 1 | cut -d" " -f2) &&
	printf "XXXX" | dd of="$victim" bs=1 seek=200 conv=notrunc 2>/dev/null &&
	put_many b 12 2>puts.err &&
	for i in $(seq 1 100); do
		grep -q "consolidating packs" puts.err && flock -n -x "$OVSNAP_ROOT/locks/consolidate" true && break
		sleep 0.1
	done &&
	# the roll-up did run, and stopped at the damaged pack
	grep "consolidating packs: .*$(basename "$victim" .pack)" puts.err &&
	test -f "$victim" &&
	test "$(npacks)" -ge 16
'

test_done
