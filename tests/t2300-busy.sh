#!/bin/bash
test_description='reload refuses (exit 4) while a process holds the mount, names each holder, and changes nothing'
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/attach-lib.sh"

# wait_holding PID COMM PATH: wait (up to 5 s) until process PID runs COMM and holds PATH (an
# open descriptor, its cwd or root, or a mapping)
wait_holding() {
	local pid=$1 comm=$2 want i f
	want=$(realpath "$3") || return 1
	for i in $(seq 1 100); do
		if [ "$(cat /proc/$pid/comm 2>/dev/null)" = "$comm" ]; then
			for f in /proc/$pid/fd/* /proc/$pid/cwd /proc/$pid/root; do
				[ "$(readlink "$f" 2>/dev/null)" = "$want" ] && return 0
			done
			grep -qF " $want" /proc/$pid/maps 2>/dev/null && return 0
		fi
		sleep 0.05
	done
	echo "process $pid ($(cat /proc/$pid/comm 2>/dev/null)) does not hold $want" >&2
	return 1
}

# stop PID: kill a holder and reap it
stop() {
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	true
}

# refused DIR STRINGS...: reload DIR exits 4, says "volume busy" and every STRING; DIR still
# shows the same snapshot, as one mount, with the same files
refused() {
	local dir=$1
	shift
	snap=$(att "$dir" snapshot) &&
	ls -A "$dir" >before.ls &&
	test_expect_code 4 ovsnap reload "$dir" >out 2>err &&
	test_stderr_mentions err "volume busy" "$@" &&
	mountpoint -q "$dir" &&
	test "$(mounts_at "$dir")" = 1 &&
	test "$(att "$dir" snapshot)" = "$snap" &&
	ls -A "$dir" >after.ls &&
	test_cmp before.ls after.ls &&
	test_path_is_missing "$dir/$marker"
}

# reloads DIR: reload DIR succeeds and brings B's newest commit
reloads() {
	ovsnap reload "$1" >out &&
	test "$(cat out)" = "$(head_of v)" &&
	test "$(mounts_at "$1")" = 1 &&
	test_path_is_file "$1/$marker"
}

# advance: B commits a new file $marker, and A is remounted on the snapshot before, so that a
# reload of A has something to bring
advance_n=0
advance() {
	advance_n=$((advance_n + 1)) &&
	marker=from-B-$advance_n &&
	echo "from B $advance_n" >"B/$marker" &&
	ovsnap commit B >/dev/null &&
	ovsnap umount A &&
	ovsnap mount v A --at head~1 &&
	test_path_is_missing "A/$marker"
}

test_expect_success 'setup: volume v, attachments A and B' '
	ovsnap volume create v &&
	mkdir -p src/sub/deeper &&
	echo held >src/held.txt &&
	echo other >src/other.txt &&
	echo deep >src/sub/deeper/f &&
	head -c 65536 /dev/urandom >src/mapped.bin &&
	ovsnap put v src/ >/dev/null &&
	mkdir A B &&
	ovsnap mount v A &&
	ovsnap mount v B &&
	advance
'

test_expect_success 'a file open for reading: refused, names pid, command and path' '
	{ sleep 100 <A/held.txt & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep A/held.txt &&
	refused A "pid $pid" "(sleep)" "A/held.txt" "open" &&
	stop $pid &&
	reloads A
'

test_expect_success 'a file open for writing, created in the upper: refused' '
	advance &&
	echo scratch >A/scratch &&
	{ sleep 100 3>>A/scratch & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep A/scratch &&
	refused A "pid $pid" "A/scratch" &&
	stop $pid &&
	reloads A &&
	echo scratch >expect &&
	test_cmp expect A/scratch
'

test_expect_success 'an open directory: refused' '
	advance &&
	{ sleep 100 <A/sub/deeper & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep A/sub/deeper &&
	refused A "pid $pid" "A/sub/deeper" &&
	stop $pid &&
	reloads A
'

test_expect_success 'a cwd inside the mount: refused, names the cwd' '
	advance &&
	{ (cd A/sub && exec sleep 100) & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep A/sub &&
	refused A "pid $pid" "(sleep)" "cwd" "A/sub" &&
	stop $pid &&
	reloads A
'

test_expect_success 'a cwd at the mount'"'"'s root: refused' '
	advance &&
	{ (cd A && exec sleep 100) & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep A &&
	refused A "pid $pid" "cwd" &&
	stop $pid &&
	reloads A
'

test_expect_success PYTHON 'a mapped file (descriptor closed): refused, names the mapping' '
	advance &&
	rm -f mapped.ready &&
	{
		python3 -c "
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
fd = os.open(\"A/mapped.bin\", os.O_RDONLY)
p = libc.mmap(None, 65536, 1, 2, fd, 0)  # PROT_READ, MAP_PRIVATE
if p in (None, ctypes.c_void_p(-1).value):
    raise OSError(ctypes.get_errno(), \"mmap\")
os.close(fd)
open(\"mapped.ready\", \"w\").close()
time.sleep(100)
" & pid=$!
		test_bg_pid $pid
	} &&
	for i in $(seq 1 100); do test -e mapped.ready && break; sleep 0.05; done &&
	wait_holding $pid python3 A/mapped.bin &&
	! ls -l /proc/$pid/fd | grep -F mapped.bin &&
	refused A "pid $pid" "python3" "maps" "A/mapped.bin" &&
	stop $pid &&
	reloads A
'

test_expect_success PYTHON 'a root (chroot) inside the mount: refused' '
	advance &&
	{
		python3 -c "
import os, time
os.chroot(\"A\")
time.sleep(100)
" & pid=$!
		test_bg_pid $pid
	} &&
	wait_holding $pid python3 A &&
	refused A "pid $pid" &&
	stop $pid &&
	reloads A
'

test_expect_success 'several holders: each is named' '
	advance &&
	{ sleep 100 <A/held.txt & p1=$!; test_bg_pid $p1; } &&
	{ (cd A/sub/deeper && exec sleep 101) & p2=$!; test_bg_pid $p2; } &&
	{ sleep 102 <A/other.txt & p3=$!; test_bg_pid $p3; } &&
	wait_holding $p1 sleep A/held.txt &&
	wait_holding $p2 sleep A/sub/deeper &&
	wait_holding $p3 sleep A/other.txt &&
	refused A "pid $p1" "pid $p2" "pid $p3" "A/held.txt" "A/other.txt" "A/sub/deeper" &&
	stop $p1 &&
	refused A "pid $p2" "pid $p3" &&
	! grep -F "pid $p1 (" err &&
	stop $p2 &&
	stop $p3 &&
	reloads A
'

test_expect_success 'a holder of another attachment does not block A' '
	advance &&
	{ sleep 100 <B/held.txt & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep B/held.txt &&
	reloads A &&
	stop $pid
'

test_expect_success 'a holder of the same file outside any attachment does not block A' '
	advance &&
	{ sleep 100 <src/held.txt & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep src/held.txt &&
	reloads A &&
	stop $pid
'

test_expect_success 'uncommitted changes are intact after a refused reload and after the reload' '
	advance &&
	echo "mine, uncommitted" >A/held.txt &&
	{ sleep 100 <A/other.txt & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep A/other.txt &&
	refused A "pid $pid" &&
	echo "mine, uncommitted" >expect &&
	test_cmp expect A/held.txt &&
	stop $pid &&
	reloads A &&
	test_cmp expect A/held.txt
'

test_expect_success '--json: a refused reload still exits 4' '
	advance &&
	{ sleep 100 <A/other.txt & pid=$!; test_bg_pid $pid; } &&
	wait_holding $pid sleep A/other.txt &&
	test_expect_code 4 ovsnap --json reload A >out 2>err &&
	test_path_is_missing "A/$marker" &&
	stop $pid &&
	reloads A
'

test_expect_success 'clean up' '
	ovsnap umount A &&
	ovsnap umount B &&
	! grep -F " $PWD/" /proc/self/mountinfo
'

test_done
