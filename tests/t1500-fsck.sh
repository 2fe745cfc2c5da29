#!/bin/bash
test_description='fsck finds damaged objects, packs and records; reads of damaged ones fail cleanly (exit 6)'
. "$(dirname "$0")/lib.sh"

# head_record VOLUME: the file of the volume's head snapshot record (file times cannot tell:
# two records written within one clock tick have the same mtime)
head_record() {
	local id
	id=$(ovsnap --json volume history "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])') &&
	echo "$OVSNAP_ROOT/snapshots/${id:0:2}/${id:2}"
}

# largest_file DIR: the biggest regular file under DIR
largest_file() {
	find "$1" -type f -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-
}

# truncate_half FILE: cut FILE to half its size
truncate_half() {
	truncate -s $(($(stat -c %s "$1") / 2)) "$1"
}

test_expect_success 'setup: a store with a few volumes, files, trees and history' '
	ovsnap volume create a &&
	ovsnap volume create b &&
	mkdir -p t/sub/deeper &&
	echo one >t/one && head -c 200000 /dev/urandom >t/sub/bin &&
	ln -s one t/link && mkfifo t/fifo && : >t/sub/deeper/empty &&
	setfattr -n user.x -v y t/one &&
	ovsnap put a t &&
	echo two >>t/one &&
	ovsnap put a t &&
	ovsnap put b t/sub &&
	ovsnap rm a t/link
'

test_expect_success 'fsck of a healthy store exits 0' '
	ovsnap fsck >out 2>err &&
	ovsnap --json fsck >out.json &&
	json_valid out.json
'

test_expect_success 'unreferenced objects (a deleted volume before gc) are not damage' '
	ovsnap volume create doomed &&
	head -c 50000 /dev/urandom >doomed-file &&
	ovsnap put doomed doomed-file &&
	ovsnap volume delete doomed &&
	test_expect_code 3 ovsnap ls doomed &&
	test "$(content_bytes)" -ge 50000 &&
	ovsnap fsck
'

# A store holding one 100 KB file: one pack (from the put) holds its object at offset 16 (after
# the pack header), then the root tree; volume create wrote a smaller pack with the empty tree.
test_expect_success 'setup: a store holding one 100 KB file' '
	use_store s-obj &&
	ovsnap volume create v &&
	head -c 100000 /dev/urandom >file &&
	ovsnap put v file &&
	ovsnap --json ls v | python3 -c "import json, sys; print(json.load(sys.stdin)[0][\"object\"])" >object-id &&
	test -n "$(cat object-id)" &&
	largest_file "$OVSNAP_ROOT/packs" >damaged-pack &&
	test "$(stat -c %s "$(cat damaged-pack)")" -gt 100000 &&
	ovsnap fsck
'

test_expect_success 'a flipped byte in an object: fsck fails and names the object and its pack' '
	use_store s-obj &&
	pack=$(cat damaged-pack) &&
	flip_byte "$pack" 50000 &&
	test_must_fail ovsnap fsck >out 2>err &&
	cat out err >all &&
	grep -F "$(cat object-id)" all &&
	grep -F "$(basename "$pack")" all
'

test_expect_success 'fsck of a damaged store exits with 6 (corrupt store)' '
	use_store s-obj &&
	test_expect_code 6 ovsnap fsck
'

test_expect_success 'get of a file whose object is damaged fails (exit 6) and leaves no file' '
	use_store s-obj &&
	test_expect_code 6 ovsnap get v file got 2>err &&
	grep -i -e corrupt -e checksum -e "hash" -e verif err &&
	test_path_is_missing got
'

test_expect_success 'get to stdout of a damaged object fails (exit 6)' '
	use_store s-obj &&
	test_expect_code 6 ovsnap get v file - >out
'

test_expect_success 'with the byte put back, fsck is happy and get works again' '
	use_store s-obj &&
	flip_byte "$(cat damaged-pack)" 50000 &&
	ovsnap fsck &&
	ovsnap get v file got-again &&
	cmp file got-again
'

# the pack held the root tree too: what is reported missing is that tree
test_expect_success 'a missing pack: fsck fails saying what is missing; get fails without a crash' '
	use_store s-obj &&
	pack=$(cat damaged-pack) &&
	mv "$pack" saved-pack &&
	test_must_fail ovsnap fsck >out 2>err &&
	cat out err >all &&
	grep "tree [0-9a-f]*: referenced but missing" all &&
	test_must_fail ovsnap get v file got2 2>err &&
	grep -F missing err &&
	test_path_is_missing got2 &&
	mv saved-pack "$pack" &&
	ovsnap fsck
'

test_expect_success 'setup: a store whose volume has one snapshot of root-level files' '
	use_store s-tree &&
	ovsnap volume create tvol &&
	echo 1 >f1 && echo 2 >f2 &&
	ovsnap put tvol f1 &&
	ovsnap put tvol f2 &&
	ovsnap ls tvol >before &&
	grep f1 before &&
	cp -a "$OVSNAP_ROOT" s-tree.pristine
'

# the head's root tree is the last object of the newest (and largest) pack: it ends where the
# pack's index begins, which the first 8 bytes of the pack's 16-byte tail say (little endian)
pack_data_end() {
	python3 -c 'import os, struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(os.path.getsize(sys.argv[1]) - 16); print(struct.unpack("<Q", f.read(8))[0])' "$1"
}

test_expect_success 'a truncated pack: fsck fails naming it; ls and get fail with exit 6 naming it' '
	use_store s-tree &&
	pack=$(largest_file "$OVSNAP_ROOT/packs") &&
	test -n "$pack" &&
	truncate_half "$pack" &&
	test_must_fail ovsnap fsck >out 2>err &&
	cat out err >all &&
	grep -F "$(basename "$pack")" all &&
	test_expect_code 6 ovsnap ls tvol 2>err &&
	grep -F "$(basename "$pack")" err &&
	test_expect_code 6 ovsnap get tvol . out-dir 2>err &&
	grep -F "$(basename "$pack")" err
'

test_expect_success 'a tree with a flipped byte inside its pack is caught the same way' '
	rm -rf s-tree && cp -a s-tree.pristine s-tree &&
	use_store s-tree &&
	pack=$(largest_file "$OVSNAP_ROOT/packs") &&
	flip_byte "$pack" $(($(pack_data_end "$pack") - 10)) &&
	test_must_fail ovsnap fsck >out 2>err &&
	cat out err >all &&
	grep -F "$(basename "$pack")" all &&
	test_expect_code 6 ovsnap ls tvol 2>err &&
	grep -F "$(basename "$pack")" err
'

test_expect_success 'a flipped byte in a pack index: the pack is reported damaged' '
	rm -rf s-tree && cp -a s-tree.pristine s-tree &&
	use_store s-tree &&
	pack=$(largest_file "$OVSNAP_ROOT/packs") &&
	flip_byte "$pack" $(($(pack_data_end "$pack") + 30)) &&
	test_must_fail ovsnap fsck >out 2>err &&
	cat out err >all &&
	grep -F "$(basename "$pack")" all &&
	grep -i checksum all &&
	test_expect_code 6 ovsnap ls tvol
'

test_expect_success 'an empty or garbage pack is caught the same way' '
	rm -rf s-tree && cp -a s-tree.pristine s-tree &&
	use_store s-tree &&
	pack=$(largest_file "$OVSNAP_ROOT/packs") &&
	: >"$pack" &&
	test_expect_code 6 ovsnap ls tvol &&
	head -c 3000 /dev/urandom >"$pack" &&
	test_expect_code 6 ovsnap ls tvol &&
	test_must_fail ovsnap fsck
'

test_expect_success 'a truncated snapshot record: fsck fails naming it; ls, get and history fail with exit 6' '
	rm -rf s-tree && cp -a s-tree.pristine s-tree &&
	use_store s-tree &&
	snap=$(head_record tvol) &&
	test -n "$snap" &&
	truncate_half "$snap" &&
	test_must_fail ovsnap fsck >out 2>err &&
	cat out err >all &&
	grep -F "$(basename "$snap")" all &&
	test_expect_code 6 ovsnap ls tvol 2>err &&
	grep -F "$(basename "$snap")" err &&
	test_expect_code 6 ovsnap get tvol f1 - 2>err &&
	test_expect_code 6 ovsnap volume history tvol
'

test_expect_success 'a damaged snapshot record is not silently overwritten by the next put' '
	use_store s-tree &&
	echo 3 >f3 &&
	test_expect_code 6 ovsnap put tvol f3 &&
	test_must_fail ovsnap fsck
'

test_expect_success 'a truncated volume record: ls fails cleanly (exit 6) and fsck notices' '
	rm -rf s-tree && cp -a s-tree.pristine s-tree &&
	use_store s-tree &&
	rec=$(find "$OVSNAP_ROOT/volumes" -type f | head -n 1) &&
	test -n "$rec" &&
	truncate_half "$rec" &&
	test_expect_code 6 ovsnap ls tvol 2>err &&
	grep -F tvol err &&
	test_must_fail ovsnap fsck
'

test_expect_success 'fsck --json of a damaged store is still one JSON document' '
	use_store s-tree &&
	test_must_fail ovsnap --json fsck >out.json &&
	json_valid out.json
'

test_expect_success 'damage in one volume does not stop reads of another' '
	rm -rf s-two &&
	use_store s-two &&
	ovsnap volume create good &&
	ovsnap volume create bad &&
	echo good >g && ovsnap put good g &&
	head -c 70000 /dev/urandom >b && ovsnap put bad b &&
	obj=$(largest_file "$OVSNAP_ROOT/packs") &&
	flip_byte "$obj" 100 &&
	ovsnap get good g - >got &&
	test_cmp g got &&
	test_expect_code 6 ovsnap get bad b - >/dev/null &&
	test_must_fail ovsnap fsck
'

test_done
