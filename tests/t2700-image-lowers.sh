#!/bin/bash
# The node cache holds EROFS images, not file trees: a mounted volume of every file type (hard
# links, xattrs, setuid, ns mtimes, a big file served from the store's objects by a metacopy entry)
# reads back exactly as `ovsnap get` writes it; every image passes fsck.erofs; a commit gives a
# delta image over its base; gc unlinks unused images and leaves nothing mounted.

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

test_done
