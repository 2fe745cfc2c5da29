#!/bin/bash
test_description='paths as modal volume writes them: a leading / is the volume root; put, ls, get, rm, cp conventions'
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: a volume, a file and a directory' '
	ovsnap volume create vol &&
	echo weights >model.bin &&
	mkdir -p data/sub && echo a >data/a.txt && echo b >data/sub/b.txt
'

test_expect_success 'put vol model.bin /models/ lands at /models/model.bin' '
	ovsnap put vol model.bin /models/ >/dev/null &&
	test "$(ovsnap get vol /models/model.bin -)" = weights &&
	test "$(ovsnap get vol models/model.bin -)" = weights
'

test_expect_success 'put vol FILE /remote-a.txt names the file itself' '
	ovsnap put vol model.bin /remote-a.txt >/dev/null &&
	test "$(ovsnap get vol /remote-a.txt -)" = weights
'

test_expect_success 'put vol DIR /remote puts the directory'"'"'s contents at /remote' '
	ovsnap put vol data /remote >/dev/null &&
	ovsnap ls vol /remote >actual &&
	printf "a.txt\nsub/\n" >expect &&
	test_cmp expect actual &&
	test "$(ovsnap get vol /remote/sub/b.txt -)" = b
'

test_expect_success 'put of a directory into an existing one merges its contents there' '
	mkdir more && echo c >more/c.txt &&
	ovsnap put vol more /remote >/dev/null &&
	ovsnap ls vol /remote >actual &&
	printf "a.txt\nc.txt\nsub/\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'put vol DIR (no REMOTE, Modal'"'"'s default /) and put vol DIR /x/ land under the base name' '
	ovsnap put vol data >/dev/null &&
	test "$(ovsnap get vol /data/a.txt -)" = a &&
	ovsnap put vol data /x/ >/dev/null &&
	test "$(ovsnap get vol /x/data/sub/b.txt -)" = b
'

test_expect_success 'ls vol / lists the root; --json entries carry their path from the root' '
	ovsnap ls vol / >actual &&
	printf "data/\nmodels/\nremote/\nremote-a.txt\nx/\n" >expect &&
	test_cmp expect actual &&
	ovsnap ls vol >actual2 &&
	test_cmp expect actual2 &&
	ovsnap --json ls vol /remote/sub >ls.json &&
	json_assert "d[0][\"path\"] == \"remote/sub/b.txt\" and d[0][\"name\"] == \"b.txt\""  <ls.json
'

test_expect_success 'get vol /remote LOCAL writes the tree; get of a /path to stdout' '
	ovsnap get vol /remote got &&
	test "$(cat got/sub/b.txt)" = b
'

test_expect_success 'cp vol /a /b and cp of several sources into /dir/ (made if missing)' '
	ovsnap cp vol /remote-a.txt /copy.txt >/dev/null &&
	test "$(ovsnap get vol /copy.txt -)" = weights &&
	ovsnap cp vol /remote-a.txt /remote/a.txt /copies/ >/dev/null &&
	ovsnap ls vol /copies >actual &&
	printf "a.txt\nremote-a.txt\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'rm vol /path, and rm vol /dir -r' '
	ovsnap rm vol /copy.txt >/dev/null &&
	test_must_fail ovsnap get vol /copy.txt - &&
	test_must_fail ovsnap rm vol /copies 2>err &&
	ovsnap rm vol /copies -r >/dev/null &&
	test_expect_code 3 ovsnap ls vol /copies
'

test_expect_success 'refused: .., empty components, // and the root as a file or a removal' '
	for p in /../x /a/../b //x /a//b "/a/./b"; do
		test_expect_code 2 ovsnap put vol model.bin "$p" 2>err || return 1
		test_stderr_mentions err "invalid path" || return 1
	done &&
	echo x | test_expect_code 2 ovsnap put vol - / &&
	test_expect_code 2 ovsnap rm vol / -r
'

test_done
