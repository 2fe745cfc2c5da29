#!/bin/bash
# The EROFS image writer (snapshotter/erofs) as the kernel sees it: trees with every file type and
# boundary, and seeded random trees, go through tests/helpers/erofs-from-dir, pass fsck.erofs, mount
# file-backed with the new mount API (no loop device) and read back equal to their source, entry by
# entry (tests/helpers/erofs-tree.py compare). Then images as overlay lowers: whiteouts and opaque
# directories hide what is below, and a metacopy image over a data-only lower serves an object's bytes.
# Set EROFS_SEED to replay a random round.

test_description='EROFS images: written, checked, mounted, compared, stacked'
. "$(dirname "$0")/lib.sh"

helpers=$TEST_DIRECTORY/helpers
# the writer of the build under test: next to $OVSNAP (build-asan/...), else the default build's
from_dir=$(dirname "$OVSNAP")/erofs-from-dir
[ -x "$from_dir" ] || from_dir=$helpers/erofs-from-dir
tree() { python3 "$helpers/erofs-tree.py" "$@"; }
mount_image() { python3 "$helpers/erofs-mount.py" "$@"; }

test_lazy_prereq EROFS '
	[ "$(id -u)" = 0 ] && command -v fsck.erofs && command -v python3 &&
	mkdir e m && "'"$from_dir"'" e e.img && python3 "'"$helpers"'/erofs-mount.py" e.img m && umount m
'

# IMAGE SRC: fsck, mount at IMAGE.mnt, compare with SRC, unmount
check_image() {
	fsck.erofs --extract "$1" >fsck.out 2>&1 || { cat fsck.out; return 1; }
	mkdir -p "$1.mnt" &&
	mount_image "$1" "$1.mnt" &&
	{ tree compare "$2" "$1.mnt" >compare.out; status=$?; } &&
	cat compare.out &&
	umount "$1.mnt" &&
	return $status
}

test_expect_success EROFS 'a tree of every file type and boundary' '
	tree fixed src &&
	"$from_dir" -v src fixed.img >verify.out &&
	grep "^verified" verify.out
'

test_expect_success EROFS 'fsck.erofs accepts it; mounted file-backed, it equals its source' '
	check_image fixed.img src &&
	grep " 0 differences" compare.out
'

test_expect_success EROFS 'the mount is file-backed: no loop device was attached' '
	mkdir -p m &&
	losetup -a >loops.before &&
	mount_image fixed.img m &&
	losetup -a >loops.after &&
	findmnt -n -o FSTYPE,SOURCE m >fs &&
	umount m &&
	test_cmp loops.before loops.after &&
	grep -x "erofs .*fixed.img" fs
'

test_expect_success EROFS 'the kernel reads every byte and lists every name' '
	mount_image fixed.img m &&
	test_when_finished "umount m" &&
	cmp src/f1048577 m/f1048577 &&
	test "$(ls m/big | wc -l)" = 5001 &&
	test "$(cat m/$(printf "d/%.0s" $(seq 1 100))bottom)" = deep &&
	test "$(stat -c %h m/f4096)" = 3 &&
	test "$(stat -c %i m/f4096)" = "$(stat -c %i m/big/f4096-b)" &&
	test "$(stat -c %t:%T m/whiteout)" = 0:0 &&
	test "$(readlink m/s4095 | wc -c)" = 4096 &&
	test "$(getfattr --only-values -n trusted.overlay.opaque m/opaque)" = y
'

test_expect_success EROFS 'a flipped superblock byte is refused at mount (crc32c)' '
	cp fixed.img bad.img &&
	printf "\377" | dd of=bad.img bs=1 seek=1060 conv=notrunc 2>/dev/null &&
	test_must_fail mount_image bad.img m 2>err &&
	grep -i "bad message\|invalid\|checksum" err
'

test_expect_success EROFS 'files opened by name as the writer reads them: the same image, byte for byte' '
	"$from_dir" -p -v src by-name.img >verify.out &&
	grep "^verified" verify.out &&
	cmp fixed.img by-name.img
'

test_expect_success EROFS 'past the open-file limit the driver switches to sources by name' '
	(ulimit -n 256 && "$from_dir" src few-fds.img) &&
	cmp fixed.img few-fds.img
'

seed=${EROFS_SEED:-$(( $(date +%s) % 100000 ))}
say_ "# random rounds: EROFS_SEED=$seed"
test_expect_success EROFS "random trees (seed $seed): 6 images of ~300 entries each" '
	for i in 1 2 3 4 5 6; do
		tree random $((seed + i)) 300 rnd$i &&
		"$from_dir" -v rnd$i rnd$i.img >/dev/null &&
		check_image rnd$i.img rnd$i &&
		grep -q " 0 differences" compare.out || { echo "seed $((seed + i))"; return 1; }
	done
'

test_expect_success EROFS 'an image as an overlay lower: whiteouts and opaque dirs hide the layer below' '
	mkdir -p base/opq base/keepdir top/opq top/keepdir ov upper work &&
	echo gone >base/gone && echo keep >base/keep &&
	echo hidden >base/opq/hidden && echo x >base/keepdir/x &&
	mknod top/gone c 0 0 &&
	setfattr -n trusted.overlay.opaque -v y top/opq &&
	echo shown >top/opq/shown && echo y >top/keepdir/y &&
	"$from_dir" top top.img &&
	mkdir -p top.mnt && mount_image top.img top.mnt &&
	mount -t overlay overlay -o "lowerdir=$PWD/top.mnt:$PWD/base,upperdir=$PWD/upper,workdir=$PWD/work,index=off" ov &&
	test_when_finished "umount ov; umount top.mnt" &&
	! test -e ov/gone &&
	test "$(cat ov/keep)" = keep &&
	test "$(ls ov/opq)" = shown &&
	test "$(ls ov/keepdir | tr "\n" " ")" = "x y " &&
	echo more >>ov/opq/shown &&
	test "$(cat ov/opq/shown)" = "shown
more" &&
	test "$(cat top.mnt/opq/shown)" = shown
'

test_expect_success EROFS 'a metacopy image over a data-only lower serves the object, size from the image' '
	mkdir -p objs/ab mc mc.ov &&
	head -c $((3 * 1048576 + 5)) /dev/urandom >objs/ab/obj1 &&
	truncate -s $((3 * 1048576 + 5)) mc/big &&
	setfattr -n trusted.overlay.metacopy mc/big &&
	setfattr -n trusted.overlay.redirect -v /ab/obj1 mc/big &&
	echo small >mc/plain &&
	"$from_dir" -m mc mc.img &&
	test $(stat -c %s mc.img) -lt 65536 &&
	fsck.erofs --extract mc.img &&
	mkdir -p mc.mnt && mount_image mc.img mc.mnt &&
	mount -t overlay overlay -o "ro,metacopy=on,lowerdir=$PWD/mc.mnt::$PWD/objs" mc.ov &&
	test_when_finished "umount mc.ov; umount mc.mnt" &&
	test "$(stat -c %s mc.mnt/big)" = $((3 * 1048576 + 5)) &&
	cmp objs/ab/obj1 mc.ov/big &&
	test "$(cat mc.ov/plain)" = small
'

test_expect_success EROFS 'the writer names what it cannot hold: a 65536-byte xattr value' '
	mkdir -p toobig &&
	: >toobig/f &&
	if setfattr -n trusted.big -v "0x$(head -c 65536 /dev/zero | od -An -v -tx1 | tr -d " \n")" toobig/f 2>/dev/null
	then
		test_must_fail "$from_dir" toobig toobig.img 2>err &&
		grep "trusted.big: value of 65536 bytes" err
	else
		echo "# this file system holds no 64 KiB xattr value: checked by test-erofs instead"
	fi
'

test_expect_success 'unit tests of the layout (test-erofs)' '
	unit=$(dirname "$from_dir")/test-erofs &&
	{ [ -x "$unit" ] || unit=$TEST_DIRECTORY/unit/test-erofs; } &&
	"$unit" >unit.out &&
	cat unit.out &&
	! grep "^not ok" unit.out &&
	grep -q "^1\.\." unit.out
'

test_done
