#!/bin/bash
test_description='mount and umount: a snapshot on real overlayfs, exact metadata, --ro, --at, a shared cached lower, status'
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/attach-lib.sh"

# same_tree_exact VOLUME SNAP DIR: DIR shows exactly SNAP's tree (every entry below the root; with
# modes, owners, times, sizes, contents, link targets, xattrs, link counts and hard links), as
# `get` writes it
same_tree_exact() {
	rm -rf want.tree &&
	ovsnap get "$1" . want.tree --at "$2" &&
	tree_manifest want.tree | sed 1d >want.manifest &&
	tree_manifest "$3" | sed 1d >got.manifest &&
	test_cmp want.manifest got.manifest
}

# layers: how many layers the node cache holds
layers() {
	find "$OVSNAP_ROOT/cache/layers" -mindepth 1 -maxdepth 1 | wc -l
}

make_tree() {
	mkdir -p "$1" &&
	(
		cd "$1" &&
		mkdir -p sub/deeper empty sticky private &&
		echo "hello world" >hello.txt &&
		: >empty-file &&
		head -c 70000 /dev/urandom >sub/odd-size &&
		head -c 300000 /dev/urandom >sub/deeper/random.bin &&
		printf "same content\n" >dup1 && printf "same content\n" >dup2 &&
		printf "twin\n" >twin1 && printf "twin\n" >twin2 &&
		touch -d "2004-04-04 04:04:04" twin1 twin2 &&
		echo "space" >"with space" &&
		echo "newline" >"$(printf "new\nline")" &&
		echo "utf8" >"ünïcödé-🙂" &&
		ln -s hello.txt link-rel &&
		ln -s /etc/passwd link-abs &&
		ln -s does/not/exist link-dangling &&
		echo "linked" >hl-a && ln hl-a sub/hl-b &&
		mkfifo fifo && chmod 0620 fifo &&
		echo "setuid" >setuid-file && chown 1234:5678 setuid-file && chmod 4755 setuid-file &&
		echo "nobody" >mode-0000 && chmod 0000 mode-0000 &&
		echo "big ids" >big-ids && chown 2000000000:3000000000 big-ids &&
		echo "secret" >private/key && chmod 0400 private/key &&
		chown 65534:65534 private && chmod 0700 private &&
		chmod 1777 sticky &&
		setfattr -n user.color -v blue hello.txt &&
		setfattr -n user.binary -v 0x00ff10fe0a sub/odd-size &&
		setfattr -n user.on-dir -v dir-value sub &&
		chown -h 4321:8765 link-rel &&
		touch -d "2001-02-03 04:05:06.123456789" hello.txt &&
		touch -d "2020-02-29 23:59:59.999999999" empty-file &&
		touch -h -d "2005-05-05 05:05:05.5" link-rel &&
		touch -d "1999-12-31 23:59:59.25" sub/deeper &&
		touch -d "2002-02-02 02:02:02.02" empty
	)
}

test_expect_success XATTR 'setup: a volume with a rich tree, then a second snapshot' '
	ovsnap volume create v &&
	make_tree src &&
	ovsnap put v src/ >id &&
	first=$(cat id) &&
	is_snapshot_id "$first" &&
	echo "changed" >src/hello.txt &&
	echo "added" >src/added.txt &&
	rm src/dup2 &&
	ovsnap put v src/ >/dev/null &&
	ovsnap rm v dup2 >/dev/null &&
	second=$(head_of v) &&
	test "$second" != "$first"
'

test_expect_success XATTR 'mount shows the head snapshot with exact names, types, modes, owners, times, contents, xattrs and links' '
	mkdir A &&
	ovsnap mount v A &&
	mountpoint -q A &&
	same_tree_exact v head A
'

test_expect_success XATTR 'the mount is an overlay whose root is a directory like the one get makes' '
	findmnt -n -o FSTYPE --mountpoint "$PWD/A" >fstype &&
	echo overlay >expect &&
	test_cmp expect fstype &&
	rm -rf root.get && ovsnap get v . root.get &&
	stat -c "%F %a %u:%g" root.get >expect &&
	stat -c "%F %a %u:%g" A >actual &&
	test_cmp expect actual
'

test_expect_success XATTR 'files that were not hard links are not one inode in the mount (nlink, st_ino)' '
	test "$(stat -c %h A/hello.txt)" = 1 &&
	test "$(stat -c %h A/dup1)" = 1 &&
	test "$(stat -c %h A/twin1)" = 1 &&
	test "$(stat -c %i A/twin1)" != "$(stat -c %i A/twin2)" &&
	test "$(stat -c %h A/hl-a)" = 2 &&
	test "$(stat -c %i A/hl-a)" = "$(stat -c %i A/sub/hl-b)"
'

test_expect_success XATTR 'tar of the mount archives identical files as files, not as hard links' '
	tar -C A -cf mount.tar twin1 twin2 &&
	tar -tvf mount.tar >tar.list &&
	! grep "link to" tar.list
'

test_expect_success XATTR 'status --json lists the attachment with its volume, dir and snapshot' '
	ovsnap status --json >status.json &&
	json_valid status.json &&
	test "$(att A volume)" = v &&
	test "$(att A snapshot)" = "$second" &&
	test "$(att A dirty)" = false &&
	test "$(att A readonly)" = false &&
	test "$(att A mounted)" = true &&
	test "$(att A dir)" = "$PWD/A" &&
	att A upper_bytes >ub &&
	grep -qx "[0-9][0-9]*" ub &&
	id=$(att A id) && test -n "$id" &&
	ovsnap status >plain &&
	grep -F "$PWD/A" plain
'

test_expect_success XATTR 'writes land in the mount (not in the volume) and make it dirty' '
	head -c 20000 /dev/urandom >A/new.bin &&
	echo more >>A/hello.txt &&
	test "$(att A dirty)" = true &&
	test "$(att A upper_bytes)" -ge 20000 &&
	test "$(head_of v)" = "$second" &&
	test_expect_code 3 ovsnap ls v new.bin
'

test_expect_success XATTR '--ro mounts read-only: writes fail with EROFS' '
	mkdir R &&
	ovsnap mount v R --ro &&
	mountpoint -q R &&
	test "$(att R readonly)" = true &&
	test_must_fail touch R/new 2>err &&
	grep -i "read-only file system" err &&
	test_must_fail rm R/hello.txt 2>err &&
	grep -i "read-only file system" err &&
	test_must_fail mkdir R/newdir 2>err &&
	grep -i "read-only file system" err &&
	test_must_fail chmod 0600 R/hello.txt 2>err &&
	grep -i "read-only file system" err &&
	test_must_fail setfattr -n user.x -v y R/hello.txt 2>err &&
	grep -i "read-only file system" err &&
	test_path_is_missing R/new &&
	same_tree v head R
'

test_expect_success XATTR '--at mounts an older snapshot' '
	mkdir O &&
	ovsnap mount v O --at "$first" &&
	test "$(att O snapshot)" = "$first" &&
	same_tree v "$first" O &&
	echo "hello world" >expect &&
	test_cmp expect O/hello.txt &&
	test_path_is_file O/dup2 &&
	test_path_is_missing O/added.txt
'

test_expect_success XATTR '--at takes a unique prefix and head~N' '
	mkdir P Q &&
	ovsnap mount v P --at "$(echo "$first" | cut -c1-8)" &&
	test "$(att P snapshot)" = "$first" &&
	ovsnap mount v Q --at head~1 &&
	test "$(att Q snapshot)" = "$(ovsnap --json volume history v | json "d[1][\"id\"]")" &&
	same_tree v head~1 Q
'

test_expect_success XATTR 'a second mount of the same snapshot shares the cached lower' '
	n=$(layers) &&
	test "$n" -ge 1 &&
	mkdir A2 &&
	ovsnap mount v A2 &&
	test "$(layers)" = "$n" &&
	test "$(att A2 snapshot)" = "$second" &&
	test "$(att A snapshot)" = "$second" &&
	test "$(att A2 id)" != "$(att A id)" &&
	same_tree v head A2 &&
	mkdir O2 &&
	ovsnap mount v O2 --at "$first" &&
	test "$(layers)" = "$n" &&
	same_tree v "$first" O2
'

test_expect_success XATTR 'attachments of one snapshot do not see each other'"'"'s writes' '
	test_path_is_file A/new.bin &&
	test_path_is_missing A2/new.bin &&
	test_cmp src/hello.txt A2/hello.txt &&
	echo only-A2 >A2/mine &&
	test_path_is_missing A/mine
'

test_expect_success XATTR 'gc keeps what live attachments use' '
	ovsnap gc &&
	ovsnap fsck &&
	same_tree v "$first" O &&
	test_cmp src/hello.txt A2/hello.txt &&
	cat O/sub/deeper/random.bin >/dev/null
'

test_expect_success 'mount refuses a missing volume, a missing snapshot and a missing directory' '
	mkdir X &&
	test_expect_code 3 ovsnap mount nosuch X 2>err &&
	test_stderr_mentions err nosuch &&
	test_expect_code 3 ovsnap mount v X --at 0123456789abcdef0123456789abcdef &&
	test_must_fail ovsnap mount v does-not-exist &&
	test_path_is_missing does-not-exist &&
	! mountpoint -q X &&
	ovsnap status --json >status.json &&
	json_assert "not [a for a in d if a[\"dir\"].endswith(\"/X\")]" <status.json
'

test_expect_success XATTR 'umount detaches: the directory is empty again and the attachment is gone' '
	ovsnap umount A2 &&
	! mountpoint -q A2 &&
	ls -A A2 >actual &&
	test_must_be_empty actual &&
	ovsnap status --json >status.json &&
	json_assert "not [a for a in d if a[\"dir\"].endswith(\"/A2\")]" <status.json &&
	test "$(att A volume)" = v
'

test_expect_success XATTR 'umount discards uncommitted changes' '
	mkdir U &&
	ovsnap mount v U &&
	echo scratch >U/scratch &&
	h=$(head_of v) &&
	ovsnap umount U &&
	test "$(head_of v)" = "$h" &&
	test_expect_code 3 ovsnap ls v scratch &&
	ovsnap mount v U &&
	test_path_is_missing U/scratch &&
	ovsnap umount U
'

test_expect_success XATTR 'umount --commit commits first' '
	mkdir W &&
	ovsnap mount v W &&
	echo kept >W/kept &&
	rm W/dup1 &&
	n=$(history_length v) &&
	ovsnap umount W --commit &&
	! mountpoint -q W &&
	test "$(history_length v)" = $((n + 1)) &&
	ovsnap get v kept - >actual &&
	echo kept >expect &&
	test_cmp expect actual &&
	test_expect_code 3 ovsnap ls v dup1
'

test_expect_success XATTR 'umount of every attachment leaves no mount behind' '
	for d in A R O P Q O2; do
		if mountpoint -q $d; then ovsnap umount $d || return 1; fi
		! mountpoint -q $d || return 1
	done &&
	ovsnap status --json >status.json &&
	json_assert "d == []" <status.json &&
	! grep -F " $PWD/" /proc/self/mountinfo
'

test_expect_success 'umount of a directory that is not attached fails' '
	mkdir N &&
	test_must_fail ovsnap umount N
'

test_done
