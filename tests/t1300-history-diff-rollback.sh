#!/bin/bash
test_description='history, diff between snapshots, snapshot names (prefixes, head~N) and rollback'
. "$(dirname "$0")/lib.sh"

# diff_lines VOLUME [A [B]]: `ovsnap --json diff` as sorted "C path" lines
diff_lines() {
	ovsnap --json diff "$@" | json "\"\\n\".join(sorted(\"%s %s\" % (e[\"change\"], e[\"path\"]) for e in d))"
}

test_expect_success 'setup: four snapshots that add, modify and delete' '
	ovsnap volume create h &&
	mkdir -p proj/docs &&
	echo a >proj/a && echo b >proj/b && echo readme >proj/docs/readme &&
	touch -d "2020-01-01 00:00:00" proj proj/docs &&
	s1=$(ovsnap put h proj) &&
	echo "a changed" >proj/a && echo c >proj/c &&
	touch -d "2020-01-01 00:00:00" proj &&
	s2=$(ovsnap put h proj) &&
	ovsnap rm h proj/b &&
	s3=$(head_of h) &&
	chmod 0600 proj/c &&
	s4=$(ovsnap put h proj/c proj/c) &&
	for s in "$s1" "$s2" "$s3" "$s4"; do is_snapshot_id "$s" || return 1; done &&
	test "$(history_length h)" -ge 4
'

test_expect_success 'diff with no snapshots compares the head with its parent' '
	diff_lines h >actual &&
	echo "M proj/c" >expect &&
	test_cmp expect actual
'

test_expect_success 'plain diff prints "C path" lines' '
	ovsnap diff h "$s1" "$s2" >plain &&
	sort plain >actual &&
	printf "A proj/c\nM proj/a\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'diff A B reports added and modified files' '
	diff_lines h "$s1" "$s2" >actual &&
	printf "A proj/c\nM proj/a\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'diff reports deleted files' '
	diff_lines h "$s2" "$s3" >actual &&
	echo "D proj/b" >expect &&
	test_cmp expect actual
'

test_expect_success 'a change of mode alone is a modification' '
	diff_lines h "$s3" "$s4" >actual &&
	echo "M proj/c" >expect &&
	test_cmp expect actual
'

test_expect_success 'diff over several snapshots sums the changes; reversed, A and D swap' '
	diff_lines h "$s1" "$s4" >actual &&
	printf "A proj/c\nD proj/b\nM proj/a\n" >expect &&
	test_cmp expect actual &&
	diff_lines h "$s4" "$s1" >actual &&
	printf "A proj/b\nD proj/c\nM proj/a\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'diff shows an added directory (or the files in it) as added' '
	mkdir -p nd/newdir &&
	echo x >nd/newdir/f &&
	ovsnap volume create dirs &&
	echo keep >keep && ovsnap put dirs keep &&
	ovsnap put dirs nd/newdir &&
	diff_lines dirs >actual &&
	grep -x -e "A newdir" -e "A newdir/f" actual &&
	! grep -v "^A newdir" actual &&
	ovsnap rm dirs newdir -r &&
	diff_lines dirs >actual &&
	grep -x -e "D newdir" -e "D newdir/f" actual &&
	! grep -v "^D newdir" actual
'

test_expect_success 'diff of a snapshot with itself is empty' '
	ovsnap diff h "$s2" "$s2" >out &&
	test_must_be_empty out &&
	ovsnap --json diff h "$s2" "$s2" >out.json &&
	json_assert "d == []" <out.json
'

test_expect_success 'diff with one snapshot compares it with the head' '
	diff_lines h "$s3" >actual &&
	echo "M proj/c" >expect &&
	test_cmp expect actual
'

test_expect_success 'head, head~N and unique prefixes name snapshots' '
	diff_lines h head~3 head~2 >by-ancestry &&
	diff_lines h "$s1" "$s2" >by-id &&
	test_cmp by-id by-ancestry &&
	diff_lines h "${s1:0:4}" "${s2:0:10}" >by-prefix &&
	test_cmp by-id by-prefix &&
	diff_lines h head~1 head >a && diff_lines h >b && test_cmp a b
'

test_expect_success 'a prefix shorter than 4 digits, or not hex, is refused' '
	test_must_fail ovsnap diff h "${s1:0:3}" "$s2" 2>err &&
	grep -F "${s1:0:3}" err &&
	test_must_fail ovsnap diff h "xyz0" "$s2" 2>err &&
	grep -F xyz0 err &&
	test_must_fail ovsnap get h proj/a - --at "${s1:0:3}"
'

test_expect_success 'unknown snapshots are "not found"' '
	test_expect_code 3 ovsnap diff h 00000000000000000000000000000000 "$s2" &&
	test_expect_code 3 ovsnap diff h head~99 head &&
	test_expect_code 3 ovsnap ls h --at ffff0000
'

test_expect_success 'a snapshot of another volume is not one of this volume' '
	ovsnap volume create other &&
	echo o >o &&
	o1=$(ovsnap put other o) &&
	test_expect_code 3 ovsnap ls h --at "$o1"
'

test_expect_success 'rollback makes a new snapshot whose tree equals the old one' '
	n=$(history_length h) &&
	r=$(ovsnap rollback h "$s1" | grep -o "[0-9a-f]\{32\}" | head -n 1) &&
	test "$(history_length h)" = $((n + 1)) &&
	head=$(head_of h) &&
	test "$r" = "$head" &&
	test "$head" != "$s1" &&
	ovsnap diff h "$s1" head >out &&
	test_must_be_empty out &&
	ovsnap get h proj/a - >got &&
	echo a >expect && test_cmp expect got &&
	ovsnap get h proj/b - >got &&
	echo b >expect && test_cmp expect got &&
	test_expect_code 3 ovsnap ls h proj/c
'

test_expect_success 'rollback keeps the newer snapshots in the history' '
	ovsnap --json volume history h >h.json &&
	json_assert "d[0][\"parent\"] == \"$s4\"" <h.json &&
	for s in "$s1" "$s2" "$s3" "$s4"
	do
		json_assert "\"$s\" in [x[\"id\"] for x in d]" <h.json || return 1
	done &&
	ovsnap get h proj/c - --at "$s4" >got &&
	echo c >expect && test_cmp expect got
'

test_expect_success 'rollback by head~N, and rolling back the rollback' '
	n=$(history_length h) &&
	ovsnap rollback h head~1 &&
	test "$(history_length h)" = $((n + 1)) &&
	ovsnap diff h "$s4" head >out &&
	test_must_be_empty out &&
	ovsnap get h proj/c - >got &&
	echo c >expect &&
	test_cmp expect got
'

test_expect_success 'rollback to an unknown snapshot changes nothing' '
	n=$(history_length h) &&
	test_expect_code 3 ovsnap rollback h 0123456789abcdef0123456789abcdef &&
	test_expect_code 3 ovsnap rollback h head~500 &&
	test "$(history_length h)" = "$n"
'

test_expect_success 'history shows the message of each snapshot' '
	ovsnap --json volume history h >h.json &&
	json_assert "all(isinstance(s[\"message\"], str) for s in d)" <h.json &&
	json_assert "all(isinstance(s[\"time\"], (int, float, str)) for s in d)" <h.json
'

test_done
