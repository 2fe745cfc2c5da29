#!/bin/bash
test_description='ovsnap-snapshotter: every Snapshots RPC directly and through a real containerd, crashes, hostile peers'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"

# The daemon under test: the one built beside $OVSNAP (snapshotter/ovsnap-snapshotter, or
# build-asan/ovsnap-snapshotter for build-asan/ovsnap), or $OVSNAP_SNAPSHOTTER.
if [ -z "${OVSNAP_SNAPSHOTTER:-}" ]; then
	OVSNAP_SNAPSHOTTER=$(dirname "$OVSNAP")/ovsnap-snapshotter
fi
case $OVSNAP_SNAPSHOTTER in /*) ;; *) OVSNAP_SNAPSHOTTER=$PWD/$OVSNAP_SNAPSHOTTER ;; esac
if ! [ -x "$OVSNAP_SNAPSHOTTER" ]; then
	echo "Bail out! no ovsnap-snapshotter at $OVSNAP_SNAPSHOTTER (run make, or set OVSNAP_SNAPSHOTTER)"
	exit 1
fi

SD=$TRASH_DIRECTORY/sd
SD_ROOT=$SD/root
SD_SOCK=$SD/snapshotter.sock
CTRD=$TRASH_DIRECTORY/containerd
CTRD_SOCK=$CTRD/containerd.sock
IMAGE=localhost/ovsnap-test-busybox:latest
# python3-h2 is a Debian package: the system python has it whatever python3 is first on PATH
H2PY=/usr/bin/python3

test_lazy_prereq H2 '/usr/bin/python3 -c "import h2"'

gc() { "$H2PY" "$TEST_DIRECTORY/helpers/grpc-client.py" "$SD_SOCK" "$@"; }
snaps() { ctr_ snapshots --snapshotter ovsnap "$@"; }

# snapd_start [ENV=VALUE...]: the daemon in the background, its output appended to $SD/log
snapd_start() {
	mkdir -p "$SD" &&
	{ env "$@" "$OVSNAP_SNAPSHOTTER" ${SD_LAYERS:---layers dir} --root "$SD_ROOT" --address "$SD_SOCK" --debug \
		>>"$SD/log" 2>&1 5>&- 6>&- 7>&- 8>&- & echo $! >"$SD/pid"; } &&
	wait_for 10 test -S "$SD_SOCK" &&
	wait_for 10 gc list
}
# snapd_kill9: the daemon dies at once (its socket file stays, stale)
snapd_kill9() {
	kill -KILL "$(cat "$SD/pid")" &&
	wait_for 10 snapd_gone
}
snapd_gone() { ! kill -0 "$(cat "$SD/pid")" 2>/dev/null; }
# snapd_stop: SIGTERM; it must exit 0 and remove its socket
snapd_stop() {
	local pid rc
	pid=$(cat "$SD/pid") &&
	kill -TERM "$pid" &&
	wait_for 10 snapd_gone &&
	{ wait "$pid"; rc=$?; true; } &&
	echo "daemon exit status $rc" &&
	test "$rc" = 0 &&
	! test -e "$SD_SOCK"
}
snapd_atexit_() {
	[ -e "$SD/pid" ] && kill -KILL "$(cat "$SD/pid")" 2>/dev/null
	return 0
}
test_atexit snapd_atexit_
# no_sanitizer_report: the daemon's log has no ASan/UBSan report
no_sanitizer_report() {
	! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SD/log"
}

# json_field FIELD <JSON: print d[FIELD]
json_field() { python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(v if isinstance(v,str) else json.dumps(v))' "$1"; }
# mount_opts <MOUNTS-JSON: the options of the one mount, comma-separated
mount_opts() { python3 -c 'import json,sys; m=json.load(sys.stdin); assert len(m)==1; print(",".join(m[0]["options"]))'; }
mount_src() { python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["source"])'; }
mount_type() { python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["type"])'; }

# expect_status NAME CMD...: CMD fails with gRPC status NAME (grpc-client.py prints it first)
expect_status() {
	local want=$1
	shift
	"$@" >status.out 2>&1
	local rc=$?
	cat status.out
	[ "$rc" != 0 ] && [ "$rc" != 64 ] && grep -q "^$want: " status.out
}

test_expect_success H2 'the daemon starts on an empty root and serves' '
	snapd_start &&
	gc list >out &&
	test_must_be_empty out &&
	test -S "$SD_SOCK" &&
	test -d "$SD_ROOT/meta"
'

test_expect_success H2 'prepare without a parent: a bind mount of a root of mode 0755' '
	gc prepare a >m.json &&
	test "$(mount_type <m.json)" = bind &&
	test "$(mount_opts <m.json)" = rw,rbind &&
	src=$(mount_src <m.json) &&
	test "$(stat -c %a "$src")" = 755 &&
	gc stat a >info &&
	test "$(json_field kind <info)" = active &&
	test "$(json_field parent <info)" = ""
'

test_expect_success H2 'errors: AlreadyExists, NotFound, FailedPrecondition, InvalidArgument, naming the key' '
	expect_status AlreadyExists gc prepare a &&
	grep "\"a\"" status.out &&
	expect_status NotFound gc stat nosuch &&
	grep "\"nosuch\"" status.out &&
	expect_status NotFound gc prepare b nosuch-parent &&
	grep nosuch-parent status.out &&
	expect_status InvalidArgument gc prepare b a &&
	grep "not a committed" status.out &&
	expect_status InvalidArgument gc prepare "" &&
	expect_status InvalidArgument gc prepare "$(printf "k%.0s" $(seq 1 10240))" &&
	grep "10240 bytes" status.out &&
	expect_status NotFound gc remove nosuch &&
	expect_status NotFound gc mounts nosuch &&
	expect_status NotFound gc usage nosuch &&
	expect_status NotFound gc commit x nosuch &&
	expect_status NotFound gc update nosuch
'

test_expect_success H2,ROOT 'an active mounts as written; commit makes it a lower; a view sees it read-only' '
	gc prepare "default/1/base" -l keep=yes >m.json &&
	mkdir -p mnt &&
	mount --bind "$(mount_src <m.json)" mnt &&
	echo one >mnt/file &&
	mkdir mnt/dir &&
	umount mnt &&
	gc commit "default/2/base" "default/1/base" -l containerd.io/snapshot.ref=sha256:abc &&
	expect_status NotFound gc stat "default/1/base" &&
	gc stat "default/2/base" >info &&
	test "$(json_field kind <info)" = committed &&
	json_field labels <info >labels &&
	grep -F "\"containerd.io/snapshot.ref\": \"sha256:abc\"" labels &&
	! grep keep labels &&
	expect_status FailedPrecondition gc mounts "default/2/base" &&
	gc view "default/3/view" "default/2/base" >v.json &&
	test "$(mount_type <v.json)" = bind &&
	test "$(mount_opts <v.json)" = ro,rbind &&
	test "$(cat "$(mount_src <v.json)/file")" = one &&
	expect_status FailedPrecondition gc commit "default/4/x" "default/3/view" &&
	grep "view, not active" status.out
'

test_expect_success H2,ROOT 'a child of a committed snapshot is an overlay; its mount shows the parent and takes writes' '
	gc prepare child "default/2/base" >c.json &&
	test "$(mount_type <c.json)" = overlay &&
	opts=$(mount_opts <c.json) &&
	echo "$opts" | grep -E "^index=off,workdir=$SD_ROOT/s/[0-9]+/work,upperdir=$SD_ROOT/s/[0-9]+/fs,lowerdir=$SD_ROOT/s/[0-9]+/fs$" &&
	mount -t overlay overlay -o "$opts" mnt &&
	test "$(cat mnt/file)" = one &&
	echo two >mnt/file2 &&
	umount mnt &&
	gc usage child >u &&
	test "$(json_field inodes <u)" -ge 2 &&
	gc commit child2 child &&
	gc usage child2 >u2 &&
	test_cmp u u2 &&
	gc view v2 child2 >v2.json &&
	test "$(mount_type <v2.json)" = overlay &&
	mount -t overlay overlay -o "$(mount_opts <v2.json),ro" mnt &&
	test "$(cat mnt/file) $(cat mnt/file2)" = "one two" &&
	umount mnt
'

test_expect_success H2 'remove is refused while children exist, then works leaf first' '
	expect_status FailedPrecondition gc remove "default/2/base" &&
	grep children status.out &&
	gc remove v2 &&
	gc remove child2 &&
	gc remove "default/3/view" &&
	gc stat "default/2/base" &&
	expect_status NotFound gc stat child2
'

test_expect_success H2 'update: labels.KEY sets or removes one label, labels replaces all, other fields refused' '
	gc update "default/2/base" -l a=1 -p labels.a >info &&
	json_field labels <info >labels &&
	grep "\"a\": \"1\"" labels && grep snapshot.ref labels &&
	gc update "default/2/base" -p labels.a >info &&
	! json_field labels <info | grep "\"a\"" &&
	gc update "default/2/base" -l only=this -p labels >info &&
	test "$(json_field labels <info)" = "{\"only\": \"this\"}" &&
	expect_status InvalidArgument gc update "default/2/base" -p name &&
	gc update "default/2/base" -l containerd.io/snapshot.ref=sha256:abc -p labels >/dev/null
'

test_expect_success H2 'list: containerd filters (labels."K"==V, parent, name, kind, commas, alternatives)' '
	gc prepare p1 "default/2/base" -l color=red &&
	gc view p2 "default/2/base" -l color=blue &&
	gc list >all &&
	test "$(wc -l <all)" = 4 &&
	gc list "labels.\"containerd.io/snapshot.ref\"==sha256:abc" >out &&
	test "$(wc -l <out)" = 1 && grep "\"default/2/base\"" out &&
	gc list "parent==default/2/base" >out &&
	test "$(wc -l <out)" = 2 &&
	gc list "parent==default/2/base,labels.color==red" >out &&
	test "$(wc -l <out)" = 1 && grep "\"p1\"" out &&
	gc list "kind==view" "name==a" >out &&
	test "$(wc -l <out)" = 2 &&
	gc list "labels.color" >out &&
	test "$(wc -l <out)" = 2 &&
	gc list "labels.color!=red,kind!=committed" >out &&
	test "$(wc -l <out)" = 2 &&
	gc list "name~=^p[0-9]$" >out &&
	test "$(wc -l <out)" = 2 &&
	expect_status InvalidArgument gc list "labels.color==" &&
	expect_status InvalidArgument gc list "name==a b"
'

test_expect_success H2 'list streams many snapshots in several messages' '
	"$H2PY" - "$TEST_DIRECTORY/helpers" "$SD_SOCK" <<-\EOF &&
	import sys
	sys.path.insert(0, sys.argv[1])
	gc = __import__("grpc-client")
	sock = sys.argv[2]
	for i in range(250):
	    st, msg, _ = gc.call(sock, "Prepare", gc.frame(gc.field_bytes(2, "many/%d" % i)))
	    assert st == 0, msg
	st, msg, msgs = gc.call(sock, "List", gc.frame(gc.field_bytes(2, "name~=^many/")))
	assert st == 0, msg
	n = sum(len(gc.parse(m).get(1, [])) for m in msgs)
	assert n == 250 and len(msgs) >= 3, (n, len(msgs))
	for i in range(250):
	    st, msg, _ = gc.call(sock, "Remove", gc.frame(gc.field_bytes(2, "many/%d" % i)))
	    assert st == 0, msg
	EOF
	gc list "name~=^many/" >out &&
	test_must_be_empty out
'

test_expect_success H2,ROOT '128 committed layers: the chain mounts with lowerdirs relative to s/ (as containerd compacts them)' '
	parent= &&
	for i in $(seq 1 128); do
		gc prepare "L$i-a" ${parent:+"$parent"} >m.json &&
		if [ -z "$parent" ]; then d=$(mount_src <m.json); else d=$(mount_opts <m.json | tr , "\n" | sed -n "s/^upperdir=//p"); fi &&
		echo "$i" >"$d/layer$i" &&
		gc commit "L$i" "L$i-a" &&
		parent=L$i || return 1
	done &&
	gc prepare top L128 >m.json &&
	opts=$(mount_opts <m.json) &&
	lower=$(echo "$opts" | tr , "\n" | sed -n "s/^lowerdir=//p") &&
	test "$(echo "$lower" | tr : "\n" | wc -l)" = 128 &&
	short=$(echo "$lower" | sed "s|$SD_ROOT/s/||g") &&
	work=$(echo "$opts" | tr , "\n" | sed -n "s/^workdir=//p") &&
	upper=$(echo "$opts" | tr , "\n" | sed -n "s/^upperdir=//p") &&
	data="index=off,workdir=$work,upperdir=$upper,lowerdir=$short" &&
	echo "compacted options: ${#data} bytes" &&
	test ${#data} -lt 4096 &&
	(cd "$SD_ROOT/s" && mount -t overlay overlay -o "$data" "$TRASH_DIRECTORY/mnt") &&
	test "$(cat mnt/layer1)$(cat mnt/layer64)$(cat mnt/layer128)" = 164128 &&
	umount mnt &&
	gc remove top &&
	for i in $(seq 128 -1 1); do gc remove "L$i" || return 1; done
'

test_expect_success H2 'kill -9, restart: every snapshot is still there, the stale socket is replaced' '
	gc list | sort >before &&
	snapd_kill9 &&
	test -S "$SD_SOCK" &&
	snapd_start &&
	gc list | sort >after &&
	test_cmp before after &&
	test "$(stat -c %a "$(gc mounts a | mount_src)")" = 755
'

test_expect_success H2 'a second daemon on the same root is refused' '
	test_expect_code 4 "$OVSNAP_SNAPSHOTTER" --root "$SD_ROOT" --address "$SD/other.sock" 2>err &&
	grep "another ovsnap-snapshotter" err &&
	test_expect_code 4 "$OVSNAP_SNAPSHOTTER" --root "$SD/root2" --address "$SD_SOCK" 2>err &&
	grep "another server is listening" err
'

# crash_at FAULT CMD...: restart the daemon armed with OVSNAP_FAULT, run CMD (the daemon dies
# in it), restart it unarmed
crash_at() {
	local fault=$1
	shift
	snapd_stop &&
	snapd_start OVSNAP_FAULT="$fault" &&
	test_must_fail "$@" &&
	wait_for 10 snapd_gone &&
	snapd_start
}

# dirs_are_records: every s/<id> has a record, every record a directory; no temp file, empty trash
dirs_are_records() {
	ls "$SD_ROOT/s" | sort >dirs &&
	ls -A "$SD_ROOT/meta" | sort >records &&
	test_cmp dirs records &&
	ls -A "$SD_ROOT/trash" >trash &&
	test_must_be_empty trash
}

test_expect_success H2 'crash inside Prepare (directory made, no record): nothing left after the restart' '
	crash_at prepare-dir-made gc prepare crashed &&
	expect_status NotFound gc stat crashed &&
	dirs_are_records &&
	gc prepare crashed
'

test_expect_success H2 'crash inside Commit before the record is renamed: still active, committable' '
	crash_at snapdb-before-rename gc commit crashed-c crashed &&
	gc stat crashed >info &&
	test "$(json_field kind <info)" = active &&
	expect_status NotFound gc stat crashed-c &&
	dirs_are_records &&
	gc commit crashed-c crashed &&
	gc stat crashed-c
'

test_expect_success H2 'crash inside Remove (record gone, directory left): the directory goes at the restart' '
	crash_at remove-unrecorded gc remove crashed-c &&
	expect_status NotFound gc stat crashed-c &&
	dirs_are_records
'

test_expect_success H2 'cleanup removes directories no snapshot owns' '
	mkdir -p "$SD_ROOT/s/99999/fs" "$SD_ROOT/trash/junk/x" &&
	gc cleanup &&
	! test -e "$SD_ROOT/s/99999" &&
	dirs_are_records
'

test_expect_success H2 'hostile: garbage, broken frames, huge and broken messages; the daemon keeps serving' '
	gc raw "$(printf "garbage that is not HTTP/2 at all\r\n\r\n" | od -An -tx1 | tr -d " \n")" >out &&
	grep -E "closed|reset" out &&
	preface=505249202a20485454502f322e300d0a0d0a534d0d0a0d0a &&
	gc raw "${preface}000010040000000000" >out &&
	grep -E "closed|reset" out &&
	gc raw "${preface}ffffff00000000000100" >out &&
	grep -E "closed|reset" out &&
	expect_status ResourceExhausted gc call Prepare 00800000000a0161 &&
	grep "2147483648 bytes" status.out &&
	expect_status ResourceExhausted gc call Prepare 0001000001 &&
	grep "16777217 bytes, at most 16777216" status.out &&
	expect_status InvalidArgument gc call Prepare 0000000003120361 &&
	grep "malformed protobuf" status.out &&
	expect_status InvalidArgument gc call Prepare 0000000005120361ff63 &&
	expect_status InvalidArgument gc call Prepare 00000000051203610063 &&
	grep NUL status.out &&
	expect_status Internal gc call Prepare 010000000112 &&
	expect_status Internal gc call Prepare 00000000 &&
	expect_status Internal gc call Prepare "" &&
	expect_status Internal gc call Prepare 00000000000000000000 &&
	grep "more than one request message" status.out &&
	expect_status Unimplemented gc call /containerd.services.snapshots.v1.Snapshots/Nope 0000000000 &&
	expect_status Unimplemented gc call /x 0000000000 &&
	expect_status DeadlineExceeded gc call Stat 0000000003120161 --timeout 200m --keep-open &&
	gc stat a &&
	kill -0 "$(cat "$SD/pid")" &&
	no_sanitizer_report
'

test_expect_success H2 'a stuck connection does not stop the others; 8 clients at once' '
	"$H2PY" - "$TEST_DIRECTORY/helpers" "$SD_SOCK" <<-\EOF &&
	import socket, sys, threading
	sys.path.insert(0, sys.argv[1])
	gc = __import__("grpc-client")
	sock = sys.argv[2]
	stuck = socket.socket(socket.AF_UNIX)
	stuck.connect(sock)
	stuck.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00")  # half a frame header, then silence
	errors = []
	def worker(w):
	    try:
	        for i in range(25):
	            k = "w%d/%d" % (w, i)
	            for m, body in (("Prepare", gc.field_bytes(2, k)),
	                            ("Commit", gc.field_bytes(2, k + "/c") + gc.field_bytes(3, k)),
	                            ("Remove", gc.field_bytes(2, k + "/c"))):
	                st, msg, _ = gc.call(sock, m, gc.frame(body))
	                if st != 0:
	                    errors.append((m, k, st, msg))
	    except Exception as e:
	        errors.append(repr(e))
	ts = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
	[t.start() for t in ts]
	[t.join() for t in ts]
	stuck.close()
	assert not errors, errors[:5]
	EOF
	gc list "name~=^w" >out &&
	test_must_be_empty out &&
	dirs_are_records &&
	ls /proc/$(cat "$SD/pid")/fd | wc -l >fds &&
	test "$(cat fds)" -lt 20
'

# containerd with ovsnap as its proxy snapshotter
containerd_start_ovsnap() {
	containerd_start "$(printf '[proxy_plugins.ovsnap]\n  type = "snapshot"\n  address = "%s"' "$SD_SOCK")"
}

test_expect_success H2,CONTAINERD 'containerd uses ovsnap as a proxy snapshotter: ctr snapshots prepare, commit, view, info, ls' '
	containerd_start_ovsnap &&
	ctr_ plugins ls >plugins &&
	grep -E "io.containerd.snapshotter.v1 +ovsnap .* ok" plugins &&
	snaps prepare c-active &&
	mkdir -p mnt &&
	snaps mounts mnt c-active >mount.sh &&
	sh mount.sh &&
	echo via-ctr >mnt/f &&
	umount mnt &&
	snaps commit c-base c-active &&
	snaps view c-view c-base &&
	snaps mounts mnt c-view >mount.sh &&
	sh mount.sh &&
	test "$(cat mnt/f)" = via-ctr &&
	umount mnt &&
	snaps info c-base >info &&
	grep "\"Kind\": \"Committed\"" info &&
	snaps ls >ls &&
	grep -E "^c-view +c-base +View" ls &&
	snaps label c-base org.test=yes &&
	snaps info c-base | grep "\"org.test\": \"yes\"" &&
	snaps usage c-base >usage &&
	grep c-base usage &&
	gc list >direct &&
	grep "\"default/[0-9]*/c-base\"" direct
'

test_expect_success H2,CONTAINERD 'ctr snapshots rm: refused for a parent, works for leaves' '
	test_must_fail snaps rm c-base 2>err &&
	cat err &&
	grep -i "child" err &&
	snaps rm c-view &&
	snaps rm c-base &&
	! snaps ls | grep c-base
'

c_snapshots_gone_() { ! gc list | grep -q "/c-\\(base\\|view\\)\""; }

test_expect_success H2,CONTAINERD,BUSYBOX,STATIC_CC 'ctr image import --snapshotter ovsnap; ctr run --snapshotter ovsnap writes a file and exits 0' '
	container_setup &&
	image_build &&
	# containerd removes the snapshots rm-ed above from its backend in its own gc, after ctr returns
	wait_for 30 c_snapshots_gone_ &&
	gc list "kind==committed" >committed.before &&
	ctr_ image import --snapshotter ovsnap image.tar >import.out &&
	gc list "kind==committed" >committed &&
	test "$(wc -l <committed)" = $(($(wc -l <committed.before) + 1)) &&
	ctr_ run --rm --snapshotter ovsnap --runc-root "$RT_STATE" "$IMAGE" "ovsnap-t3300-$$" \
		sh -c "echo written >/root/out && cat /root/out && cat /etc/marker" </dev/null >out &&
	printf "written\nimage /etc\n" >expect &&
	test_cmp expect out
'

# the rootfs snapshot of the ctr run above, which containerd removes asynchronously
run_rootfs_gone_() { ! gc list | grep -q "/ovsnap-t3300-$$\""; }

test_expect_success H2,CONTAINERD,BUSYBOX,STATIC_CC 'kill -9 of the daemon, restart: containerd runs the image again' '
	# the rootfs of the last run goes in the garbage collection of containerd, after ctr returns
	wait_for 30 run_rootfs_gone_ &&
	gc list | sort >before &&
	snapd_kill9 &&
	snapd_start &&
	gc list | sort >after &&
	test_cmp before after &&
	wait_for 15 snaps ls >/dev/null &&
	snaps ls >ls &&
	test "$(wc -l <ls)" = 2 &&
	ctr_ run --rm --snapshotter ovsnap --runc-root "$RT_STATE" "$IMAGE" "ovsnap-t3300-$$-2" \
		sh -c "ls /bin/busybox" </dev/null >out &&
	echo /bin/busybox >expect &&
	test_cmp expect out &&
	containerd_stop_
'

test_expect_success H2 'SIGTERM: the daemon exits 0 and removes its socket; no sanitizer report' '
	snapd_stop &&
	no_sanitizer_report &&
	grep "Prepare: AlreadyExists" "$SD/log"
'

test_done
