#!/bin/bash
test_description='a commit or reload killed at any point: the volume is at the old or the new snapshot, fsck is clean, the next commit works'
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/attach-lib.sh"

# old_or_new OLD_HEAD PATH NEW_FILE: the head is OLD_HEAD (where PATH is not NEW_FILE's content),
# or a newer snapshot whose PATH is NEW_FILE's content
old_or_new() {
	local head
	head=$(head_of v) || return 1
	if [ "$head" = "$1" ]; then
		echo "volume stayed at the old head"
		! { ovsnap get v "$2" - 2>/dev/null | cmp -s - "$3"; }
	else
		echo "volume moved to the new head $head"
		ovsnap get v "$2" - >got.check &&
		test_cmp_bin "$3" got.check
	fi
}

test_expect_success 'setup: volume v with a file, attachment A' '
	ovsnap volume create v &&
	echo old >old &&
	ovsnap put v old f >/dev/null &&
	mkdir A &&
	ovsnap mount v A
'

for point in commit-before-update update-before-sync update-before-head update-before-head-moves update-after-head commit-manifest-pending
do
	test_expect_success "a commit killed at $point: old or new head, fsck clean, the next commit lands the change" '
		echo "new at '"$point"'" >new &&
		cp new A/f &&
		echo "added at '"$point"'" >A/added-'"$point"' &&
		head=$(head_of v) &&
		OVSNAP_FAULT='"$point"' killed ovsnap commit A &&
		old_or_new "$head" f new &&
		ovsnap fsck &&
		mountpoint -q A &&
		test "$(mounts_at A)" = 1 &&
		test_cmp new A/f &&
		ovsnap commit A >id &&
		test "$(cat id)" = "$(head_of v)" &&
		ovsnap get v f - >got &&
		test_cmp new got &&
		ovsnap get v added-'"$point"' - >got &&
		test_cmp A/added-'"$point"' got &&
		ovsnap fsck
	'
done

test_expect_success 'a commit killed before the head moved leaves the old head' '
	echo "not yet" >A/f &&
	head=$(head_of v) &&
	OVSNAP_FAULT=update-before-head killed ovsnap commit A &&
	test "$(head_of v)" = "$head"
'

test_expect_success 'a commit killed after the head moved has the new head' '
	head=$(head_of v) &&
	OVSNAP_FAULT=update-after-head killed ovsnap commit A &&
	test "$(head_of v)" != "$head" &&
	echo "not yet" >expect &&
	ovsnap get v f - >got &&
	test_cmp expect got
'

test_expect_success 'after the crashes: status lists A, commit with nothing new is a no-op' '
	ovsnap status --json >status.json &&
	json_assert "len([a for a in d if a[\"dir\"].endswith(\"/A\")]) == 1" <status.json &&
	h=$(head_of v) &&
	n=$(history_length v) &&
	ovsnap commit A >id &&
	test "$(cat id)" = "$h" &&
	test "$(history_length v)" = "$n"
'

test_expect_success 'gc after crashed commits removes leftovers and keeps what A uses' '
	ovsnap gc &&
	ovsnap fsck &&
	echo "not yet" >expect &&
	test_cmp expect A/f &&
	mkdir C &&
	ovsnap mount v C &&
	same_tree v head C &&
	ovsnap umount C
'

test_expect_success 'kill -9 at random moments of a big commit: old or new, never broken; then the commit works' '
	mkdir A/big &&
	for d in $(seq 1 10); do
		mkdir A/big/d$d &&
		for f in $(seq 1 100); do echo "$d-$f" >A/big/d$d/f$f || return 1; done || return 1
	done &&
	for delay in 0.01 0.03 0.06 0.1 0.2
	do
		echo "marker $delay" >marker &&
		cp marker A/big/marker &&
		head=$(head_of v) &&
		{ ovsnap commit A >/dev/null 2>&1 & pid=$!; } &&
		sleep $delay &&
		{ kill -9 $pid 2>/dev/null; wait $pid; true; } &&
		old_or_new "$head" big/marker marker &&
		ovsnap fsck &&
		mountpoint -q A || return 1
	done &&
	ovsnap commit A >/dev/null &&
	ovsnap get v big big-out &&
	diff -r A/big big-out &&
	ovsnap fsck
'

test_expect_success 'kill -9 at random moments of a reload: A stays mounted on the old or the new snapshot; the next reload works' '
	mkdir B &&
	ovsnap mount v B &&
	for delay in 0 0.001 0.002 0.003 0.004 0.005 0.006 0.008 0.01 0.012 0.015 0.02 0.025 0.03 0.04 0.06
	do
		echo "B $delay" >B/from-B &&
		ovsnap commit B >/dev/null &&
		{ ovsnap reload A >/dev/null 2>&1 & pid=$!; } &&
		sleep $delay &&
		{ kill -9 $pid 2>/dev/null; wait $pid; true; } &&
		mountpoint -q A &&
		ls A/big >/dev/null &&
		{ test_path_is_missing A/from-B || grep -x "B .*" A/from-B; } &&
		ovsnap reload A >id &&
		test "$(cat id)" = "$(head_of v)" &&
		test_cmp B/from-B A/from-B &&
		test "$(mounts_at A)" = 1 &&
		ovsnap fsck || return 1
	done &&
	same_tree v head A
'

test_expect_success 'clean up' '
	ovsnap umount A &&
	ovsnap umount B &&
	! grep -F " $PWD/" /proc/self/mountinfo
'

test_expect_success 'a commit killed after its head moved, before its manifest: the next commit does not re-apply it over a newer writer' '
	mkdir -p B &&
	{ mountpoint -q A || ovsnap mount v A; } &&
	ovsnap mount v B &&
	echo "from A" >A/contested &&
	OVSNAP_FAULT=update-after-head killed ovsnap commit A &&
	ovsnap get v contested - >got && echo "from A" >expect && test_cmp expect got &&
	echo "from B, later" >B/contested &&
	ovsnap commit B >/dev/null &&
	h=$(head_of v) &&
	ovsnap commit A >id &&
	test "$(cat id)" = "$h" &&
	ovsnap get v contested - >got && echo "from B, later" >expect && test_cmp expect got &&
	ls "$TEST_STORE/attach/$(att A id)" | grep "^manifest" >manifests &&
	test_line_count = 1 manifests &&
	ovsnap umount B
'

test_expect_success 'a commit killed after naming its manifest, before the head moved: the next commit takes the change' '
	echo "A again" >A/contested &&
	h=$(head_of v) &&
	OVSNAP_FAULT=update-before-head-moves killed ovsnap commit A &&
	test "$(head_of v)" = "$h" &&
	ovsnap commit A >/dev/null &&
	ovsnap get v contested - >got && echo "A again" >expect && test_cmp expect got
'

test_done
