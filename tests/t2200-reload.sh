#!/bin/bash
test_description='reload: remount on the newest snapshot; uncommitted changes survive and shadow other writers'
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/attach-lib.sh"

# reload_to_head DIR: reload DIR; it prints the head id, DIR stays one mount
reload_to_head() {
	ovsnap reload "$1" >reload.id &&
	test_line_count = 1 reload.id &&
	test "$(cat reload.id)" = "$(head_of v)" &&
	test "$(att "$1" snapshot)" = "$(cat reload.id)" &&
	test "$(mounts_at "$1")" = 1
}

test_expect_success 'setup: volume v, attachments A and B of its head' '
	ovsnap volume create v &&
	mkdir -p src/dir src/gone-dir/sub &&
	echo "x orig" >src/x &&
	echo "y orig" >src/y &&
	echo z >src/z &&
	echo keep >src/keep &&
	echo one >src/dir/one &&
	echo g >src/gone-dir/sub/g &&
	ovsnap put v src/ >/dev/null &&
	mkdir A B &&
	ovsnap mount v A &&
	ovsnap mount v B
'

test_expect_success 'Modal: a file B commits shows up in A only after A reloads, with B'"'"'s content' '
	test_path_is_missing A/bar.txt &&
	echo "bar from B" >B/bar.txt &&
	ovsnap commit B >/dev/null &&
	test_path_is_missing A/bar.txt &&
	reload_to_head A &&
	test_path_is_file A/bar.txt &&
	test_cmp B/bar.txt A/bar.txt
'

test_expect_success 'reload with nothing new prints the same head and changes nothing' '
	h=$(head_of v) &&
	reload_to_head A &&
	test "$(cat reload.id)" = "$h" &&
	reload_to_head A &&
	same_tree v head A
'

test_expect_success 'uncommitted changes survive a reload and shadow the other writer' '
	echo "x by A, uncommitted" >A/x &&
	echo "A-only scratch" >A/scratch &&
	rm A/keep &&
	echo "x by B" >B/x &&
	echo "B new" >B/b-new &&
	ovsnap commit B >/dev/null &&
	reload_to_head A &&
	echo "x by A, uncommitted" >expect &&
	test_cmp expect A/x &&
	echo "A-only scratch" >expect &&
	test_cmp expect A/scratch &&
	test_path_is_missing A/keep &&
	echo "B new" >expect &&
	test_cmp expect A/b-new &&
	test "$(att A dirty)" = true
'

test_expect_success 'an uncommitted opaque directory survives a reload' '
	rm -rf A/dir &&
	mkdir A/dir &&
	echo mine >A/dir/mine &&
	echo "B adds" >B/dir/b-adds &&
	ovsnap commit B >/dev/null &&
	reload_to_head A &&
	ls A/dir >actual &&
	echo mine >expect &&
	test_cmp expect actual
'

test_expect_success 'committing after the reload makes A'"'"'s versions the head' '
	ovsnap commit A >/dev/null &&
	echo "x by A, uncommitted" >expect &&
	ovsnap get v x - >actual &&
	test_cmp expect actual &&
	test_expect_code 3 ovsnap ls v keep &&
	ovsnap --json ls v dir | json "[e[\"name\"] for e in d]" >actual &&
	echo "[\"mine\"]" >expect &&
	test_cmp expect actual &&
	ovsnap get v b-new - >actual &&
	echo "B new" >expect &&
	test_cmp expect actual
'

test_expect_success 'after A commits a file and B commits a newer version, A'"'"'s reload shows B'"'"'s' '
	echo "y by A" >A/y &&
	ovsnap commit A >/dev/null &&
	reload_to_head B &&
	echo "y by A" >expect &&
	test_cmp expect B/y &&
	echo "y by B, newer" >B/y &&
	ovsnap commit B >/dev/null &&
	reload_to_head A &&
	echo "y by B, newer" >expect &&
	test_cmp expect A/y &&
	same_tree v head A &&
	test "$(att A dirty)" = false
'

test_expect_success 'a file another writer deletes disappears from A on reload' '
	rm B/z &&
	rm -rf B/gone-dir &&
	ovsnap commit B >/dev/null &&
	test_path_is_file A/z &&
	reload_to_head A &&
	test_path_is_missing A/z &&
	test_path_is_missing A/gone-dir &&
	same_tree v head A
'

test_expect_success 'an uncommitted edit of a file another writer deletes keeps A'"'"'s edit' '
	echo "edited by A" >>A/y &&
	cp A/y expect &&
	rm B/y &&
	ovsnap commit B >/dev/null &&
	reload_to_head A &&
	test_cmp expect A/y &&
	ovsnap commit A >/dev/null &&
	ovsnap get v y - >actual &&
	test_cmp expect actual
'

test_expect_success XATTR 'reload follows every kind of change exactly (delta layers), more times than a layer stack is deep' '
	mkdir -p w/d1/d2 w/rep w/todir &&
	echo 1 >w/f1 && echo 2 >w/d1/f2 && echo 3 >w/d1/d2/f3 && echo r >w/rep/r &&
	echo t >w/tofile && echo s >w/todir/s &&
	ovsnap put v w >/dev/null &&
	reload_to_head A &&
	same_tree v head A &&
	for step in 1 2 3 4 5 6 7 8 9 10 11 12; do
		case $step in
		1) echo changed >w/f1 && ovsnap put v w >/dev/null ;;
		2) rm w/d1/d2/f3 && ovsnap rm v w/d1/d2/f3 >/dev/null ;;
		3) rm -r w/d1 && ovsnap rm -r v w/d1 >/dev/null ;;
		4) rm -rf w/tofile && mkdir w/tofile && echo inner >w/tofile/inner && ovsnap put v w >/dev/null ;;
		5) rm -r w/todir && echo now-file >w/todir && ovsnap rm -r v w/todir >/dev/null && ovsnap put v w/todir w/todir >/dev/null ;;
		6) chmod 0600 w/f1 && chown 7:8 w/f1 && touch -d "2012-12-12 12:12:12.5" w/f1 && ovsnap put v w >/dev/null ;;
		7) setfattr -n user.k -v v w/f1 && ovsnap put v w >/dev/null ;;
		8) ln -sf f1 w/sym && ln w/f1 w/f1-hard && ovsnap put v w >/dev/null ;;
		9) rm -r w/rep && mkdir w/rep && echo only >w/rep/only && ovsnap rm -r v w/rep >/dev/null && ovsnap put v w >/dev/null ;;
		10) ovsnap cp v w/tofile w/tofile-copy >/dev/null ;;
		11) ovsnap rollback v head~5 >/dev/null ;;
		12) head -c 100000 /dev/urandom >w/f1 && ovsnap put v w >/dev/null ;;
		esac || { echo "step $step: changing the volume failed"; return 1; }
		reload_to_head A || { echo "step $step: reload"; return 1; }
		same_tree v head A || { echo "step $step: A differs from the head"; return 1; }
	done
'

test_expect_success XATTR 'a fresh mount of the head equals the many-times reloaded one' '
	mkdir F &&
	ovsnap mount v F &&
	tree_manifest A | sed -e 1d -e "s/ nlink=[0-9]*//" -e "/^hardlinks: /d" >expect &&
	tree_manifest F | sed -e 1d -e "s/ nlink=[0-9]*//" -e "/^hardlinks: /d" >actual &&
	test_cmp expect actual
'

test_expect_success 'reload of a read-only mount moves it to the head' '
	mkdir R &&
	ovsnap mount v R --ro &&
	echo "new for R" >B/for-r &&
	ovsnap commit B >/dev/null &&
	test_path_is_missing R/for-r &&
	reload_to_head R &&
	test_cmp B/for-r R/for-r &&
	test_must_fail touch R/again 2>err &&
	grep -i "read-only file system" err &&
	test "$(att R readonly)" = true
'

test_expect_success 'reload of an attachment mounted --at an old snapshot moves it to the head' '
	mkdir O &&
	ovsnap mount v O --at head~3 &&
	test "$(att O snapshot)" != "$(head_of v)" &&
	reload_to_head O &&
	same_tree v head O
'

test_expect_success 'reload of a directory that is not attached fails and mounts nothing' '
	mkdir N &&
	test_must_fail ovsnap reload N &&
	! mountpoint -q N &&
	test_must_fail ovsnap reload does-not-exist
'

test_expect_success 'umount after reloads leaves no mount behind' '
	for d in A B F R O; do ovsnap umount $d || return 1; done &&
	! grep -F " $PWD/" /proc/self/mountinfo
'

test_done
