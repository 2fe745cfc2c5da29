#!/bin/bash
test_description='volume create, list, delete and history; volume names'
. "$(dirname "$0")/lib.sh"

test_expect_success 'a created volume shows in the list, empty' '
	ovsnap volume create data &&
	ovsnap volume list >out &&
	grep -w data out &&
	ovsnap --json volume list >list.json &&
	json_assert "[v[\"name\"] for v in d] == [\"data\"]" <list.json &&
	json_assert "all(k in d[0] for k in (\"name\", \"head\", \"files\", \"bytes\"))" <list.json &&
	json_assert "d[0][\"files\"] == 0 and d[0][\"bytes\"] == 0" <list.json
'

test_expect_success 'creating a volume that exists fails and names it' '
	test_must_fail ovsnap volume create data 2>err &&
	grep -F data err &&
	ovsnap --json volume list >list.json &&
	json_assert "len(d) == 1" <list.json
'

test_expect_success 'valid volume names are accepted' '
	long=$(printf "%064d" 7) &&
	for name in a Z 0 A-b_c.9 x.y.z "$long" data-2 "_u" "a-"
	do
		ovsnap volume create "$name" || { echo "refused: $name"; return 1; }
	done &&
	ovsnap --json volume list >list.json &&
	json_assert "len(d) == 10" <list.json &&
	json_assert "\"$long\" in [v[\"name\"] for v in d]" <list.json
'

test_expect_success 'invalid volume names are usage errors and create nothing' '
	ls -R "$OVSNAP_ROOT" >before &&
	long=$(printf "%065d" 7) &&
	for name in "" . .. .hidden -x "a/b" "../x" "a b" "$long" "é" "a:b" "a*" "a\\b" "$(printf "a\nb")" "/abs"
	do
		test_expect_code 2 ovsnap volume create "$name" 2>err ||
			{ echo "accepted or wrong code: [$name]"; return 1; }
	done &&
	ls -R "$OVSNAP_ROOT" >after &&
	test_cmp before after &&
	test_path_is_missing x &&
	test_path_is_missing "$OVSNAP_ROOT/x"
'

test_expect_success 'every command refuses an invalid volume name with a usage error' '
	test_expect_code 2 ovsnap ls ../data &&
	test_expect_code 2 ovsnap volume history .data &&
	test_expect_code 2 ovsnap volume delete -data &&
	echo x | test_expect_code 2 ovsnap put "a/b" - x &&
	test_expect_code 2 ovsnap get ../data x -
'

test_expect_success 'an unknown volume is "not found" (exit 3) for every command' '
	echo hi >f &&
	test_expect_code 3 ovsnap volume history nosuch 2>err &&
	grep -F nosuch err &&
	test_expect_code 3 ovsnap volume delete nosuch &&
	test_expect_code 3 ovsnap put nosuch f &&
	test_expect_code 3 ovsnap get nosuch f got-nosuch &&
	test_expect_code 3 ovsnap ls nosuch &&
	test_expect_code 3 ovsnap rm nosuch f &&
	test_expect_code 3 ovsnap cp nosuch f g &&
	test_expect_code 3 ovsnap diff nosuch &&
	test_expect_code 3 ovsnap rollback nosuch head &&
	test_path_is_missing got-nosuch
'

test_expect_success 'a new volume has no snapshots to show' '
	ovsnap --json volume history data >h.json &&
	json_assert "isinstance(d, list) and all(s[\"files\"] == 0 for s in d)" <h.json
'

test_expect_success 'each put adds one snapshot, newest first, chained by parent' '
	n0=$(history_length data) &&
	echo one >one.txt && echo two-two >two.txt && echo three-3-3 >three.txt &&
	id1=$(ovsnap put data one.txt) &&
	id2=$(ovsnap put data two.txt) &&
	id3=$(ovsnap put data three.txt) &&
	is_snapshot_id "$id1" && is_snapshot_id "$id2" && is_snapshot_id "$id3" &&
	ovsnap --json volume history data >h.json &&
	json_assert "len(d) == $n0 + 3" <h.json &&
	json_assert "[s[\"id\"] for s in d[:3]] == [\"$id3\", \"$id2\", \"$id1\"]" <h.json &&
	json_assert "d[0][\"parent\"] == \"$id2\" and d[1][\"parent\"] == \"$id1\"" <h.json &&
	json_assert "all(k in s for s in d for k in (\"id\", \"parent\", \"time\", \"files\", \"bytes\", \"message\"))" <h.json &&
	json_assert "not d[-1][\"parent\"]" <h.json
'

test_expect_success 'history counts the files and bytes of each snapshot' '
	ovsnap --json volume history data >h.json &&
	json_assert "(d[0][\"files\"], d[0][\"bytes\"]) == (3, 4 + 8 + 10)" <h.json &&
	json_assert "(d[1][\"files\"], d[1][\"bytes\"]) == (2, 4 + 8)" <h.json &&
	json_assert "(d[2][\"files\"], d[2][\"bytes\"]) == (1, 4)" <h.json
'

test_expect_success 'history times do not go backwards' '
	ovsnap --json volume history data >h.json &&
	json_assert "[s[\"time\"] for s in d] == sorted((s[\"time\"] for s in d), reverse=True)" <h.json
'

test_expect_success 'plain history shows every snapshot id, newest first' '
	ovsnap volume history data >h.txt &&
	ovsnap --json volume history data | json "\"\\n\".join(s[\"id\"] for s in d)" >ids &&
	test_line_count -ge 3 ids &&
	last=0 &&
	for id in $(cat ids)
	do
		line=$(awk -v id="$id" "length(\$1) >= 8 && index(id, \$1) == 1 { print NR; exit }" h.txt) &&
		[ -n "$line" ] && [ "$line" -gt "$last" ] || { echo "$id missing or out of order"; return 1; }
		last=$line
	done
'

test_expect_success 'the list shows the head snapshot and its totals' '
	ovsnap --json volume list >list.json &&
	head=$(head_of data) &&
	json_assert "[(v[\"head\"], v[\"files\"], v[\"bytes\"]) for v in d if v[\"name\"] == \"data\"] == [(\"$head\", 3, 22)]" <list.json &&
	ovsnap volume list >list.txt &&
	grep -w data list.txt | grep -q "${head:0:8}"
'

test_expect_success 'deleting a volume forgets it; its neighbours stay' '
	ovsnap volume create data2 &&
	echo keep | ovsnap put data2 - keep.txt &&
	ovsnap volume delete data &&
	ovsnap --json volume list >list.json &&
	json_assert "\"data\" not in [v[\"name\"] for v in d]" <list.json &&
	json_assert "\"data2\" in [v[\"name\"] for v in d]" <list.json &&
	test_expect_code 3 ovsnap ls data &&
	test_expect_code 3 ovsnap volume history data &&
	ovsnap get data2 keep.txt - >got &&
	echo keep >expect &&
	test_cmp expect got
'

test_expect_success 'a deleted name can be created again, and starts empty' '
	ovsnap volume create data &&
	ovsnap --json ls data >ls.json &&
	json_assert "d == []" <ls.json &&
	ovsnap --json volume history data >h.json &&
	json_assert "all(s[\"files\"] == 0 for s in d)" <h.json &&
	test_expect_code 3 ovsnap get data one.txt -
'

test_expect_success 'deleting twice: the second time is "not found"' '
	ovsnap volume create gone &&
	ovsnap volume delete gone &&
	test_expect_code 3 ovsnap volume delete gone
'

test_expect_success '--max-inodes must be a positive number' '
	for n in 0 -1 abc 10x "" 99999999999999999999999
	do
		test_expect_code 2 ovsnap volume create lim --max-inodes "$n" ||
			{ echo "accepted --max-inodes [$n]"; return 1; }
	done &&
	test_expect_code 3 ovsnap ls lim &&
	ovsnap volume create lim --max-inodes 7 &&
	ovsnap ls lim
'

test_expect_success 'volumes are independent: a put into one does not show in another' '
	ovsnap volume create left &&
	ovsnap volume create right &&
	echo l | ovsnap put left - only-left &&
	test_expect_code 3 ovsnap ls right only-left &&
	ovsnap --json volume list >list.json &&
	json_assert "[v[\"files\"] for v in d if v[\"name\"] == \"right\"] == [0]" <list.json
'

test_done
