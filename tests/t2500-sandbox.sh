#!/bin/bash
# The commit worker that reads a container's upper dir runs under a seccomp allowlist: a
# forbidden call (exec, socket, mount) fails with EPERM and is reported, never obeyed.

test_description='the capture worker is sandboxed'
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: a mounted volume with a change' '
	ovsnap volume create v &&
	mkdir A &&
	ovsnap mount v A &&
	echo data >A/file
'

test_expect_success 'a worker that tries exec, socket and mount is refused each time, and says so' '
	OVSNAP_SANDBOX_SELFTEST=$PWD/escaped ovsnap commit A >id 2>err &&
	cat err &&
	test_path_is_missing escaped &&
	grep "sandbox: forbidden system call .*(execve)" err &&
	grep "sandbox self-test: exec refused: Operation not permitted" err &&
	grep "sandbox self-test: socket Operation not permitted" err &&
	grep "sandbox self-test: mount Operation not permitted" err
'

test_expect_success 'the sandboxed commit still did its work' '
	echo data >expect &&
	ovsnap get v file - >actual &&
	test_cmp expect actual &&
	test "$(cat id)" = "$(ovsnap --json volume history v | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"id\"])")"
'

test_expect_success 'cleanup' '
	ovsnap umount A
'

test_done
