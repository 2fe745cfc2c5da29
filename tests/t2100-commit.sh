#!/bin/bash
test_description='commit: what changed in a mount becomes a new snapshot, merged per path onto the newest one (last writer wins)'
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/attach-lib.sh"

# names VOLUME [PATH]: the names in a directory of the head, one a line, sorted
names() {
	ovsnap --json ls "$@" | json "\"\\n\".join(sorted(e[\"name\"] for e in d))"
}

# head_file VOLUME PATH EXPECTED_FILE: the head's PATH has exactly EXPECTED_FILE's bytes
head_file() {
	ovsnap get "$1" "$2" - >head_file.out &&
	test_cmp_bin "$3" head_file.out
}

test_expect_success 'setup: a volume, two attachments A and B of its head' '
	ovsnap volume create v &&
	mkdir -p src/dir src/dir2/inner src/dir3 src/keepdir &&
	echo x-orig >src/x &&
	echo keep >src/keep &&
	echo one >src/dir/one &&
	echo two >src/dir/two &&
	echo deep >src/dir2/inner/deep &&
	echo moved >src/dir3/m &&
	echo k >src/keepdir/k &&
	echo f >src/file-to-dir &&
	echo same >src/same &&
	ovsnap put v src/ >/dev/null &&
	base=$(head_of v) &&
	mkdir A B &&
	ovsnap mount v A &&
	ovsnap mount v B
'

test_expect_success 'commit of a new file prints the new head id' '
	n=$(history_length v) &&
	echo new >A/new.txt &&
	ovsnap commit A >id &&
	test_line_count = 1 id &&
	is_snapshot_id "$(cat id)" &&
	test "$(cat id)" = "$(head_of v)" &&
	test "$(cat id)" != "$base" &&
	test "$(history_length v)" = $((n + 1)) &&
	echo new >expect &&
	head_file v new.txt expect &&
	test "$(att A dirty)" = false
'

test_expect_success 'OVSNAP_TRACE=1 shows where a commit spends its time; a commit leaves no side file' '
	echo traced >A/traced &&
	OVSNAP_TRACE=1 ovsnap commit A >id 2>trace &&
	is_snapshot_id "$(cat id)" &&
	grep -E "^ovsnap trace: +[0-9.]+ ms  ingest: walked" trace &&
	grep -E "^ovsnap trace: +[0-9.]+ ms  commit: merged" trace &&
	grep -E "^ovsnap trace: +[0-9.]+ ms  commit: manifest saved" trace &&
	echo again >A/traced &&
	ovsnap commit A >id 2>err &&
	test_must_be_empty err &&
	ls "$TEST_STORE/attach/$(att A id)" | grep "^manifest" >manifests &&
	echo manifest.1 >expect &&
	test_cmp expect manifests
'

test_expect_success 'commit with nothing changed prints the head and makes no snapshot' '
	n=$(history_length v) &&
	h=$(head_of v) &&
	ovsnap commit A >id &&
	test "$(cat id)" = "$h" &&
	test "$(history_length v)" = "$n" &&
	ovsnap commit A >id &&
	test "$(cat id)" = "$h" &&
	test "$(history_length v)" = "$n"
'

test_expect_success 'commit of an untouched attachment of an older snapshot changes nothing' '
	n=$(history_length v) &&
	h=$(head_of v) &&
	ovsnap commit B >id &&
	test "$(cat id)" = "$h" &&
	test "$(history_length v)" = "$n" &&
	head_file v new.txt A/new.txt
'

test_expect_success 'commit -m sets the message' '
	echo msg >A/msg.txt &&
	ovsnap commit A -m "model checkpoint 7" >id &&
	ovsnap --json volume history v >hist.json &&
	json_assert "d[0][\"id\"] == \"$(cat id)\" and d[0][\"message\"] == \"model checkpoint 7\"" <hist.json
'

test_expect_success 'two writers committing different files: the head has both' '
	echo from-A >A/a.txt &&
	echo from-B >B/b.txt &&
	ovsnap commit A >/dev/null &&
	ovsnap commit B >/dev/null &&
	names v >actual &&
	grep -x a.txt actual &&
	grep -x b.txt actual &&
	grep -x new.txt actual &&
	grep -x msg.txt actual &&
	echo from-A >expect && head_file v a.txt expect &&
	echo from-B >expect && head_file v b.txt expect
'

test_expect_success 'the same file from two writers: the head has the last committer'"'"'s whole content' '
	random_file content-A 1000000 &&
	random_file content-B 1000000 &&
	cp content-A A/same &&
	cp content-B B/same &&
	ovsnap commit A >/dev/null &&
	head_file v same content-A &&
	ovsnap commit B >/dev/null &&
	head_file v same content-B &&
	random_file content-A2 3000 &&
	cp content-A2 A/same &&
	ovsnap commit A >/dev/null &&
	head_file v same content-A2
'

test_expect_success 'commit merges only what changed since the last commit' '
	echo "A v1" >A/shared &&
	ovsnap commit A >/dev/null &&
	echo "B v2" >B/shared &&
	ovsnap commit B >/dev/null &&
	echo "A other" >A/other &&
	ovsnap commit A >/dev/null &&
	echo "B v2" >expect &&
	head_file v shared expect &&
	echo "A other" >expect &&
	head_file v other expect
'

test_expect_success 'concurrent commits of different files keep both' '
	for i in 1 2 3 4 5 6 7 8; do echo "A$i" >A/ca$i && echo "B$i" >B/cb$i || return 1; done &&
	{ ovsnap commit A >ca.out 2>ca.err & pa=$!; } &&
	{ ovsnap commit B >cb.out 2>cb.err & pb=$!; } &&
	wait $pa && wait $pb &&
	names v >actual &&
	for i in 1 2 3 4 5 6 7 8; do grep -qx ca$i actual && grep -qx cb$i actual || return 1; done &&
	ovsnap fsck
'

test_expect_success 'concurrent commits of the same file: one writer'"'"'s whole content' '
	random_file cc-A 2000000 &&
	random_file cc-B 2000000 &&
	cp cc-A A/cc &&
	cp cc-B B/cc &&
	{ ovsnap commit A >/dev/null & pa=$!; } &&
	{ ovsnap commit B >/dev/null & pb=$!; } &&
	wait $pa && wait $pb &&
	ovsnap get v cc - >got &&
	{ cmp -s got cc-A || cmp -s got cc-B; }
'

test_expect_success 'deleting a file of the lower and committing removes it from the head' '
	rm A/keep &&
	ovsnap commit A >/dev/null &&
	test_expect_code 3 ovsnap ls v keep &&
	test_path_is_file B/keep
'

test_expect_success 'deleting a directory of the lower and committing removes it' '
	rm -rf A/dir2 &&
	ovsnap commit A >/dev/null &&
	test_expect_code 3 ovsnap ls v dir2 &&
	test_expect_code 3 ovsnap ls v dir2/inner/deep
'

test_expect_success 'a directory replaced in the mount (opaque) has only its new entries in the head' '
	rm -rf A/dir &&
	mkdir A/dir &&
	echo new >A/dir/only &&
	ovsnap commit A >/dev/null &&
	names v dir >actual &&
	echo only >expect &&
	test_cmp expect actual &&
	echo new >expect &&
	head_file v dir/only expect
'

test_expect_success 'a file replaced by a directory and a directory replaced by a file' '
	rm A/file-to-dir &&
	mkdir A/file-to-dir &&
	echo inside >A/file-to-dir/inside &&
	rm -rf A/keepdir &&
	echo now-a-file >A/keepdir &&
	ovsnap commit A >/dev/null &&
	ovsnap --json ls v file-to-dir >ls.json &&
	json_assert "[e[\"name\"] for e in d] == [\"inside\"]" <ls.json &&
	echo now-a-file >expect &&
	head_file v keepdir expect
'

test_expect_success 'a directory renamed in the mount is committed under its new name only' '
	mv A/dir3 A/dir3-renamed &&
	ovsnap commit A >/dev/null &&
	test_expect_code 3 ovsnap ls v dir3 &&
	echo moved >expect &&
	head_file v dir3-renamed/m expect
'

test_expect_success XATTR 'metadata changes are committed exactly (modes, owners, times, xattrs, links, fifos)' '
	mkdir D &&
	ovsnap mount v D &&
	echo appended >>D/x &&
	chmod 0604 D/same &&
	chown 4242:4343 D/new.txt &&
	setfattr -n user.tag -v v1 D/msg.txt &&
	setfattr -n user.dir -v d D/dir &&
	touch -d "2011-11-11 11:11:11.111111111" D/a.txt &&
	ln -s a.txt D/link-to-a &&
	ln -s /nowhere D/dangling &&
	mkdir -p D/deep/er/est &&
	echo deep >D/deep/er/est/f &&
	chmod 0711 D/deep/er &&
	ln D/deep/er/est/f D/hard-f &&
	setfattr -n user.linked -v both-names D/hard-f &&
	ln D/b.txt D/b-link &&
	mkfifo D/fifo &&
	: >D/empty &&
	truncate -s 0 D/other &&
	chmod 4755 D/empty &&
	touch -d "2003-03-03 03:03:03" D/deep &&
	h=$(head_of v) &&
	ovsnap commit D >id &&
	test "$(cat id)" != "$h" &&
	same_tree v head D &&
	grep -F "hardlinks: b'"'"'b-link'"'"' = b'"'"'b.txt'"'"'" want.manifest.full &&
	grep -F "hardlinks: b'"'"'deep/er/est/f'"'"' = b'"'"'hard-f'"'"'" want.manifest.full &&
	test_line_count = 2 <(grep "^hardlinks: " want.manifest.full) &&
	ovsnap get v deep/er/est/f linked-out &&
	test "$(getfattr --only-values -n user.linked linked-out)" = both-names
'

test_expect_success XATTR 'a fresh mount of the committed head equals the committing mount' '
	mkdir C &&
	ovsnap mount v C &&
	tree_manifest D | sed -e 1d -e "s/ nlink=[0-9]*//" -e "/^hardlinks: /d" >expect &&
	tree_manifest C | sed -e 1d -e "s/ nlink=[0-9]*//" -e "/^hardlinks: /d" >actual &&
	test_cmp expect actual
'

test_expect_success 'a renamed-back file with its directory time restored is no change' '
	mkdir -p A/stable &&
	echo s >A/stable/s &&
	ovsnap commit A >/dev/null &&
	ovsnap umount A && ovsnap mount v A &&
	t=$(stat -c %y A/stable) &&
	mv A/stable/s A/stable/s2 &&
	mv A/stable/s2 A/stable/s &&
	touch -d "$t" A/stable &&
	h=$(head_of v) &&
	n=$(history_length v) &&
	ovsnap commit A >id &&
	test "$(cat id)" = "$h" &&
	test "$(history_length v)" = "$n"
'

test_expect_success 'a file larger than memory pages and many small files commit intact' '
	random_file A/big.bin 8000000 &&
	mkdir A/many &&
	for i in $(seq 1 300); do echo "$i" >A/many/f$i || return 1; done &&
	ovsnap commit A >/dev/null &&
	head_file v big.bin A/big.bin &&
	test "$(names v many | wc -l)" = 300 &&
	echo 137 >expect &&
	head_file v many/f137 expect &&
	ovsnap fsck
'

test_expect_success 'commit of a directory that is not attached fails' '
	mkdir N &&
	test_must_fail ovsnap commit N &&
	test_must_fail ovsnap commit does-not-exist
'

test_done
