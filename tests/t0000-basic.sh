#!/bin/bash
test_description='the command line: help, usage errors, global options, a fresh store'
. "$(dirname "$0")/lib.sh"

test_expect_success '--help lists every command and exits 0' '
	ovsnap --help >out 2>err &&
	for cmd in volume put get ls rm cp diff rollback gc fsck
	do
		grep -q -w -- "$cmd" out || { echo "--help does not mention: $cmd"; return 1; }
	done
'

test_expect_success 'volume --help lists the volume subcommands' '
	ovsnap volume --help >out 2>err &&
	for cmd in create list delete history
	do
		grep -q -w -- "$cmd" out || { echo "volume --help does not mention: $cmd"; return 1; }
	done
'

test_expect_success 'every command has --help, exits 0 and prints its usage' '
	for cmd in put get ls rm cp diff rollback gc fsck
	do
		ovsnap $cmd --help >out 2>err || { echo "$cmd --help failed"; return 1; }
		grep -q "$cmd" out || { echo "$cmd --help does not name itself"; return 1; }
	done
'

test_expect_success '--version prints a version' '
	ovsnap --version >out &&
	grep "^ovsnap [0-9]" out
'

test_expect_success '--help documents the exit codes' '
	ovsnap --help >out &&
	grep -i "exit" out &&
	grep -i "usage" out &&
	grep -i "not found" out &&
	grep -i "corrupt" out
'

test_expect_success 'no command at all is a usage error (exit 2) with a usage line on stderr' '
	test_expect_code 2 ovsnap >out 2>err &&
	test_must_be_empty out &&
	grep -i "usage" err
'

test_expect_success 'an unknown command is a usage error that names it' '
	test_expect_code 2 ovsnap frobnicate 2>err &&
	grep -F frobnicate err
'

test_expect_success 'an unknown option is a usage error' '
	test_expect_code 2 ovsnap --frobnicate volume list 2>err &&
	grep -F -- "--frobnicate" err &&
	test_expect_code 2 ovsnap volume list --frobnicate 2>err &&
	grep -F -- "--frobnicate" err
'

test_expect_success 'missing arguments are usage errors' '
	test_expect_code 2 ovsnap volume &&
	test_expect_code 2 ovsnap volume frobnicate x &&
	test_expect_code 2 ovsnap volume create &&
	test_expect_code 2 ovsnap volume delete &&
	test_expect_code 2 ovsnap volume history &&
	test_expect_code 2 ovsnap put &&
	test_expect_code 2 ovsnap put data &&
	test_expect_code 2 ovsnap get data &&
	test_expect_code 2 ovsnap ls &&
	test_expect_code 2 ovsnap rm data &&
	test_expect_code 2 ovsnap cp data onlyone &&
	test_expect_code 2 ovsnap rollback data &&
	test_expect_code 2 ovsnap diff
'

test_expect_success 'extra arguments are usage errors' '
	test_expect_code 2 ovsnap gc extra &&
	test_expect_code 2 ovsnap fsck extra &&
	test_expect_code 2 ovsnap volume list extra &&
	test_expect_code 2 ovsnap volume create a b
'

test_expect_success 'an option that needs a value without one is a usage error' '
	test_expect_code 2 ovsnap --root &&
	ovsnap volume create opts &&
	test_expect_code 2 ovsnap ls opts --at &&
	test_expect_code 2 ovsnap volume create other --max-inodes
'

test_expect_success 'the store is created on first use under OVSNAP_ROOT' '
	rm -rf "$OVSNAP_ROOT" &&
	ovsnap volume list >out &&
	{ grep -v "^NAME" out >no-header || :; } &&
	test_must_be_empty no-header &&
	ovsnap volume create first &&
	test_path_is_dir "$OVSNAP_ROOT" &&
	find "$OVSNAP_ROOT/volumes" -mindepth 1 >records &&
	test_line_count -ge 1 records
'

test_expect_success 'an empty store lists no volumes, and --json says []' '
	OVSNAP_ROOT=$PWD/empty-store &&
	ovsnap --json volume list >out &&
	json_assert "d == []" <out
'

test_expect_success '--root DIR wins over OVSNAP_ROOT' '
	ovsnap --root "$PWD/other-store" volume create elsewhere &&
	ovsnap volume list >here &&
	! grep -w elsewhere here &&
	ovsnap --root "$PWD/other-store" volume list >there &&
	grep -w elsewhere there &&
	test_path_is_dir other-store/volumes
'

test_expect_success 'errors go to stderr prefixed with "ovsnap", nothing to stdout' '
	test_expect_code 3 ovsnap ls no-such-volume >out 2>err &&
	test_must_be_empty out &&
	grep "^ovsnap[ :]" err &&
	grep -F no-such-volume err
'

test_expect_success 'an unreadable store root is an error, not a crash' '
	: >not-a-dir &&
	test_must_fail ovsnap --root "$PWD/not-a-dir" volume list 2>err &&
	grep -F not-a-dir err
'

test_expect_success '--json after the command works too' '
	ovsnap volume create late-json &&
	ovsnap volume list --json >out &&
	json_assert "any(v[\"name\"] == \"late-json\" for v in d)" <out &&
	ovsnap volume history late-json --json >out &&
	json_valid out
'

test_expect_success '--json output of every read-only command is one JSON document' '
	ovsnap volume create js &&
	echo hello | ovsnap put js - hello.txt >/dev/null &&
	for cmd in "volume list" "volume history js" "ls js" "ls js hello.txt" "diff js" "fsck"
	do
		ovsnap --json $cmd >out || { echo "failed: ovsnap --json $cmd"; return 1; }
		json_valid out || { echo "not JSON: ovsnap --json $cmd"; return 1; }
	done
'

test_done
