#!/bin/bash
test_description='put, rm, cp, rollback and commit killed at every crash point: old or new head, fsck clean, gc leaves no garbage, the history intact, the retry works'
. "$(dirname "$0")/lib.sh"

# history_ids VOLUME: the snapshot ids of VOLUME, newest first, one a line (sed, not python:
# this runs hundreds of times)
history_ids() {
	local -; set +x
	ovsnap --json volume history "$1" >history.json &&
	sed -n 's/^ *"id": "\([0-9a-f]*\)",*$/\1/p' history.json
}

# head_id VOLUME: the newest snapshot's id
head_id() {
	local -; set +x
	history_ids "$1" >head_id.out &&
	head -n 1 head_id.out
}

# snap_manifest VOLUME SNAP: every entry of SNAP's tree as `get --at` writes it: name, type,
# mode, owner, mtime, size, link target; then the checksum of every file
snap_manifest() {
	local -; set +x
	rm -rf snap.tree &&
	ovsnap get "$1" . snap.tree --at "$2" &&
	(
		cd snap.tree &&
		find . -mindepth 1 -printf "%p %y %m %U:%G %T@ %s %l\n" | sort &&
		find . -type f -print0 | sort -z | xargs -0 -r md5sum
	)
}

# record VOLUME: remember the manifest of every snapshot of VOLUME not yet recorded, and the
# history as it is now (history.before)
record() {
	local -; set +x
	mkdir -p recorded &&
	history_ids "$1" >history.before &&
	while read -r id
	do
		test -f "recorded/$id" && continue
		snap_manifest "$1" "$id" >recorded.tmp &&
		mv recorded.tmp "recorded/$id" || return 1
	done <history.before
}

# history_intact VOLUME: the history is what it was (history.before), or one new snapshot on top
# of it; every snapshot of history.before still gives back exactly the tree it gave when recorded
history_intact() {
	local -; set +x
	history_ids "$1" >history.after &&
	if ! test_cmp history.before history.after
	then
		sed 1d history.after >history.after.tail &&
		test_cmp history.before history.after.tail || return 1
	fi &&
	while read -r id
	do
		snap_manifest "$1" "$id" >snap.manifest &&
		test_cmp "recorded/$id" snap.manifest || { echo "snapshot $id changed"; return 1; }
	done <history.before
}

# head_is old|new VOLUME: the head is the one of history.before (old) or a new one on top (new)
head_is() {
	local head old
	head=$(head_id "$2") &&
	old=$(head -n 1 history.before) &&
	case $1 in
	old) test "$head" = "$old" || { echo "head moved: $old -> $head"; return 1; } ;;
	new) test "$head" != "$old" || { echo "head stayed at $old"; return 1; } ;;
	esac
}

# store_sound: fsck passes (garbage allowed); after gc it reports no garbage and no problem
store_sound() {
	ovsnap fsck &&
	ovsnap gc >/dev/null &&
	ovsnap --json fsck >fsck.json &&
	json_assert "d[\"garbage_objects\"] == 0 and d[\"problems\"] == []" <fsck.json
}

# where POINT: old if a crash at POINT must leave the old head, new if the new one
where() {
	case $1 in update-after-head) echo new ;; *) echo old ;; esac
}

# has VOLUME PATH FILE: the head's PATH has exactly FILE's bytes
has() {
	ovsnap get "$1" "$2" - >has.out &&
	test_cmp_bin "$3" has.out
}

test_expect_success 'setup: a volume with a file and a tree' '
	ovsnap volume create v &&
	mkdir -p src/d put rm cpd &&
	echo base >src/base.txt &&
	random_file src/d/blob 100000 &&
	ovsnap put v src/ >/dev/null &&
	ovsnap put v put put >/dev/null &&
	ovsnap put v rm rm >/dev/null &&
	ovsnap put v cpd cp >/dev/null &&
	record v
'

for point in update-before-sync update-before-head update-after-head
do
	test_expect_success "put killed at $point" '
		mkdir -p p-'"$point"' &&
		random_file p-'"$point"'/blob 200000 &&
		echo '"$point"' >p-'"$point"'/name &&
		record v &&
		OVSNAP_FAULT='"$point"' killed ovsnap put v p-'"$point"'/ put/'"$point"' &&
		head_is $(where '"$point"') v &&
		if test $(where '"$point"') = new
		then
			has v put/'"$point"'/blob p-'"$point"'/blob
		else
			test_expect_code 3 ovsnap ls v put/'"$point"'
		fi &&
		store_sound &&
		history_intact v &&
		ovsnap put v p-'"$point"'/ put/'"$point"' >/dev/null &&
		has v put/'"$point"'/blob p-'"$point"'/blob &&
		has v put/'"$point"'/name p-'"$point"'/name &&
		ovsnap fsck
	'

	test_expect_success "rm killed at $point" '
		mkdir -p r-'"$point"' &&
		random_file r-'"$point"'/blob 50000 &&
		ovsnap put v r-'"$point"' rm/'"$point"' >/dev/null &&
		random_file r2-'"$point"' 5000 &&
		ovsnap put v r2-'"$point"' rm/'"$point"'.2 >/dev/null &&
		record v &&
		OVSNAP_FAULT='"$point"' killed ovsnap rm v rm/'"$point"' -r &&
		head_is $(where '"$point"') v &&
		if test $(where '"$point"') = new
		then
			test_expect_code 3 ovsnap ls v rm/'"$point"' &&
			store_sound &&
			history_intact v &&
			ovsnap rm v rm/'"$point"'.2 >/dev/null &&
			test_expect_code 3 ovsnap ls v rm/'"$point"'.2
		else
			has v rm/'"$point"'/blob r-'"$point"'/blob &&
			store_sound &&
			history_intact v &&
			ovsnap rm v rm/'"$point"' -r >/dev/null &&
			test_expect_code 3 ovsnap ls v rm/'"$point"'
		fi &&
		has v base.txt src/base.txt &&
		ovsnap fsck
	'

	test_expect_success "cp killed at $point" '
		record v &&
		OVSNAP_FAULT='"$point"' killed ovsnap cp v d cp/'"$point"' &&
		head_is $(where '"$point"') v &&
		if test $(where '"$point"') = new
		then
			has v cp/'"$point"'/blob src/d/blob
		else
			test_expect_code 3 ovsnap ls v cp/'"$point"'
		fi &&
		store_sound &&
		history_intact v &&
		ovsnap cp v base.txt cp/'"$point"'.txt >/dev/null &&
		has v cp/'"$point"'.txt src/base.txt &&
		if test $(where '"$point"') = old
		then
			ovsnap cp v d cp/'"$point"' >/dev/null &&
			has v cp/'"$point"'/blob src/d/blob
		fi &&
		ovsnap fsck
	'

	test_expect_success "rollback killed at $point" '
		target=$(head_id v) &&
		random_file rb-'"$point"' 30000 &&
		ovsnap put v rb-'"$point"' rb-'"$point"' >/dev/null &&
		record v &&
		OVSNAP_FAULT='"$point"' killed ovsnap rollback v $target &&
		head_is $(where '"$point"') v &&
		if test $(where '"$point"') = new
		then
			snap_manifest v head >rolled &&
			test_cmp recorded/$target rolled
		else
			has v rb-'"$point"' rb-'"$point"'
		fi &&
		store_sound &&
		history_intact v &&
		ovsnap rollback v $target >id &&
		test "$(cat id)" = "$(head_id v)" &&
		snap_manifest v head >rolled &&
		test_cmp recorded/$target rolled &&
		test_expect_code 3 ovsnap ls v rb-'"$point"' &&
		ovsnap fsck
	'
done

test_expect_success 'setup: an attachment A of the volume' '
	mkdir A &&
	ovsnap mount v A &&
	test_path_is_file A/base.txt
'

for point in commit-before-update update-before-sync update-before-head update-after-head
do
	test_expect_success "commit killed at $point" '
		random_file c-'"$point"' 300000 &&
		cp c-'"$point"' A/c-'"$point"' &&
		echo "changed at '"$point"'" >A/base.txt &&
		cp A/base.txt base.now &&
		mkdir -p A/dir-'"$point"' &&
		echo in >A/dir-'"$point"'/in &&
		record v &&
		OVSNAP_FAULT='"$point"' killed ovsnap commit A &&
		mountpoint -q A &&
		head_is $(where '"$point"') v &&
		if test $(where '"$point"') = new
		then
			has v c-'"$point"' c-'"$point"' &&
			has v base.txt base.now
		else
			test_expect_code 3 ovsnap ls v c-'"$point"'
		fi &&
		store_sound &&
		history_intact v &&
		test_cmp_bin c-'"$point"' A/c-'"$point"' &&
		ovsnap commit A >id &&
		test "$(cat id)" = "$(head_id v)" &&
		has v c-'"$point"' c-'"$point"' &&
		has v base.txt base.now &&
		has v dir-'"$point"'/in A/dir-'"$point"'/in &&
		ovsnap fsck
	'
done

test_expect_success 'a file committed from the mount, then deleted there: the next commit removes it' '
	echo short-lived >A/short &&
	ovsnap commit A >/dev/null &&
	ovsnap ls v short &&
	rm A/short &&
	ovsnap commit A >/dev/null &&
	test_expect_code 3 ovsnap ls v short
'

test_expect_success 'a commit of deletions killed before the head moved: retried, they are gone' '
	ovsnap ls v cp/update-before-sync.txt &&
	rm -r A/cp &&
	rm A/d/blob &&
	record v &&
	OVSNAP_FAULT=update-before-head killed ovsnap commit A &&
	head_is old v &&
	has v d/blob src/d/blob &&
	store_sound &&
	history_intact v &&
	ovsnap commit A >/dev/null &&
	test_expect_code 3 ovsnap ls v cp &&
	test_expect_code 3 ovsnap ls v d/blob &&
	ovsnap ls v d
'

test_expect_success 'after all the crashes: a fresh mount equals the head, the whole history reads back' '
	record v &&
	store_sound &&
	history_intact v &&
	mkdir B &&
	ovsnap mount v B &&
	rm -rf want.tree &&
	ovsnap get v . want.tree &&
	tree_manifest want.tree | sed 1d >want &&
	tree_manifest B | sed 1d >got &&
	sed -e "s/ nlink=[0-9]*//" -e "/^hardlinks: /d" want >want.cmp &&
	sed -e "s/ nlink=[0-9]*//" -e "/^hardlinks: /d" got >got.cmp &&
	test_cmp want.cmp got.cmp &&
	ovsnap umount B &&
	ovsnap umount A
'

test_done
