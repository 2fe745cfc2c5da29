# shellcheck shell=bash
# tests/helpers/runtime-tests.sh: the container scenarios that every OCI runtime must pass, run by
# t3000-runc.sh (RUNTIME=runc) and t3100-crun.sh (RUNTIME=crun) after lib.sh and container-lib.sh.
# Every test names the runtime's prerequisites ($RT_PREREQ): without the runtime, all are skipped.

# mount_lowerdirs NAME DIR: the lowerdir options of the overlay at DIR inside container NAME
mount_lowerdirs() {
	local pid
	pid=$(rt_init_pid "$1") &&
	awk -v d="$2" '$5 == d' "/proc/$pid/mountinfo" >mountinfo.line &&
	test_line_count = 1 mountinfo.line &&
	tr ' ,' '\n\n' <mountinfo.line | grep '^lowerdir'
}

# gone_in NAME PID: process PID of container NAME has exited (it may be a zombie)
gone_in() {
	! rt_exec "$1" readlink "/proc/$2/cwd" >/dev/null 2>&1
}

# holds NAME PID PATH: in container NAME, process PID runs sleep and has PATH as its cwd or stdin
holds() {
	rt_exec "$1" sh -c "[ \"\$(cat /proc/$2/comm)\" = sleep ] &&
		{ [ \"\$(readlink /proc/$2/cwd)\" = $3 ] || [ \"\$(readlink /proc/$2/fd/0)\" = $3 ]; }"
}

test_expect_success "$RT_PREREQ" 'setup: a busybox image; volume data with a file put from the host' '
	container_setup &&
	ovsnap volume create data &&
	echo "hello from the host" >hello.txt &&
	ovsnap put data hello.txt >/dev/null
'

test_expect_success "$RT_PREREQ" 'a file put with ovsnap put is visible inside' '
	test_when_finished "rt_rm put" &&
	container_bundle put data:/data -- sh -c "cat /data/hello.txt && ls /data" &&
	rt_run put >out &&
	printf "hello from the host\nhello.txt\n" >expect &&
	test_cmp expect out &&
	no_leftovers put
'

test_expect_success "$RT_PREREQ" 'setup: two running containers attach data at /data' '
	container_bundle writer data:/data org.ovsnap.commit-interval=0 -- sleep 1000 &&
	container_bundle reader data:/data org.ovsnap.commit-interval=0 -- sleep 1000 &&
	rt_start writer &&
	rt_start reader &&
	test "$(attachments_of "$(cid writer)")" = 1 &&
	test "$(attachments_of "$(cid reader)")" = 1 &&
	echo "hello from the host" >expect &&
	rt_exec reader cat /data/hello.txt >actual &&
	test_cmp expect actual &&
	rt_exec writer cat /data/hello.txt >actual &&
	test_cmp expect actual
'

test_expect_success "$RT_PREREQ" 'while containers run, no mount of the store is visible on the host' '
	no_new_host_mounts
'

test_expect_success "$RT_PREREQ" 'a write inside, committed through the control socket, becomes the head' '
	n=$(history_length data) &&
	rt_exec writer sh -c "echo one >/data/from-writer.txt && ovsnap-ctl commit" >reply &&
	test_line_count = 1 reply &&
	read -r word id <reply &&
	test "$word" = ok &&
	is_snapshot_id "$id" &&
	test "$id" = "$(head_of data)" &&
	test "$(history_length data)" = $((n + 1)) &&
	file_is data from-writer.txt one &&
	file_is data hello.txt "hello from the host"
'

test_expect_success "$RT_PREREQ" 'the second container sees the commit only after it reloads through its socket' '
	test_must_fail rt_exec reader cat /data/from-writer.txt &&
	rt_exec reader ls /data >actual &&
	echo hello.txt >expect &&
	test_cmp expect actual &&
	rt_exec reader ovsnap-ctl reload data >reply &&
	echo "ok $(head_of data)" >expect &&
	test_cmp expect reply &&
	rt_exec reader cat /data/from-writer.txt >actual &&
	echo one >expect &&
	test_cmp expect actual
'

test_expect_success "$RT_PREREQ" 'the second container sees a newer commit after a host ovsnap reload CONTAINER-ID' '
	rt_exec writer sh -c "echo two >/data/from-writer.txt && echo new >/data/second.txt && ovsnap-ctl commit" >reply &&
	echo "ok $(head_of data)" >expect &&
	test_cmp expect reply &&
	rt_exec reader cat /data/from-writer.txt >actual &&
	echo one >expect &&
	test_cmp expect actual &&
	test_must_fail rt_exec reader cat /data/second.txt &&
	ovsnap reload "$(cid reader)" >out &&
	head_of data >expect &&
	test_cmp expect out &&
	rt_exec reader cat /data/from-writer.txt /data/second.txt >actual &&
	printf "two\nnew\n" >expect &&
	test_cmp expect actual
'

test_expect_success "$RT_PREREQ" 'status through the socket: the snapshot, clean, then dirty after a write' '
	rt_exec reader ovsnap-ctl status >reply &&
	printf "data /data %s clean\nok\n" "$(head_of data)" >expect &&
	test_cmp expect reply &&
	rt_exec reader sh -c "echo from-reader >/data/reader.txt" &&
	rt_exec reader ovsnap-ctl status >reply &&
	printf "data /data %s dirty\nok\n" "$(head_of data)" >expect &&
	test_cmp expect reply
'

test_expect_success "$RT_PREREQ" 'ovsnap status --json lists the container attachments' '
	ovsnap status --json >status.json &&
	json_assert "sorted(a[\"container\"] for a in d if a.get(\"container\")) == sorted([\"$(cid reader)\", \"$(cid writer)\"])" <status.json &&
	json_assert "all(a[\"volume\"] == \"data\" and a[\"dir\"] == \"/data\" and a[\"mounted\"] for a in d)" <status.json &&
	json_assert "[a[\"dirty\"] for a in d if a[\"container\"] == \"$(cid reader)\"] == [True]" <status.json
'

test_expect_success "$RT_PREREQ" 'host ovsnap commit CONTAINER-ID commits a running container' '
	rt_exec reader ovsnap-ctl status >reply &&
	read -r v d lower state <reply &&
	test "$state" = dirty &&
	ovsnap commit "$(cid reader)" >out &&
	head_of data >expect &&
	test_cmp expect out &&
	test "$(cat out)" != "$lower" &&
	file_is data reader.txt from-reader &&
	rt_exec reader ovsnap-ctl status >reply &&
	printf "data /data %s clean\nok\n" "$lower" >expect &&
	test_cmp expect reply
'

test_expect_success "$RT_PREREQ" 'bad requests get one error line; the socket keeps serving' '
	test_expect_code 1 rt_exec reader ovsnap-ctl frobnicate >reply &&
	test_line_count = 1 reply &&
	grep "^error usage " reply &&
	test_expect_code 1 rt_exec reader ovsnap-ctl commit no-such-volume >reply &&
	test_line_count = 1 reply &&
	grep "^error notfound .*no-such-volume" reply &&
	test_expect_code 1 rt_exec reader ovsnap-ctl commit data extra >reply &&
	grep "^error usage " reply &&
	rt_exec reader ovsnap-ctl status >reply &&
	tail -n 1 reply >last &&
	echo ok >expect &&
	test_cmp expect last
'

test_expect_success "$RT_PREREQ" 'a killed container: the final commit keeps its last write, attachments go' '
	rt_exec reader sh -c "echo last >/data/last-words.txt" &&
	test_expect_code 3 ovsnap ls data last-words.txt &&
	rt kill "$(cid reader)" KILL &&
	wait_for 10 agent_done "$(cid reader)" &&
	file_is data last-words.txt last &&
	test "$(head_message data)" = "final commit" &&
	test "$(attachments_of "$(cid reader)")" = 0 &&
	test "$(attachments_of "$(cid writer)")" = 1 &&
	rt delete -f "$(cid reader)" &&
	rt_stop writer &&
	test "$(attachments_of "$(cid writer)")" = 0 &&
	no_leftovers reader writer
'

test_expect_success "$RT_PREREQ" 'the final commit after exit keeps the last write (commit-interval=0)' '
	test_when_finished "rt_rm last" &&
	container_bundle last data:/data org.ovsnap.commit-interval=0 -- sh -c "echo bye >/data/bye.txt" &&
	n=$(history_length data) &&
	rt_run last &&
	wait_for 10 agent_done "$(cid last)" &&
	file_is data bye.txt bye &&
	test "$(history_length data)" = $((n + 1)) &&
	test "$(head_message data)" = "final commit" &&
	no_leftovers last
'

test_expect_success "$RT_PREREQ" 'commit-on-exit=false: a write never committed is dropped with the container' '
	test_when_finished "rt_rm noexit" &&
	container_bundle noexit data:/data org.ovsnap.commit-interval=0 org.ovsnap.commit-on-exit=false \
		-- sh -c "echo lost >/data/lost.txt && cat /data/hello.txt" >/dev/null &&
	n=$(history_length data) &&
	rt_run noexit >out &&
	echo "hello from the host" >expect &&
	test_cmp expect out &&
	no_leftovers noexit &&
	test_expect_code 3 ovsnap ls data lost.txt &&
	test "$(history_length data)" = "$n"
'

test_expect_success "$RT_PREREQ" 'background commits land within interval + 2 s, without any call' '
	test_when_finished "rt_rm bg" &&
	container_bundle bg data:/data org.ovsnap.commit-interval=1 -- sleep 1000 &&
	rt_start bg &&
	rt_exec bg sh -c "echo tick-1 >/data/bg.txt" &&
	wait_for 3 file_is data bg.txt tick-1 &&
	test "$(head_message data)" = "background commit" &&
	rt_exec bg sh -c "echo tick-2 >/data/bg.txt" &&
	wait_for 3 file_is data bg.txt tick-2 &&
	n=$(history_length data) &&
	sleep 2.5 &&
	test "$(history_length data)" = "$n" &&
	rt_stop bg &&
	test "$(history_length data)" = "$n" &&
	no_leftovers bg
'

test_expect_success "$RT_PREREQ" 'setup: a container whose processes hold a file open and a cwd in /data' '
	container_bundle busy data:/data org.ovsnap.commit-interval=0 -- sh -c "
		sleep 1000 </data/hello.txt & echo \$! >/tmp/file-holder.pid
		(cd /data && exec sleep 1001) & echo \$! >/tmp/cwd-holder.pid
		sleep 1002 & wait" &&
	rt_start busy &&
	wait_for 5 rt_exec busy test -s /tmp/cwd-holder.pid &&
	f=$(rt_exec busy cat /tmp/file-holder.pid) &&
	c=$(rt_exec busy cat /tmp/cwd-holder.pid) &&
	wait_for 5 holds busy "$f" /data/hello.txt &&
	wait_for 5 holds busy "$c" /data &&
	echo newer >newer.txt &&
	ovsnap put data newer.txt >/dev/null &&
	test_must_fail rt_exec busy test -e /data/newer.txt
'

test_expect_success "$RT_PREREQ" 'busy reload through the socket: error busy names each holder, nothing changes' '
	f=$(rt_exec busy cat /tmp/file-holder.pid) &&
	c=$(rt_exec busy cat /tmp/cwd-holder.pid) &&
	test_expect_code 1 rt_exec busy ovsnap-ctl reload >reply &&
	test_line_count = 1 reply &&
	grep "^error busy " reply &&
	grep -F "pid $f (sleep" reply &&
	grep -F "/data/hello.txt" reply &&
	grep -F "pid $c (sleep" reply &&
	grep -F "cwd" reply &&
	test_must_fail rt_exec busy test -e /data/newer.txt &&
	rt_exec busy ovsnap-ctl status >st &&
	grep "^data /data " st
'

test_expect_success "$RT_PREREQ" 'busy reload from the host: exit 4, names each holder, nothing changes' '
	f=$(rt_exec busy cat /tmp/file-holder.pid) &&
	c=$(rt_exec busy cat /tmp/cwd-holder.pid) &&
	test_expect_code 4 ovsnap reload "$(cid busy)" >out 2>err &&
	test_stderr_mentions err "volume busy" "pid $f (sleep" "/data/hello.txt" "pid $c (sleep" "cwd" &&
	test_must_fail rt_exec busy test -e /data/newer.txt
'

test_expect_success "$RT_PREREQ" 'with only the cwd holder left, reload is still refused and names it' '
	f=$(rt_exec busy cat /tmp/file-holder.pid) &&
	c=$(rt_exec busy cat /tmp/cwd-holder.pid) &&
	rt_exec busy kill "$f" &&
	wait_for 5 gone_in busy "$f" &&
	test_expect_code 1 rt_exec busy ovsnap-ctl reload >reply &&
	grep "^error busy .*pid $c (sleep.*cwd" reply &&
	! grep -F "pid $f " reply &&
	test_expect_code 4 ovsnap reload "$(cid busy)" 2>err &&
	test_stderr_mentions err "pid $c (sleep" "cwd" &&
	test_must_fail rt_exec busy test -e /data/newer.txt
'

test_expect_success "$RT_PREREQ" 'once the holders are gone, reload brings the newest snapshot' '
	c=$(rt_exec busy cat /tmp/cwd-holder.pid) &&
	rt_exec busy kill "$c" &&
	wait_for 5 gone_in busy "$c" &&
	rt_exec busy ovsnap-ctl reload >reply &&
	echo "ok $(head_of data)" >expect &&
	test_cmp expect reply &&
	rt_exec busy cat /data/newer.txt >actual &&
	echo newer >expect &&
	test_cmp expect actual &&
	rt_stop busy &&
	no_leftovers busy
'

test_expect_success "$RT_PREREQ" 'a reader holding a big file (a metacopy entry over the store) makes reload busy, then it works' '
	test_when_finished "rt_rm bigbusy" &&
	ovsnap volume create models &&
	random_file weights.bin 3000000 &&
	echo small >small.txt &&
	ovsnap put models weights.bin >/dev/null &&
	ovsnap put models small.txt >/dev/null &&
	container_bundle bigbusy models:/data org.ovsnap.commit-interval=0 -- sh -c "
		sleep 1000 </data/weights.bin & echo \$! >/tmp/big-holder.pid
		echo upper >/data/new.txt && sleep 1001 </data/new.txt & echo \$! >/tmp/upper-holder.pid
		sleep 1002 & wait" &&
	rt_start bigbusy &&
	wait_for 5 rt_exec bigbusy test -s /tmp/upper-holder.pid &&
	b=$(rt_exec bigbusy cat /tmp/big-holder.pid) &&
	u=$(rt_exec bigbusy cat /tmp/upper-holder.pid) &&
	wait_for 5 holds bigbusy "$b" /data/weights.bin &&
	wait_for 5 holds bigbusy "$u" /data/new.txt &&
	grep -q "\"lower_dev\":[1-9]" "$OVSNAP_ROOT"/attach/*/state &&
	echo newer >newer.txt &&
	ovsnap put models newer.txt >/dev/null &&
	test_expect_code 4 ovsnap reload "$(cid bigbusy)" 2>err &&
	test_stderr_mentions err "volume busy" "pid $b (sleep" "/data/weights.bin" "pid $u (sleep" "/data/new.txt" &&
	test_expect_code 1 rt_exec bigbusy ovsnap-ctl reload >reply &&
	grep "^error busy .*/data/weights.bin" reply &&
	test_must_fail rt_exec bigbusy test -e /data/newer.txt &&
	rt_exec bigbusy kill "$b" "$u" &&
	wait_for 5 gone_in bigbusy "$b" &&
	wait_for 5 gone_in bigbusy "$u" &&
	ovsnap reload "$(cid bigbusy)" >/dev/null &&
	rt_exec bigbusy cat /data/newer.txt >actual &&
	test_cmp newer.txt actual &&
	rt_exec bigbusy cat /data/weights.bin >actual &&
	test_cmp_bin weights.bin actual &&
	rt_stop bigbusy &&
	no_leftovers bigbusy
'

test_expect_success "$RT_PREREQ" 'a read-only volume: readable, not writable, listed as readonly' '
	test_when_finished "rt_rm ro" &&
	container_bundle ro data:/data:ro org.ovsnap.commit-interval=0 -- sh -c "
		cat /data/hello.txt || exit 1
		if echo x >/data/ro-write.txt; then exit 1; fi
		ovsnap-ctl status" &&
	n=$(history_length data) &&
	rt_run ro >out 2>err &&
	printf "hello from the host\ndata /data %s readonly\nok\n" "$(head_of data)" >expect &&
	test_cmp expect out &&
	no_leftovers ro &&
	test "$(history_length data)" = "$n" &&
	test_expect_code 3 ovsnap ls data ro-write.txt
'

test_expect_success "$RT_PREREQ" 'two volumes in one container: one commit request commits both' '
	test_when_finished "rt_rm two" &&
	ovsnap volume create other &&
	container_bundle two data:/data,other:/mnt/other org.ovsnap.commit-interval=0 -- sh -c "
		echo a >/data/two-a.txt && echo b >/mnt/other/two-b.txt && ovsnap-ctl commit" &&
	rt_run two >reply &&
	test_line_count = 1 reply &&
	tr " " "\n" <reply | sort >actual &&
	{ echo ok && head_of data && head_of other; } | sort >expect &&
	test_cmp expect actual &&
	file_is data two-a.txt a &&
	file_is other two-b.txt b &&
	no_leftovers two
'

test_expect_success "$RT_PREREQ" 'two containers attaching the same volume share one cached lower' '
	test_when_finished "rt_rm s1 s2" &&
	ovsnap volume create shared &&
	mkdir -p shared-src/d &&
	echo s >shared-src/d/s &&
	ovsnap put shared shared-src/ >/dev/null &&
	container_bundle s1 shared:/srv org.ovsnap.commit-interval=0 -- sleep 1000 &&
	container_bundle s2 shared:/srv org.ovsnap.commit-interval=0 -- sleep 1000 &&
	ls "$OVSNAP_ROOT/cache/layers" >layers.0 &&
	rt_start s1 &&
	ls "$OVSNAP_ROOT/cache/layers" >layers.1 &&
	test_line_count -gt "$(wc -l <layers.0)" layers.1 &&
	rt_start s2 &&
	ls "$OVSNAP_ROOT/cache/layers" >layers.2 &&
	test_cmp layers.1 layers.2 &&
	mount_lowerdirs s1 /srv >lower.1 &&
	mount_lowerdirs s2 /srv >lower.2 &&
	test -s lower.1 &&
	test_cmp lower.1 lower.2 &&
	for st in "$OVSNAP_ROOT"/attach/*/state; do
		python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[\"layers\"])" "$st" || return 1
	done >layers.used &&
	test_line_count = 2 layers.used &&
	test "$(sort -u layers.used | wc -l)" = 1 &&
	top=$(head -n 1 layers.used | tr -d "[]'\''" | cut -d, -f1) &&
	test -f "$OVSNAP_ROOT/cache/layers/$top/image" &&
	rt_exec s1 cat /srv/d/s >actual &&
	rt_exec s2 cat /srv/d/s >>actual &&
	printf "s\ns\n" >expect &&
	test_cmp expect actual &&
	rt_stop s1 &&
	rt_stop s2 &&
	no_leftovers s1 s2
'

test_expect_success "$RT_PREREQ" 'an absent volume is created at start (create-if-missing by default)' '
	test_when_finished "rt_rm fresh" &&
	container_bundle fresh fresh:/data org.ovsnap.commit-interval=0 -- sh -c "ls -A /data && echo made >/data/made.txt" &&
	rt_run fresh >out &&
	test_must_be_empty out &&
	no_leftovers fresh &&
	ovsnap volume list >vols &&
	awk "{ print \$1 }" vols | grep -x fresh &&
	file_is fresh made.txt made
'

test_expect_success "$RT_PREREQ" 'a missing volume with create-if-missing=false fails the start cleanly' '
	test_when_finished "rt_rm missing" &&
	container_bundle missing data:/data,nosuchvol:/other org.ovsnap.create-if-missing=false \
		-- sh -c "echo started >/data/should-not-start.txt" &&
	host_mounts >mounts.before &&
	n=$(history_length data) &&
	rt_run_fails missing >out 2>err &&
	rt_stderr missing err >err.all &&
	test_stderr_mentions err.all nosuchvol &&
	wait_for 5 rt_gone "$(cid missing)" &&
	test "$(attachments_of "$(cid missing)")" = 0 &&
	ovsnap volume list >vols &&
	! grep nosuchvol vols &&
	test_path_is_missing "$OVSNAP_ROOT/agents/$(cid missing).log" &&
	no_new_host_mounts mounts.before &&
	no_leftovers missing &&
	test_expect_code 3 ovsnap ls data should-not-start.txt &&
	test "$(history_length data)" = "$n"
'

test_expect_success "$RT_PREREQ" 'a symlink /data -> /etc in the image cannot mount over or write into the host /etc' '
	test_when_finished "rt_rm symabs" &&
	probe=ovsnap-probe-$$ &&
	ovsnap volume create esc &&
	echo probe >"$probe" &&
	ovsnap put esc "$probe" >/dev/null &&
	container_bundle symabs esc:/data org.ovsnap.commit-interval=0 -- sh -c "
		cat /data/$probe && echo w >/data/written-$probe" &&
	rm -rf "$(bundle_of symabs)/rootfs/data" &&
	ln -s /etc "$(bundle_of symabs)/rootfs/data" &&
	test_path_is_missing "/etc/$probe" &&
	host_mounts >mounts.before &&
	if rt_run symabs >out 2>err
	then
		# it started: the volume is at the container'"'"'s own /etc, where the write went
		grep -x probe out &&
		no_leftovers symabs &&
		file_is esc "written-$probe" w
	else
		rt_stderr symabs err >err.all &&
		test_stderr_mentions err.all esc
	fi &&
	test_path_is_missing "/etc/$probe" &&
	test_path_is_missing "/etc/written-$probe" &&
	test_path_is_missing "$(bundle_of symabs)/rootfs/etc/written-$probe" &&
	echo "image /etc" >expect &&
	test_cmp expect "$(bundle_of symabs)/rootfs/etc/marker" &&
	no_new_host_mounts mounts.before &&
	no_leftovers symabs
'

test_expect_success "$RT_PREREQ" 'a parent symlink /a -> ../../.. cannot reach or create host paths outside the rootfs' '
	test_when_finished "rt_rm symrel1 symrel2" &&
	mkdir outside &&
	echo "host file" >outside/host.txt &&
	ls -A outside >outside.before &&
	container_bundle symrel1 esc:/a/outside org.ovsnap.commit-interval=0 -- sh -c "echo w >/a/outside/written.txt" &&
	container_bundle symrel2 esc:/a/escape-new/deep org.ovsnap.commit-interval=0 -- true &&
	for b in symrel1 symrel2
	do
		ln -s ../../.. "$(bundle_of $b)/rootfs/a" || return 1
	done &&
	test "$(cd "$(bundle_of symrel1)/rootfs/a" && pwd -P)" = "$(cd "$TRASH_DIRECTORY" && pwd -P)" &&
	host_mounts >mounts.before &&
	if rt_run symrel1 >out1 2>err1
	then
		no_leftovers symrel1 &&
		file_is esc written.txt w
	else
		rt_stderr symrel1 err1 >err.all &&
		test_stderr_mentions err.all esc
	fi &&
	if ! rt_run symrel2 >out2 2>err2
	then
		rt_stderr symrel2 err2 >err.all &&
		test_stderr_mentions err.all esc
	fi &&
	no_leftovers symrel1 symrel2 &&
	ls -A outside >outside.after &&
	test_cmp outside.before outside.after &&
	echo "host file" >expect &&
	test_cmp expect outside/host.txt &&
	test_path_is_missing escape-new &&
	test_path_is_missing "$(dirname "$TRASH_DIRECTORY")/escape-new" &&
	no_new_host_mounts mounts.before
'

test_expect_success "$RT_PREREQ" 'nothing is left: no container, attachment or host mount; fsck clean' '
	no_leftovers &&
	no_container_attachments &&
	ovsnap fsck
'
