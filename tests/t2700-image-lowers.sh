#!/bin/bash
# The node cache holds EROFS images, not file trees: a mounted volume of every file type (hard
# links, xattrs, setuid, ns mtimes, a big file served from the store's objects by a metacopy entry)
# reads back exactly as `ovsnap get` writes it; every image passes fsck.erofs; a commit gives a
# delta image over its base; gc evicts unused images and leaves nothing mounted.

test_description='cache layers are EROFS images mounted as overlay lowers'
. "$(dirname "$0")/lib.sh"

helpers=$TEST_DIRECTORY/helpers
tree() { python3 "$helpers/erofs-tree.py" "$@"; }
big=$((3 * 1048576 + 5))

# same DIR: the mount at DIR holds what `ovsnap get` gives (a merged directory's nlink is 1
# in any overlay: not compared for the root)
same() {
	rm -rf want && ovsnap get v . want >/dev/null &&
	{ tree compare want "$1" >compare.out; status=$?; } &&
	grep -v -e "^compare: b'': directory nlink" -e "entries, [0-9]* differences" compare.out >diffs;
	cat compare.out && test ! -s diffs
}

# reads PID FILE: process PID has FILE as its stdin
reads() { test "$(readlink "/proc/$1/fd/0")" = "$2"; }

fsck_images() {
	ls "$OVSNAP_ROOT"/cache/layers/*/image >images &&
	test -s images &&
	while read -r i; do fsck.erofs "$i" >/dev/null || return 1; done <images
}

test_expect_success 'setup: every file type, hard links, xattrs, setuid, ns mtimes, a big file' '
	tree fixed src &&
	rm src/whiteout &&
	head -c $big /dev/urandom >src/model.bin &&
	ln src/model.bin src/model.link &&
	cp src/model.bin model.copy &&
	head -c $big /dev/urandom >src/weights.bin &&
	cp src/weights.bin weights.copy &&
	ovsnap volume create v &&
	ovsnap put v src/ >/dev/null &&
	mkdir A &&
	ovsnap mount v A
'

test_expect_success 'the mount reads back what ovsnap get writes, entry by entry' '
	same A &&
	cmp model.copy A/model.bin &&
	test "$(stat -c %h:%i A/model.bin)" = "$(stat -c %h:%i A/model.link)"
'

test_expect_success 'the cache holds one image per layer and no file tree; fsck.erofs accepts it' '
	find "$OVSNAP_ROOT/cache/layers" -mindepth 2 >files &&
	cat files &&
	! grep -v -e "/image$" -e "/info$" -e "/synced$" files &&
	test "$(grep -c /image$ files)" = 1 &&
	fsck_images
'

test_expect_success 'the big file is a metacopy entry: its bytes are not in the image' '
	image=$(cat images) &&
	test $(stat -c %s "$image") -lt $((big / 2)) &&
	dd if=model.copy of=chunk bs=4096 skip=100 count=1 2>/dev/null &&
	! grep -qF -f <(od -An -tx1 -v chunk | tr -d " \n" | head -c 64) <(od -An -tx1 -v "$image" | tr -d " \n") &&
	grep -x "meta 1" "$OVSNAP_ROOT"/cache/layers/*/info
'

test_expect_success 'a write to the big file copies the whole file up' '
	echo tail >>A/weights.bin &&
	up=$(ls -d "$OVSNAP_ROOT"/attach/*/upper.*) &&
	test "$(stat -c %s "$up/weights.bin")" = $((big + 5)) &&
	head -c $big "$up/weights.bin" | cmp - weights.copy &&
	! getfattr -d -m trusted.overlay.metacopy "$up/weights.bin" 2>/dev/null | grep -q metacopy &&
	chmod 0600 A/f1048577 &&
	test "$(stat -c %s "$up/f1048577")" = 1048577 &&
	cmp src/f1048577 "$up/f1048577"
'

test_expect_success 'a commit that deletes, turns a file into a dir and a dir into a file: a delta image' '
	rm A/f0 &&
	rm A/f8192 && mkdir A/f8192 &&
	echo inside >A/f8192/inside &&
	rm -rf A/empty && echo now-a-file >A/empty &&
	ovsnap commit A >/dev/null &&
	ovsnap umount A &&
	ovsnap mount v A &&
	same A &&
	test "$(cat A/f8192/inside)" = inside &&
	test "$(cat A/empty)" = now-a-file &&
	test_path_is_missing A/f0 &&
	test "$(ls "$OVSNAP_ROOT"/cache/layers | wc -l)" = 2 &&
	grep -L "^base -" "$OVSNAP_ROOT"/cache/layers/*/info >delta &&
	test "$(wc -l <delta)" = 1 &&
	fsck_images &&
	image=$(dirname "$(cat delta)")/image &&
	test $(stat -c %s "$image") -lt 65536
'

test_expect_success 'a commit that touches a hard-linked file or a non-empty dir gives a full image' '
	echo more >>A/model.bin &&
	rm -r A/one &&
	ovsnap commit A >/dev/null &&
	ovsnap umount A &&
	ovsnap mount v A &&
	same A &&
	test "$(ls "$OVSNAP_ROOT"/cache/layers | wc -l)" = 3 &&
	test "$(grep -l "^base -" "$OVSNAP_ROOT"/cache/layers/*/info | wc -l)" = 2 &&
	fsck_images
'

test_expect_success 'gc keeps the images in use, then evicts unused ones and nothing stays mounted' '
	ovsnap gc >/dev/null &&
	test "$(ls "$OVSNAP_ROOT"/cache/layers | wc -l)" = 1 &&
	same A &&
	ovsnap umount A &&
	ovsnap gc >/dev/null &&
	test -z "$(ls "$OVSNAP_ROOT/cache/layers")" &&
	! grep -F "$OVSNAP_ROOT" /proc/self/mountinfo &&
	ovsnap mount v A &&
	same A &&
	ovsnap umount A
'

test_expect_success 'a reader of a big file (metacopy) or of any file makes reload busy, naming it' '
	ovsnap volume create m &&
	random_file m.bin $big &&
	echo small >small &&
	ovsnap put m m.bin >/dev/null &&
	ovsnap put m small >/dev/null &&
	mkdir M &&
	ovsnap mount m M >/dev/null &&
	grep -q "\"lower_dev\":[1-9]" "$OVSNAP_ROOT"/attach/*/state &&
	echo up >M/up &&
	ovsnap put m small /newer >/dev/null &&
	for f in m.bin small up
	do
		{ sleep 100 <M/$f & pid=$!; } &&
		wait_for 5 reads $pid "$PWD/M/$f" &&
		{ test_expect_code 4 ovsnap reload M 2>err; st=$?; kill $pid; wait $pid 2>/dev/null; test $st = 0; } &&
		test_stderr_mentions err "volume busy" "pid $pid (sleep" "M/$f open" &&
		test_path_is_missing M/newer || return 1
	done &&
	ovsnap reload M >/dev/null &&
	test_cmp small M/newer &&
	cmp m.bin M/m.bin
'

test_expect_success 'gc keeps the loose objects an attachment stands on after its volume lets go of them' '
	random_file gone.bin $big &&
	ovsnap volume create g &&
	ovsnap put g gone.bin >/dev/null &&
	mkdir G &&
	ovsnap mount g G >/dev/null &&
	ovsnap volume delete g >/dev/null &&
	ovsnap gc >/dev/null &&
	cmp gone.bin G/gone.bin &&
	ovsnap fsck >/dev/null &&
	ovsnap umount G &&
	ovsnap --json gc >gc.json &&
	json_assert "d[\"objects_removed\"] >= 1" <gc.json
'

test_expect_success TMPFS_MOUNT 'a node on tmpfs (no file-backed mount): the image goes through an autoclear loop device' '
	mkdir t && mount -t tmpfs -o size=64m ovsnap-test t &&
	test_when_finished "wait_for 10 umount $PWD/t 2>/dev/null || umount $PWD/t" &&
	OVSNAP_ROOT=$PWD/t/store ovsnap volume create v &&
	OVSNAP_ROOT=$PWD/t/store ovsnap put v src/ >/dev/null &&
	mkdir T &&
	OVSNAP_ROOT=$PWD/t/store ovsnap mount v T >/dev/null &&
	losetup -l -n -O BACK-FILE,AUTOCLEAR,RO >loops &&
	grep "$PWD/t/store/cache/layers/.*/image *1 *1" loops &&
	OVSNAP_ROOT=$PWD/t/store same T &&
	OVSNAP_ROOT=$PWD/t/store ovsnap umount T &&
	wait_for 5 eval "! losetup -l -n -O BACK-FILE | grep -q \"$PWD/t/\""
'

test_done
