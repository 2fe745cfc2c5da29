#!/bin/bash
test_description='hostile paths and names are refused (exit 2) and change nothing; get never writes outside its target'
. "$(dirname "$0")/lib.sh"

BAD_PATHS='../x
a/../b
/../x
/a/../b
//abs
a//b
./a
a/./b
..
a/..
../../../../etc/passwd'

# history_json VOLUME >FILE: the volume history, to compare before and after
history_json() {
	ovsnap --json volume history "$1"
}

test_expect_success 'setup: a volume with a directory a/ and a file' '
	ovsnap volume create v &&
	mkdir -p src/a &&
	echo inside >src/a/file &&
	ovsnap put v src/a a &&
	echo payload >payload &&
	history_json v >history.before &&
	ls -R "$OVSNAP_ROOT" >store.before
'

test_expect_success 'put to a hostile REMOTE is a usage error and changes nothing' '
	while IFS= read -r p
	do
		test_expect_code 2 ovsnap put v payload "$p" 2>err || { echo "put accepted [$p]"; return 1; }
		echo x | test_expect_code 2 ovsnap put v - "$p" || { echo "put - accepted [$p]"; return 1; }
	done <<-EOF &&
	$BAD_PATHS
	EOF
	history_json v >history.after &&
	test_cmp history.before history.after &&
	test_path_is_missing x && test_path_is_missing ../x && test_path_is_missing /x
'

test_expect_success 'get, ls, rm, cp of a hostile path are usage errors' '
	while IFS= read -r p
	do
		test_expect_code 2 ovsnap get v "$p" out || { echo "get accepted [$p]"; return 1; }
		test_expect_code 2 ovsnap ls v "$p" || { echo "ls accepted [$p]"; return 1; }
		test_expect_code 2 ovsnap rm v "$p" -r || { echo "rm accepted [$p]"; return 1; }
		test_expect_code 2 ovsnap cp v a "$p" || { echo "cp to accepted [$p]"; return 1; }
		test_expect_code 2 ovsnap cp v "$p" a/copy || { echo "cp from accepted [$p]"; return 1; }
	done <<-EOF &&
	$BAD_PATHS
	EOF
	test_path_is_missing out &&
	history_json v >history.after &&
	test_cmp history.before history.after
'

test_expect_success 'the error names the refused path' '
	test_expect_code 2 ovsnap ls v "a/../b" 2>err &&
	grep -F "a/../b" err
'

test_expect_success 'hostile volume names are refused and create nothing outside the store' '
	for name in ../evil ../../tmp/evil /tmp/evil evil/../../x
	do
		test_expect_code 2 ovsnap volume create "$name" || { echo "accepted [$name]"; return 1; }
		test_expect_code 2 ovsnap put "$name" payload || return 1
	done &&
	test_path_is_missing evil && test_path_is_missing "$TRASH_DIRECTORY/evil" &&
	ls -R "$OVSNAP_ROOT" >store.after &&
	test_cmp store.before store.after
'

test_expect_success 'a hostile --at is refused, not resolved as a path' '
	for at in ../../etc/passwd /etc/passwd "head~-1" "head~x" "" "HEAD~1x"
	do
		ovsnap ls v --at "$at"
		code=$?
		case $code in 2|3) ;; *) echo "--at [$at]: exit $code, not 2 or 3"; return 1 ;; esac
	done
'

test_expect_success 'a symlink in the volume pointing outside is stored as a link, never followed' '
	mkdir -p evil-tree &&
	ln -s /etc/passwd evil-tree/passwd-link &&
	ln -s ../../../../../../tmp evil-tree/tmp-link &&
	ovsnap put v evil-tree &&
	ovsnap --json ls v evil-tree >ls.json &&
	json_assert "all(e[\"type\"] == \"symlink\" for e in d) and len(d) == 2" <ls.json &&
	ovsnap get v evil-tree evil-out &&
	test "$(readlink evil-out/passwd-link)" = /etc/passwd &&
	test "$(readlink evil-out/tmp-link)" = ../../../../../../tmp
'

test_expect_success 'put into a path through a symlink in the volume never follows the link' '
	history_json v >h.before &&
	if ovsnap put v payload evil-tree/tmp-link/escaped
	then
		ovsnap --json ls v evil-tree/tmp-link >ls.json &&
		json_assert "[(e[\"name\"], e[\"type\"]) for e in d] == [(\"escaped\", \"file\")]" <ls.json &&
		ovsnap --json ls v evil-tree/passwd-link >ls.json &&
		json_assert "d[0][\"type\"] == \"symlink\"" <ls.json &&
		ovsnap get v evil-tree evil-out2 &&
		test_cmp payload evil-out2/tmp-link/escaped
	else
		history_json v >h.after &&
		test_cmp h.before h.after
	fi &&
	test_path_is_missing /tmp/escaped
'

test_expect_success 'get --force replaces a local symlink instead of writing through it' '
	echo "victim" >victim &&
	ln -s victim trap &&
	ovsnap get v a/file trap --force &&
	echo "victim" >expect &&
	test_cmp expect victim &&
	! test -L trap &&
	test_cmp src/a/file trap
'

test_expect_success 'get of a tree never writes through a local symlink planted in the target' '
	mkdir -p planted/a outside &&
	ln -s "$PWD/outside/f1" planted/file &&
	ln -s "$PWD/outside/f2" planted/a/file &&
	ovsnap get v a planted --force &&
	test_path_is_missing outside/f1 &&
	test_path_is_missing outside/f2 &&
	{ test_cmp src/a/file planted/file || test_cmp src/a/file planted/a/file; }
'

test_done
