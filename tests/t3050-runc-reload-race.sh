#!/bin/bash
test_description='runc: reloads through the control socket racing a reader in the container and commits on the host lose nothing'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"
. "$TEST_DIRECTORY/attach-lib.sh"

# 200 rounds; 50 under the sanitizers, where every command starts 5-10x slower
case $OVSNAP in */build-asan/*) ROUNDS=${RACE_ROUNDS:-50} ;; *) ROUNDS=${RACE_ROUNDS:-200} ;; esac

test_expect_success "$RT_PREREQ" 'setup: volume data, a container reading it in a loop, a host mount W' '
	container_setup &&
	ovsnap volume create data &&
	mkdir -p src/d && echo data >src/d/f.bin &&
	ovsnap put data src/ >/dev/null &&
	container_bundle reader data:/data org.ovsnap.commit-interval=0 -- sh -c "
		n=0
		while :; do
			n=\$((n + 1))
			if [ \$((n % 10)) = 0 ]; then cat /data/d/f.bin >/dev/null; else read -r x </data/d/f.bin; fi
		done" &&
	rt_start reader &&
	mkdir W &&
	ovsnap mount data W
'

test_expect_success "$RT_PREREQ" "$ROUNDS reloads in the container while the host commits: every file is in the volume" '
	{ (i=0; while :; do i=$((i + 1)); echo x >W/host$i && ovsnap commit W >/dev/null && echo host$i >>host.names; done) &
	  cpid=$!; test_bg_pid $cpid; } &&
	rt_exec reader sh -c "
		ok=0 busy=0
		for i in \$(seq 1 $ROUNDS); do
			echo y >/data/mine\$i || exit 3
			if ovsnap-ctl reload data >/tmp/reply; then ok=\$((ok + 1))
			elif grep -q \"volume busy\" /tmp/reply; then busy=\$((busy + 1))
			else cat /tmp/reply; exit 1; fi
		done
		echo \$ok \$busy" >counts &&
	{ kill $cpid; wait $cpid 2>/dev/null; true; } &&
	read -r ok busy <counts &&
	echo "in-container reloads: $ok done, $busy refused busy" >&7 &&
	test "$ok" -gt 0 &&
	pid=$(rt_init_pid reader) &&
	test "$(grep -c " /data " /proc/$pid/mountinfo)" = 1 &&
	rt_exec reader ovsnap-ctl commit >reply &&
	grep "^ok " reply &&
	ovsnap --json ls data >ls.json &&
	python3 -c "
import json, sys
have = {e[\"name\"] for e in json.load(open(\"ls.json\"))}
want = [\"mine%d\" % i for i in range(1, $ROUNDS + 1)] + [l.strip() for l in open(\"host.names\")]
missing = [w for w in want if w not in have]
sys.exit(\"missing from the head: %s\" % missing[:10] if missing else 0)
" &&
	ovsnap fsck >fsck.out
'

test_expect_success "$RT_PREREQ" 'the container stops cleanly: final commit, nothing left' '
	rt_stop reader &&
	ovsnap umount W &&
	no_leftovers reader
'

test_done
