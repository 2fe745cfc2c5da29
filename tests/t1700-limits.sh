#!/bin/bash
test_description='the inode limit of a volume, and a full disk: exit 5, history unchanged'
. "$(dirname "$0")/lib.sh"

# many_files DIR N: DIR with N small files
many_files() {
	mkdir -p "$1" &&
	for i in $(seq 1 "$2"); do echo "$i" >"$1/f$i" || return 1; done
}

test_expect_success 'setup: a volume limited to 10 inodes' '
	ovsnap volume create small --max-inodes 10 &&
	many_files twenty 20 &&
	many_files five 5
'

test_expect_success 'putting 20 files into it fails with exit 5 naming the inode limit' '
	n=$(history_length small) &&
	test_expect_code 5 ovsnap put small twenty 2>err &&
	grep -i inode err &&
	grep -F 10 err &&
	test "$(history_length small)" = "$n" &&
	test_expect_code 3 ovsnap ls small twenty
'

test_expect_success 'a tree within the limit fits' '
	ovsnap put small five &&
	ovsnap --json ls small five >ls.json &&
	json_assert "len(d) == 5" <ls.json
'

test_expect_success 'a put that would cross the limit fails and keeps what was there' '
	head=$(head_of small) &&
	many_files six-more 6 &&
	test_expect_code 5 ovsnap put small six-more 2>err &&
	grep -i inode err &&
	test "$(head_of small)" = "$head" &&
	ovsnap get small five/f3 - >got &&
	echo 3 >expect &&
	test_cmp expect got
'

test_expect_success 'cp is limited too, though it stores no new content' '
	head=$(head_of small) &&
	test_expect_code 5 ovsnap cp small five five-copy 2>err &&
	grep -i inode err &&
	test "$(head_of small)" = "$head"
'

test_expect_success 'stdin puts count against the limit one by one' '
	ovsnap volume create tiny --max-inodes 2 &&
	echo 1 | ovsnap put tiny - one &&
	echo 2 | ovsnap put tiny - two &&
	n=$(history_length tiny) &&
	echo 3 | test_expect_code 5 ovsnap put tiny - three &&
	test "$(history_length tiny)" = "$n" &&
	echo 3 | ovsnap put tiny - two &&
	ovsnap get tiny two - >got &&
	echo 3 >expect &&
	test_cmp expect got
'

test_expect_success 'removing files makes room again' '
	ovsnap rm small five -r &&
	ovsnap put small six-more &&
	ovsnap --json ls small six-more >ls.json &&
	json_assert "len(d) == 6" <ls.json
'

test_expect_success 'the default limit lets an ordinary tree in' '
	ovsnap volume create roomy &&
	ovsnap put roomy twenty &&
	ovsnap --json ls roomy twenty >ls.json &&
	json_assert "len(d) == 20" <ls.json
'

test_expect_success TMPFS_MOUNT 'a full disk: put fails with exit 5, the volume and the store stay sound' '
	mkdir small-disk &&
	mount -t tmpfs -o size=2m ovsnap-test small-disk &&
	test_when_finished "umount small-disk" &&
	OVSNAP_ROOT=$PWD/small-disk/store &&
	ovsnap volume create full &&
	echo first >first &&
	ovsnap put full first &&
	head=$(head_of full) &&
	random_file huge $((4 * 1048576)) &&
	test_expect_code 5 ovsnap put full huge 2>err &&
	grep -i -e space -e full err &&
	test "$(head_of full)" = "$head" &&
	ovsnap get full first - >got &&
	test_cmp first got &&
	ovsnap fsck &&
	ovsnap gc &&
	random_file fits 100000 &&
	ovsnap put full fits &&
	ovsnap get full fits - >got &&
	cmp fits got
'

test_done
