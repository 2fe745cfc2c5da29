#!/bin/bash
test_description='a full disk under the store: put and commit fail with exit 5 and change nothing; freeing space makes them work again'
. "$(dirname "$0")/lib.sh"

# small_store DIR SIZE [OPTS]: a store on a fresh tmpfs of SIZE mounted at DIR (unmounted when
# the test ends); OVSNAP_ROOT points at it
small_store() {
	mkdir "$1" &&
	mount -t tmpfs -o "size=$2${3:+,$3}" ovsnap-test "$1" &&
	# a node on tmpfs mounts its images through loop devices, which the kernel frees only
	# after the last umount, asynchronously: until then the tmpfs is busy
	test_when_finished "wait_for 10 umount $PWD/$1 2>/dev/null || umount $PWD/$1" &&
	OVSNAP_ROOT=$PWD/$1/store &&
	export OVSNAP_ROOT
}

# history_ids VOLUME: the snapshot ids of VOLUME, newest first
history_ids() {
	ovsnap --json volume history "$1" >history.json &&
	sed -n 's/^ *"id": "\([0-9a-f]*\)",*$/\1/p' history.json
}

# clean_after_gc: fsck passes; after gc it finds neither problems nor garbage
clean_after_gc() {
	ovsnap fsck &&
	ovsnap gc >/dev/null &&
	ovsnap --json fsck >fsck.json &&
	json_assert "d[\"problems\"] == [] and d[\"garbage_objects\"] == 0" <fsck.json
}

# free_kb DIR: available kilobytes on DIR's filesystem
free_kb() {
	df -k --output=avail "$1" | tail -n 1 | tr -d " "
}

test_expect_success TMPFS_MOUNT 'a put larger than the free space: exit 5 naming the space, nothing changed' '
	small_store s1 4m &&
	ovsnap volume create v &&
	mkdir -p src/d &&
	echo first >src/first &&
	random_file src/d/blob 300000 &&
	ovsnap put v src/ >/dev/null &&
	history_ids v >history.before &&
	random_file huge $((6 * 1048576)) &&
	test_expect_code 5 ovsnap put v huge 2>err &&
	test_stderr_mentions err space &&
	history_ids v >history.after &&
	test_cmp history.before history.after &&
	test_expect_code 3 ovsnap ls v huge &&
	ovsnap get v first - >got && test_cmp src/first got &&
	ovsnap get v d/blob - >got && test_cmp_bin src/d/blob got &&
	clean_after_gc &&
	echo small >small &&
	ovsnap put v small >/dev/null &&
	ovsnap get v small - >got &&
	test_cmp small got
'

test_expect_success TMPFS_MOUNT 'a local file on the same full disk: put fails; gc and removing the file make room' '
	small_store s2 4m &&
	ovsnap volume create v &&
	echo first >first &&
	ovsnap put v first >/dev/null &&
	history_ids v >history.before &&
	random_file s2/big 3000000 &&
	test_expect_code 5 ovsnap put v s2/big 2>err &&
	test_stderr_mentions err space &&
	history_ids v >history.after &&
	test_cmp history.before history.after &&
	ovsnap fsck &&
	ovsnap gc >/dev/null &&
	rm s2/big &&
	random_file medium 1000000 &&
	ovsnap put v medium >/dev/null &&
	ovsnap get v medium - >got &&
	test_cmp_bin medium got &&
	ovsnap get v first - >got &&
	test_cmp first got &&
	clean_after_gc
'

test_expect_success TMPFS_MOUNT 'a tree that only half fits: exit 5, nothing of it lands, gc gives the space back' '
	small_store s3 4m &&
	ovsnap volume create v &&
	echo first >first &&
	ovsnap put v first >/dev/null &&
	ovsnap gc >/dev/null &&
	before=$(free_kb s3) &&
	history_ids v >history.before &&
	mkdir tree &&
	for i in $(seq 1 12); do random_file tree/f$i 500000 || return 1; done &&
	test_expect_code 5 ovsnap put v tree 2>err &&
	test_stderr_mentions err space &&
	history_ids v >history.after &&
	test_cmp history.before history.after &&
	test_expect_code 3 ovsnap ls v tree &&
	clean_after_gc &&
	after=$(free_kb s3) &&
	echo "free before: $before KB, after the failed put and gc: $after KB" &&
	test "$after" -ge $((before - 64)) &&
	rm tree/f1[0-2] tree/f[3-9] &&
	ovsnap put v tree >/dev/null &&
	ovsnap get v tree/f2 - >got &&
	test_cmp_bin tree/f2 got
'

test_expect_success TMPFS_MOUNT 'the disk filling up at every step of a put: exit 0 or 5, never a broken store' '
	small_store s4 2m &&
	ovsnap volume create v &&
	echo first >first &&
	ovsnap put v first >/dev/null &&
	mkdir t &&
	ok=0 full=0 &&
	for k in $(seq 0 14)
	do
		rm -f s4/filler t/* &&
		ovsnap gc >/dev/null &&
		for i in 1 2 3 4; do random_file t/f$i 6000 || return 1; done &&
		avail=$(free_kb s4) &&
		{ test $((avail - 4 * k)) -le 0 || head -c $(((avail - 4 * k) * 1024)) /dev/zero >s4/filler 2>/dev/null; true; } &&
		history_ids v >history.before &&
		ovsnap put v t/ t >out 2>err
		rc=$?
		case $rc in
		0)
			ok=$((ok + 1)) &&
			history_ids v >history.after &&
			test "$(sed 1d history.after)" = "$(cat history.before)" &&
			ovsnap get v t/f3 - >got &&
			test_cmp_bin t/f3 got || return 1
			;;
		5)
			full=$((full + 1)) &&
			sed "s/^/$((4 * k)) KB free: /" err &&
			test_stderr_mentions err space &&
			history_ids v >history.after &&
			test_cmp history.before history.after || return 1
			;;
		*)
			echo "put with $((4 * k)) KB free: exit $rc" && cat err && return 1
			;;
		esac
		ovsnap fsck >fsck.out || { cat fsck.out; return 1; }
		ovsnap get v first - >got && test_cmp first got || return 1
	done &&
	echo "$ok puts fitted, $full found the disk full" &&
	test $ok -gt 0 && test $full -gt 0 &&
	rm -f s4/filler &&
	clean_after_gc
'

# small files share one pack per put, so a put needs only a few inodes: the test takes every free
# inode of the filesystem (files beside the store) before the put, and gives them back after
test_expect_success TMPFS_MOUNT 'a store out of inodes: exit 5, nothing changed' '
	small_store s5 16m nr_inodes=150 &&
	ovsnap volume create v &&
	echo first >first &&
	ovsnap put v first >/dev/null &&
	history_ids v >history.before &&
	mkdir many &&
	for i in $(seq 1 300); do echo "file $i" >many/f$i || return 1; done &&
	mkdir s5/fill &&
	i=0 && while : >s5/fill/$i 2>/dev/null; do i=$((i + 1)); done &&
	test "$(df --output=iavail s5 | tail -n 1 | tr -d " ")" = 0 &&
	test_expect_code 5 ovsnap put v many 2>err &&
	test_stderr_mentions err space &&
	history_ids v >history.after &&
	test_cmp history.before history.after &&
	rm -r s5/fill &&
	clean_after_gc &&
	ovsnap put v many >/dev/null &&
	ovsnap get v many/f300 - >got &&
	echo "file 300" >expect &&
	test_cmp expect got
'

test_expect_success TMPFS_MOUNT 'commit of a file too large for the store: exit 5, history and mount intact, then a small commit works' '
	small_store s6 8m &&
	ovsnap volume create v &&
	echo first >first &&
	ovsnap put v first >/dev/null &&
	mkdir A &&
	ovsnap mount v A >/dev/null &&
	test_when_finished "ovsnap umount $PWD/A" &&
	echo kept >A/kept &&
	ovsnap commit A >/dev/null &&
	history_ids v >history.before &&
	random_file big 5000000 &&
	cp big A/big &&
	test_expect_code 5 ovsnap commit A 2>err &&
	test_stderr_mentions err space &&
	history_ids v >history.after &&
	test_cmp history.before history.after &&
	test_expect_code 3 ovsnap ls v big &&
	mountpoint -q A &&
	test_cmp_bin big A/big &&
	ovsnap status --json >status.json &&
	json_assert "[a[\"dirty\"] for a in d] == [True]" <status.json &&
	clean_after_gc &&
	ovsnap get v kept - >got &&
	test_cmp A/kept got &&
	rm A/big &&
	echo small >A/small &&
	ovsnap commit A >/dev/null &&
	ovsnap get v small - >got &&
	test_cmp A/small got &&
	test_expect_code 3 ovsnap ls v big &&
	clean_after_gc
'

test_expect_success TMPFS_MOUNT 'get onto a disk too small for it: exit 5 naming the space, not a corrupt object' '
	OVSNAP_ROOT=$TEST_STORE &&
	ovsnap volume create big3 &&
	mkdir -p three &&
	random_file three/a 200000 && random_file three/b 200000 && random_file three/c 200000 &&
	ovsnap put big3 three/ >/dev/null &&
	mkdir tiny &&
	mount -t tmpfs -o size=300k ovsnap-test tiny &&
	test_when_finished "umount $PWD/tiny" &&
	test_expect_code 5 ovsnap get big3 . tiny/out 2>err &&
	test_stderr_mentions err "No space left" &&
	! grep -i "corrupt\|truncated" err &&
	ovsnap fsck
'

test_expect_success 'commit past the inode limit: exit 5 naming the limit, history unchanged; fits after deleting' '
	ovsnap volume create lim --max-inodes 10 &&
	mkdir L &&
	ovsnap mount lim L >/dev/null &&
	test_when_finished "ovsnap umount $PWD/L" &&
	history_ids lim >history.before &&
	for i in $(seq 1 20); do echo "$i" >L/f$i || return 1; done &&
	test_expect_code 5 ovsnap commit L 2>err &&
	test_stderr_mentions err "inode limit" 10 &&
	history_ids lim >history.after &&
	test_cmp history.before history.after &&
	test_expect_code 3 ovsnap ls lim f1 &&
	ls L >files &&
	test_line_count = 20 files &&
	ovsnap fsck &&
	rm L/f1[0-9] L/f20 L/f9 &&
	ovsnap commit L >/dev/null &&
	ovsnap --json ls lim >ls.json &&
	json_assert "sorted(e[\"name\"] for e in d) == sorted(\"f%d\" % i for i in range(1, 9))" <ls.json &&
	echo 8 >expect &&
	ovsnap get lim f8 - >got &&
	test_cmp expect got &&
	echo 9 >L/f9 && echo 10 >L/f10 && echo 11 >L/f11 &&
	test_expect_code 5 ovsnap commit L 2>err &&
	test_stderr_mentions err "inode limit" &&
	rm L/f11 &&
	ovsnap commit L >/dev/null &&
	ovsnap --json volume history lim >hist.json &&
	json_assert "d[0][\"files\"] == 10" <hist.json
'

test_done
