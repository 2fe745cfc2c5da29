#!/bin/bash
test_description='many writers committing at once through their own mounts of one volume: nothing lost, nothing mixed'
. "$(dirname "$0")/lib.sh"

# writer N ROUNDS: in mount mN, ROUNDS times: write a new file of its own, commit; every failure
# (with its exit status and message) goes to fail.N
writer() {
	local n=$1 i rc
	: >"fail.$n"
	for i in $(seq 1 "$2"); do
		echo "writer $n commit $i" >"m$n/w$n-$i" || { echo "write $i failed" >>"fail.$n"; return 1; }
		ovsnap commit "m$n" >/dev/null 2>"err.$n"
		rc=$?
		[ "$rc" = 0 ] || { echo "commit $i: exit $rc: $(cat "err.$n")" >>"fail.$n"; return 1; }
	done
}

# racer LETTER ROUNDS: in mount rLETTER, ROUNDS times: write 1 MB of LETTER (a fresh copy each
# time, so every round is a change) to the shared path, commit
racer() {
	local l=$1 i rc
	: >"fail.$l"
	for i in $(seq 1 "$2"); do
		rm -f "r$l/same" &&
		cp "$l.1m" "r$l/same" || { echo "write $i failed" >>"fail.$l"; break; }
		ovsnap commit "r$l" >/dev/null 2>"err.$l"
		rc=$?
		[ "$rc" = 0 ] || { echo "commit $i: exit $rc: $(cat "err.$l")" >>"fail.$l"; break; }
	done
	: >"done.$l"
	test_must_be_empty "fail.$l"
}

# one_writer FILE: FILE is exactly 1 MB of one racer's letter
one_writer() {
	local -; set +x
	local size first rest
	size=$(wc -c <"$1") &&
	first=$(head -c 1 "$1") &&
	rest=$(tr -d "$first" <"$1" | wc -c) &&
	case $first in [A-F]) ;; *) echo "$1 starts with '$first'"; return 1 ;; esac &&
	test "$size" = 1048576 || { echo "$1 has $size bytes"; return 1; }
	test "$rest" = 0 || { echo "$1: $rest bytes are not '$first' (a mix of writers)"; return 1; }
}

test_expect_success 'setup: a volume with a file, 8 mounts of it' '
	ovsnap volume create v &&
	echo base >base &&
	ovsnap put v base >/dev/null &&
	for n in 1 2 3 4 5 6 7 8; do
		mkdir m$n && ovsnap mount v m$n >/dev/null || return 1
	done &&
	ovsnap status >status &&
	test "$(grep -c " $PWD/m[1-8]\$" status)" = 8
'

test_expect_success '8 writers x 25 commits of their own files at once: the head has all 200' '
	n0=$(history_length v) &&
	pids= &&
	for n in 1 2 3 4 5 6 7 8; do
		{ writer $n 25 & pids="$pids $!"; } || return 1
	done &&
	test_bg_pid $pids &&
	for p in $pids; do wait $p || { cat fail.*; return 1; }; done &&
	cat fail.* >failures &&
	test_must_be_empty failures &&
	ovsnap --json ls v >ls.json &&
	json_assert "sorted(e[\"name\"] for e in d if e[\"name\"].startswith(\"w\")) == sorted(\"w%d-%d\" % (n, i) for n in range(1, 9) for i in range(1, 26))" <ls.json &&
	rm -rf all &&
	ovsnap get v . all &&
	for n in 1 2 3 4 5 6 7 8; do
		for i in $(seq 1 25); do
			echo "writer $n commit $i" >expect &&
			test_cmp expect all/w$n-$i || return 1
		done
	done &&
	test_cmp base all/base &&
	test "$(history_length v)" = $((n0 + 200)) &&
	ovsnap fsck
'

test_expect_success 'a mount that reloads after the storm sees every file' '
	ovsnap reload m1 >/dev/null &&
	test "$(ls m1 | grep -c "^w")" = 200 &&
	echo "writer 8 commit 25" >expect &&
	test_cmp expect m1/w8-25
'

test_expect_success 'setup: 6 more mounts, each with 1 MB of its own letter' '
	for l in A B C D E F; do
		head -c 1048576 /dev/zero | tr "\0" "$l" >$l.1m &&
		mkdir r$l && ovsnap mount v r$l >/dev/null || return 1
	done &&
	one_writer A.1m && one_writer F.1m
'

test_expect_success '6 writers racing on one path, 5 rounds each: every snapshot holds one writer'"'"'s whole file' '
	ovsnap put v A.1m same >/dev/null &&
	n0=$(history_length v) &&
	rm -f done.* &&
	pids= &&
	for l in A B C D E F; do
		{ racer $l 5 & pids="$pids $!"; } || return 1
	done &&
	test_bg_pid $pids &&
	gets=0 &&
	while test "$(ls done.* 2>/dev/null | wc -l)" != 6
	do
		ovsnap get v same - >got.live &&
		one_writer got.live &&
		gets=$((gets + 1)) || return 1
	done &&
	for p in $pids; do wait $p || { cat fail.[A-F]; return 1; }; done &&
	cat fail.[A-F] >failures &&
	test_must_be_empty failures &&
	echo "read the file $gets times during the race" &&
	ovsnap get v same - >got &&
	one_writer got &&
	ovsnap --json volume history v >hist.json &&
	json "\"\\n\".join(s[\"id\"] for s in d[:30])" <hist.json >ids &&
	test "$(history_length v)" = $((n0 + 30)) &&
	while read -r id
	do
		ovsnap get v same - --at $id >got.$id &&
		one_writer got.$id || return 1
	done <ids &&
	ovsnap fsck
'

test_expect_success 'two racers on a new path, then one more commit: the last writer wins' '
	cp A.1m rA/same.2 &&
	cp B.1m rB/same.2 &&
	{ ovsnap commit rA >/dev/null & pa=$!; } &&
	{ ovsnap commit rB >/dev/null & pb=$!; } &&
	wait $pa && wait $pb &&
	ovsnap get v same.2 - >got &&
	one_writer got &&
	cp A.1m rA/same.2.tmp && mv rA/same.2.tmp rA/same.2 &&
	ovsnap commit rA >/dev/null &&
	ovsnap get v same.2 - >got &&
	test_cmp_bin A.1m got
'

test_expect_success 'clean up: every mount detaches, fsck and gc agree' '
	for m in m1 m2 m3 m4 m5 m6 m7 m8 rA rB rC rD rE rF; do
		ovsnap umount $m || return 1
	done &&
	ovsnap gc >/dev/null &&
	ovsnap --json fsck >fsck.json &&
	json_assert "d[\"problems\"] == [] and d[\"garbage_objects\"] == 0" <fsck.json &&
	! grep -F " $PWD/" /proc/self/mountinfo
'

test_done
