#!/bin/bash
# The commit worker that reads a container's upper dir runs under a seccomp allowlist: a
# forbidden call (exec, socket, mount) fails with EPERM and is reported, never obeyed. It sees
# the upper read-only and nodev (a device node a container swaps in is never opened) and keeps
# only CAP_DAC_READ_SEARCH, CAP_FOWNER and CAP_SYS_ADMIN.

test_description='the capture worker is sandboxed'
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: a mounted volume with a change' '
	ovsnap volume create v &&
	mkdir A &&
	ovsnap mount v A &&
	echo data >A/file &&
	mknod A/devnode c 1 3
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

test_expect_success 'the worker cannot open a device node in the upper, write there, or use other capabilities' '
	OVSNAP_SANDBOX_SELFTEST=$PWD/escaped ovsnap commit A >id 2>err &&
	grep "sandbox self-test: open device devnode Permission denied" err &&
	grep "sandbox self-test: write in the view Read-only file system" err &&
	grep "sandbox self-test: CapEff:	000000000020000c" err &&
	grep "sandbox self-test: CapBnd:	000000000020000c" err &&
	ovsnap --json ls v devnode >ls.json &&
	json_assert "d[0][\"type\"] == \"char\" and (d[0][\"major\"], d[0][\"minor\"]) == (1, 3)" <ls.json
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
