#!/bin/bash
test_description='ls, rm and cp inside a volume'
. "$(dirname "$0")/lib.sh"

# ls_names VOLUME [ARGS...]: the names `ovsnap --json ls` gives, one a line, sorted
ls_names() {
	ovsnap --json ls "$@" | json "\"\\n\".join(sorted(e[\"name\"] for e in d))"
}

test_expect_success 'setup: a volume with files, a directory, a symlink and a fifo' '
	ovsnap volume create v &&
	mkdir -p tree/dir/inner &&
	printf "12345" >tree/five &&
	printf "0123456789" >tree/dir/ten &&
	head -c 1048576 /dev/urandom >tree/dir/inner/mib &&
	ln -s five tree/link &&
	mkfifo tree/pipe &&
	chmod 0750 tree/dir &&
	chmod 0604 tree/five &&
	ovsnap put v tree t &&
	first=$(head_of v)
'

test_expect_success 'ls of the root lists the top-level entries' '
	ls_names v >actual &&
	echo t >expect &&
	test_cmp expect actual &&
	ovsnap ls v >plain &&
	grep -x "t/\{0,1\}" plain
'

test_expect_success 'ls of a directory lists its entries, not deeper ones' '
	ls_names v t >actual &&
	printf "dir\nfive\nlink\npipe\n" >expect &&
	test_cmp expect actual &&
	ls_names v t/ >actual &&
	test_cmp expect actual &&
	ovsnap ls v t >plain &&
	for n in dir five link pipe; do grep -q "^$n" plain || return 1; done &&
	! grep -q ten plain
'

test_expect_success 'ls --json gives type, mode and size of each entry' '
	ovsnap --json ls v t >ls.json &&
	json_assert "{e[\"name\"]: e[\"type\"] for e in d} == {\"dir\": \"dir\", \"five\": \"file\", \"link\": \"symlink\", \"pipe\": \"fifo\"}" <ls.json &&
	json_assert "[e[\"size\"] for e in d if e[\"name\"] == \"five\"] == [5]" <ls.json &&
	json_assert "[e[\"mode\"] & 0o7777 if isinstance(e[\"mode\"], int) else int(e[\"mode\"], 8) & 0o7777 for e in d if e[\"name\"] == \"five\"] == [0o604]" <ls.json &&
	json_assert "[e[\"mode\"] & 0o7777 if isinstance(e[\"mode\"], int) else int(e[\"mode\"], 8) & 0o7777 for e in d if e[\"name\"] == \"dir\"] == [0o750]" <ls.json
'

test_expect_success 'ls -l shows modes like ls(1) and sizes' '
	ovsnap ls v t -l >long &&
	grep "^-rw----r--.* 5 .*five" long &&
	grep "^drwxr-x---.*dir" long &&
	grep "^l.*link" long &&
	grep "^p.*pipe" long
'

test_expect_success 'ls of a file shows just that file' '
	ovsnap --json ls v t/dir/ten >ls.json &&
	json_assert "[(e[\"name\"], e[\"type\"], e[\"size\"]) for e in d] == [(\"ten\", \"file\", 10)]" <ls.json
'

test_expect_success 'ls of a missing path is "not found"' '
	test_expect_code 3 ovsnap ls v t/nope 2>err &&
	grep -F "t/nope" err &&
	test_expect_code 3 ovsnap ls v t/five/below
'

test_expect_success 'rm of a file makes a new snapshot without it; the old one keeps it' '
	n=$(history_length v) &&
	ovsnap rm v t/five &&
	test "$(history_length v)" = $((n + 1)) &&
	test_expect_code 3 ovsnap ls v t/five &&
	ls_names v t >actual &&
	printf "dir\nlink\npipe\n" >expect &&
	test_cmp expect actual &&
	ovsnap get v t/five - --at head~1 >got &&
	printf 12345 >expect &&
	test_cmp expect got &&
	ls_names v t --at "$first" >actual &&
	printf "dir\nfive\nlink\npipe\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'rm of a directory needs -r and then removes the whole subtree' '
	n=$(history_length v) &&
	test_must_fail ovsnap rm v t/dir 2>err &&
	grep -F "t/dir" err &&
	test "$(history_length v)" = "$n" &&
	ovsnap ls v t/dir/inner/mib &&
	ovsnap rm v t/dir -r &&
	test "$(history_length v)" = $((n + 1)) &&
	test_expect_code 3 ovsnap ls v t/dir &&
	test_expect_code 3 ovsnap ls v t/dir/inner/mib
'

test_expect_success 'rm of a missing path is "not found" and makes no snapshot' '
	n=$(history_length v) &&
	test_expect_code 3 ovsnap rm v t/never &&
	test_expect_code 3 ovsnap rm v never/deeper -r &&
	test "$(history_length v)" = "$n"
'

test_expect_success 'a symlink is removed, not what it points to' '
	ovsnap put v tree/five t/five &&
	ovsnap rm v t/link &&
	test_expect_code 3 ovsnap ls v t/link &&
	ovsnap ls v t/five
'

test_expect_success 'setup: put a fresh tree for cp' '
	ovsnap put v tree c
'

test_expect_success 'cp of a file gives an equal file under the new name, with its metadata' '
	ovsnap cp v c/five c/five-copy &&
	ovsnap get v c/five-copy five-copy &&
	test_cmp tree/five five-copy &&
	test "$(stat -c "%a %Y" five-copy)" = "$(stat -c "%a %Y" tree/five)"
'

test_expect_success 'cp of a directory copies the whole subtree' '
	ovsnap cp v c/dir c/dir-copy &&
	ovsnap get v c/dir-copy dir-copy &&
	tree_manifest tree/dir >expect &&
	tree_manifest dir-copy >actual &&
	test_cmp expect actual
'

test_expect_success 'cp is cheap: the contents are not stored again' '
	before=$(content_bytes) &&
	ovsnap cp v c/dir/inner/mib mib-copy &&
	ovsnap cp v c c2 &&
	after=$(content_bytes) &&
	echo "content bytes: before $before after $after" &&
	test "$before" -ge 1048576 &&
	test $((after - before)) -le 4096 &&
	ovsnap get v mib-copy - >got &&
	test_cmp_bin tree/dir/inner/mib got &&
	ovsnap get v c2/dir/inner/mib - >got &&
	test_cmp_bin tree/dir/inner/mib got
'

test_expect_success 'cp of several sources into an existing directory' '
	ovsnap cp v c/five c/link c/dir c2/dir/inner &&
	ls_names v c2/dir/inner >actual &&
	printf "dir\nfive\nlink\nmib\n" >expect &&
	test_cmp expect actual &&
	ovsnap --json ls v c2/dir/inner/link >ls.json &&
	json_assert "d[0][\"type\"] == \"symlink\"" <ls.json
'

test_expect_success 'cp to a name ending in / puts the source inside that directory' '
	ovsnap cp v c/five c/dir/ &&
	ovsnap get v c/dir/five - >got &&
	test_cmp tree/five got
'

test_expect_success 'a copy is independent: changing it leaves the original alone' '
	echo "changed" >changed &&
	ovsnap put v changed c/five-copy &&
	ovsnap get v c/five - >got &&
	test_cmp tree/five got &&
	ovsnap rm v c/dir-copy -r &&
	ovsnap get v c/dir/ten - >got &&
	test_cmp tree/dir/ten got
'

test_expect_success 'cp of a missing source is "not found" and makes no snapshot' '
	n=$(history_length v) &&
	test_expect_code 3 ovsnap cp v c/nope c/x &&
	test "$(history_length v)" = "$n"
'

test_done
