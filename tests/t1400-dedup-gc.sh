#!/bin/bash
test_description='identical content is stored once; gc frees exactly what nothing references'
. "$(dirname "$0")/lib.sh"

MiB=1048576

# objects_du: bytes used by the store's objects directory, as du -sb counts them
objects_du() {
	if [ -d "$OVSNAP_ROOT/objects" ]; then du -sb "$OVSNAP_ROOT/objects" | cut -f1; else echo 0; fi
}

# gc_json: run gc --json into gc.json and set $removed and $freed from it
gc_json() {
	ovsnap --json gc >gc.json &&
	json_assert "isinstance(d[\"objects_removed\"], int) and isinstance(d[\"bytes_freed\"], int)" <gc.json &&
	removed=$(json "d[\"objects_removed\"]" <gc.json) &&
	freed=$(json "d[\"bytes_freed\"]" <gc.json)
}

test_expect_success 'setup: two volumes and a 5 MiB file' '
	ovsnap volume create d1 &&
	ovsnap volume create d2 &&
	random_file big $((5 * MiB)) &&
	mkdir -p sub && cp big sub/big-copy
'

test_expect_success 'the first put stores the content (the store grows by about 5 MiB)' '
	before=$(objects_du) &&
	ovsnap put d1 big &&
	after=$(objects_du) &&
	test $((after - before)) -ge $((5 * MiB)) &&
	test $((after - before)) -le $((5 * MiB + 256 * 1024))
'

test_expect_success 'the same content under another name is not stored again' '
	before=$(objects_du) &&
	ovsnap put d1 big big-again &&
	ovsnap put d1 sub/big-copy deep/dir/copy &&
	after=$(objects_du) &&
	test $((after - before)) -le 4096 &&
	ovsnap get d1 big-again - >got && cmp big got &&
	ovsnap get d1 deep/dir/copy - >got && cmp big got
'

test_expect_success 'the same content in another volume, with other metadata, is not stored again' '
	before=$(objects_du) &&
	cp big other && chmod 0600 other && chown 42:42 other && touch -d "2000-01-01" other &&
	ovsnap put d2 other &&
	ovsnap put d2 - from-stdin <big &&
	after=$(objects_du) &&
	test $((after - before)) -le 4096 &&
	ovsnap get d2 other other-out &&
	test "$(stat -c "%a %u:%g %Y" other-out)" = "$(stat -c "%a %u:%g %Y" other)" &&
	cmp big other-out
'

test_expect_success 'a one-byte change is new content: stored, and got back as changed' '
	cp big changed &&
	# flip the byte (writing a fixed one left the file unchanged one run in 256)
	b=$(dd if=big bs=1 skip=$((3 * MiB)) count=1 2>/dev/null | od -An -tu1 | tr -d " ") &&
	printf "\\$(printf %03o $(((b + 1) % 256)))" | dd of=changed bs=1 seek=$((3 * MiB)) conv=notrunc 2>/dev/null &&
	! cmp -s big changed &&
	before=$(objects_du) &&
	ovsnap put d2 changed &&
	after=$(objects_du) &&
	test "$after" -gt "$before" &&
	ovsnap get d2 changed - >got &&
	cmp changed got &&
	ovsnap get d2 other - >got &&
	cmp big got
'

test_expect_success 'gc on a store where everything is referenced removes nothing' '
	before=$(store_bytes "$OVSNAP_ROOT/objects") &&
	gc_json &&
	test "$removed" = 0 &&
	test "$freed" = 0 &&
	test "$(store_bytes "$OVSNAP_ROOT/objects")" = "$before"
'

test_expect_success 'gc keeps content that only old snapshots reference' '
	ovsnap volume create hist &&
	random_file v1 $MiB && random_file v2 $MiB &&
	ovsnap put hist v1 file &&
	ovsnap put hist v2 file &&
	random_file gone $MiB &&
	ovsnap put hist gone &&
	ovsnap rm hist gone &&
	gc_json &&
	test "$removed" = 0 &&
	ovsnap get hist file - --at head~3 >got && cmp v1 got &&
	ovsnap get hist gone - --at head~1 >got && cmp gone got &&
	ovsnap get hist file - >got && cmp v2 got
'

test_expect_success 'setup: a volume whose 3 MiB of content nobody else has' '
	ovsnap volume create unique &&
	mkdir u &&
	random_file u/a $((2 * MiB)) &&
	random_file u/b $MiB &&
	echo small >u/small &&
	ovsnap put unique u &&
	cp big shared-too && ovsnap put unique shared-too
'

test_expect_success 'deleting that volume frees nothing until gc' '
	before=$(content_bytes) &&
	ovsnap volume delete unique &&
	test_expect_code 3 ovsnap ls unique &&
	test "$(content_bytes)" = "$before"
'

test_expect_success 'gc frees the unreferenced content and reports it' '
	before_content=$(content_bytes) &&
	before_snapshots=$(store_bytes "$OVSNAP_ROOT/snapshots") &&
	gc_json &&
	after_content=$(content_bytes) &&
	after_snapshots=$(store_bytes "$OVSNAP_ROOT/snapshots") &&
	content_shrink=$((before_content - after_content)) &&
	total_shrink=$((content_shrink + before_snapshots - after_snapshots)) &&
	echo "removed=$removed freed=$freed content_shrink=$content_shrink total_shrink=$total_shrink" &&
	test "$removed" -ge 3 &&
	test "$content_shrink" -ge $((3 * MiB)) &&
	test "$content_shrink" -le $((3 * MiB + 64 * 1024)) &&
	test "$freed" -ge $((3 * MiB)) &&
	test "$freed" -le "$total_shrink"
'

test_expect_success 'after gc every other volume still gives back every file' '
	ovsnap get d1 big - >got && cmp big got &&
	ovsnap get d1 big-again - >got && cmp big got &&
	ovsnap get d1 deep/dir/copy - >got && cmp big got &&
	ovsnap get d2 other - >got && cmp big got &&
	ovsnap get d2 from-stdin - >got && cmp big got &&
	ovsnap get d2 changed - >got && cmp changed got &&
	ovsnap get hist file - --at head~3 >got && cmp v1 got &&
	ovsnap fsck
'

test_expect_success 'a second gc has nothing left to free' '
	gc_json &&
	test "$removed" = 0 &&
	test "$freed" = 0
'

test_expect_success 'content still used by another volume survives the deletion of the first' '
	before=$(content_bytes) &&
	ovsnap volume delete d1 &&
	gc_json &&
	after=$(content_bytes) &&
	test $((before - after)) -le 65536 &&
	ovsnap get d2 other - >got &&
	cmp big got
'

test_expect_success 'plain gc says how many bytes it freed' '
	ovsnap volume create tmp &&
	random_file t 200000 &&
	ovsnap put tmp t &&
	ovsnap volume delete tmp &&
	ovsnap gc >out &&
	grep -E "[0-9]" out &&
	grep -i -E "byte|[KMG]i?B" out &&
	ovsnap fsck
'

# Small files share packs. gc rewrites a pack to drop garbage, but a big one (64 MiB or more) only
# once a quarter of it is garbage: copying gigabytes to free a few files costs more than it saves.
test_expect_success 'setup: a store whose one pack of 73 MiB holds three volumes of small files' '
	use_store s-pack &&
	for v in a:54 b:12 c:7; do
		name=${v%%:*} n=${v#*:} &&
		ovsnap volume create $name && mkdir -p pk/$name &&
		for i in $(seq 1 $n); do random_file pk/$name/f$i $MiB || return 1; done &&
		ovsnap put $name pk/$name || return 1
	done &&
	ovsnap gc >/dev/null &&
	ls "$OVSNAP_ROOT/packs" >packs.before &&
	test "$(wc -l <packs.before)" = 1 &&
	test "$(content_bytes)" -ge $((73 * MiB))
'

test_expect_success 'gc leaves a big pack alone while less than a quarter of it is garbage' '
	use_store s-pack &&
	ovsnap volume delete b &&
	gc_json &&
	test "$removed" = 0 &&
	ls "$OVSNAP_ROOT/packs" >packs.after &&
	test_cmp packs.before packs.after &&
	ovsnap --json fsck >fsck.json &&
	json_assert "d[\"garbage_objects\"] == 12 and d[\"problems\"] == []" <fsck.json &&
	ovsnap get a a/f54 - >got && cmp pk/a/f54 got
'

test_expect_success 'past a quarter, gc rewrites it without the garbage' '
	use_store s-pack &&
	ovsnap volume delete c &&
	gc_json &&
	test "$removed" -ge 19 &&
	test "$freed" -ge $((19 * MiB)) &&
	ls "$OVSNAP_ROOT/packs" >packs.after &&
	! test_cmp packs.before packs.after &&
	test "$(content_bytes)" -le $((55 * MiB)) &&
	ovsnap --json fsck >fsck.json &&
	json_assert "d[\"garbage_objects\"] == 0 and d[\"problems\"] == []" <fsck.json &&
	for i in $(seq 1 54); do
		ovsnap get a a/f$i - >got && cmp pk/a/f$i got || return 1
	done
'

test_done
