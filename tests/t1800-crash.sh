#!/bin/bash
test_description='a kill -9 at any point leaves the volume at the old or the new snapshot, and fsck clean'
. "$(dirname "$0")/lib.sh"

# check_old_or_new VOLUME OLD_HEAD NEW_CONTENT_FILE REMOTE: the head is OLD_HEAD with the old
# content, or a new snapshot whose REMOTE equals NEW_CONTENT_FILE
check_old_or_new() {
	local head
	head=$(head_of "$1") || return 1
	ovsnap get "$1" "$4" - >got.check || return 1
	if [ "$head" = "$2" ]; then
		echo "volume stayed at the old head"
		test_cmp old got.check
	else
		echo "volume moved to the new head $head"
		test_cmp "$3" got.check
	fi
}

test_expect_success 'setup: a volume with one version of a file' '
	ovsnap volume create c &&
	echo old >old &&
	ovsnap put c old f &&
	echo new >new
'

for point in update-before-sync update-before-head update-after-head
do
	test_expect_success "a put killed at $point" '
		head=$(head_of c) &&
		OVSNAP_FAULT='"$point"' killed ovsnap put c new f &&
		check_old_or_new c "$head" new f &&
		ovsnap fsck &&
		ovsnap put c old f &&
		ovsnap get c f - >got &&
		test_cmp old got
	'
done

test_expect_success 'a put killed before the head moved leaves the old head' '
	head=$(head_of c) &&
	OVSNAP_FAULT=update-before-head killed ovsnap put c new f &&
	test "$(head_of c)" = "$head"
'

test_expect_success 'a put killed after the head moved has the new head' '
	head=$(head_of c) &&
	OVSNAP_FAULT=update-after-head killed ovsnap put c new f &&
	test "$(head_of c)" != "$head" &&
	ovsnap get c f - >got &&
	test_cmp new got
'

test_expect_success 'gc after crashes removes their leftovers and keeps everything else' '
	ovsnap gc &&
	ovsnap fsck &&
	ovsnap get c f - >got &&
	test_cmp new got
'

test_expect_success 'kill -9 at random moments of a big put: old or new, never broken' '
	mkdir big &&
	for d in $(seq 1 20); do
		mkdir big/d$d &&
		for f in $(seq 1 100); do echo "$d-$f" >big/d$d/f$f; done || return 1
	done &&
	echo marker >big/marker &&
	ovsnap volume create k &&
	echo old >old && ovsnap put k old big/marker &&
	for delay in 0.02 0.05 0.1 0.2 0.4
	do
		ovsnap put k old big/marker >/dev/null &&
		head=$(head_of k) &&
		{ ovsnap put k big & pid=$!; } &&
		sleep $delay &&
		{ kill -9 $pid 2>/dev/null; wait $pid; true; } &&
		check_old_or_new k "$head" big/marker big/marker &&
		ovsnap fsck || return 1
	done &&
	ovsnap gc &&
	ovsnap fsck &&
	ovsnap put k big &&
	ovsnap get k big big-out &&
	diff -r big big-out
'

test_done
