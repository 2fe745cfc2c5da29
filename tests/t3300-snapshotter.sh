#!/bin/bash
test_description='ovsnap-snapshotter: every Snapshots RPC directly and through a real containerd, crashes, hostile peers'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"

. "$TEST_DIRECTORY/snapshotter-lib.sh"

SD=$TRASH_DIRECTORY/sd
SD_ROOT=$SD/root
SD_SOCK=$SD/snapshotter.sock
CTRD=$TRASH_DIRECTORY/containerd
CTRD_SOCK=$CTRD/containerd.sock
IMAGE=localhost/ovsnap-test-busybox:latest

gc() { "$H2PY" "$TEST_DIRECTORY/helpers/grpc-client.py" "$SD_SOCK" "$@"; }
snaps() { ctr_ snapshots --snapshotter ovsnap "$@"; }

# snapd_start [ENV=VALUE...]: the daemon in the background, its output appended to $SD/log;
# committed snapshots are ovsnap trees (the default), in the node's own store below $SD_ROOT
snapd_start() {
	mkdir -p "$SD" &&
	{ env "$@" "$OVSNAP_SNAPSHOTTER" --root "$SD_ROOT" --address "$SD_SOCK" --debug \
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
	# the parent is a tree in the store: its lower is the mount of its image in the node cache
	echo "$opts" | grep -E "^index=off,workdir=$SD_ROOT/s/[0-9]+/work,upperdir=$SD_ROOT/s/[0-9]+/fs,lowerdir=$SD_ROOT/node/cache/mnt/[0-9a-f]+$" &&
	lower=${opts##*lowerdir=} &&
	test -s "$SD_ROOT/node/cache/layers/${lower##*/}/image" &&
	mount -t overlay overlay -o "$opts" mnt &&
	test "$(cat mnt/file)" = one &&
	echo two >mnt/file2 &&
	umount mnt &&
	gc usage child >u &&
	test "$(json_field inodes <u)" -ge 2 &&
	gc commit child2 child &&
	gc usage child2 >u2 &&
	# from the records of its tree: what it adds to its parent (file2: 1 inode, 4 bytes)
	test "$(json_field inodes <u2) $(json_field size <u2)" = "1 4" &&
	gc view v2 child2 >v2.json &&
	# one tree: a read-only bind of its image mount, as the overlayfs snapshotter of containerd binds one layer
	test "$(mount_type <v2.json)" = bind &&
	mount_opts <v2.json | grep -w ro &&
	mount -o "$(mount_opts <v2.json)" --bind "$(mount_src <v2.json)" mnt &&
	test_must_fail touch mnt/file3 &&
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

# chain_128 SOCK: committed L1..L128 on the daemon at SOCK, each adding the file layerN, and
# an active "top" on L128 whose mounts are in m.json; chain_drop SOCK removes them. In one
# process: 400 clients started one by one take minutes here.
chain_128() {
	"$H2PY" - "$TEST_DIRECTORY/helpers" "$1" <<-\EOF >m.json
	import json, sys
	sys.path.insert(0, sys.argv[1])
	gc = __import__("grpc-client")
	sock = sys.argv[2]
	def rpc(method, *fields):
	    st, msg, msgs = gc.call(sock, method, gc.frame(b"".join(fields)))
	    assert st == 0, (method, msg)
	    return msgs
	def mounts(msgs):
	    return [gc.mount_of(m) for m in gc.parse(msgs[0]).get(1, [])]
	parent = None
	for i in range(1, 129):
	    key = "L%d-a" % i
	    m = mounts(rpc("Prepare", gc.field_bytes(2, key), gc.field_bytes(3, parent) if parent else b""))[0]
	    d = m["source"] if parent is None else [o[9:] for o in m["options"] if o.startswith("upperdir=")][0]
	    with open("%s/layer%d" % (d, i), "w") as f:
	        f.write("%d\n" % i)
	    rpc("Commit", gc.field_bytes(2, "L%d" % i), gc.field_bytes(3, key))
	    parent = "L%d" % i
	print(json.dumps(mounts(rpc("Prepare", gc.field_bytes(2, "top"), gc.field_bytes(3, parent)))))
	EOF
}
chain_drop() {
	"$H2PY" - "$TEST_DIRECTORY/helpers" "$1" <<-\EOF
	import sys
	sys.path.insert(0, sys.argv[1])
	gc = __import__("grpc-client")
	for k in ["top"] + ["L%d" % i for i in range(128, 0, -1)]:
	    st, msg, _ = gc.call(sys.argv[2], "Remove", gc.frame(gc.field_bytes(2, k)))
	    assert st == 0, (k, msg)
	EOF
}
opt_of() { mount_opts | tr , "\n" | sed -n "s/^$1=//p"; }

test_expect_success H2,ROOT '128 committed layers: the chain mounts from a short stack of cached layers, in a page of options' '
	chain_128 "$SD_SOCK" &&
	opts=$(mount_opts <m.json) &&
	n=$(opt_of lowerdir <m.json | tr : "\n" | wc -l) &&
	echo "$n lowers, ${#opts} bytes of options" &&
	test "$n" -ge 1 && test "$n" -le 24 &&
	test ${#opts} -lt 4096 &&
	mount -t overlay overlay -o "$opts" mnt &&
	test "$(cat mnt/layer1)$(cat mnt/layer64)$(cat mnt/layer128)" = 164128 &&
	umount mnt &&
	chain_drop "$SD_SOCK"
'

# the same daemon with committed snapshots as plain directories (--layers dir), on its own root
gcd() { "$H2PY" "$TEST_DIRECTORY/helpers/grpc-client.py" "$SD/dir.sock" "$@"; }
snapd_dir_atexit_() {
	[ -e "$SD/dir.pid" ] && kill -KILL "$(cat "$SD/dir.pid")" 2>/dev/null
	return 0
}
test_atexit snapd_dir_atexit_

test_expect_success H2,ROOT '--layers dir: a committed snapshot stays a directory and is the lower in place' '
	{ "$OVSNAP_SNAPSHOTTER" --layers dir --root "$SD/dirroot" --address "$SD/dir.sock" \
		>>"$SD/dir.log" 2>&1 5>&- 6>&- 7>&- 8>&- & echo $! >"$SD/dir.pid"; } &&
	wait_for 10 gcd list &&
	gcd prepare a >m.json &&
	echo one >"$(mount_src <m.json)/file" &&
	gcd commit base a &&
	gcd prepare child base >c.json &&
	mount_opts <c.json | grep -E "^index=off,workdir=$SD/dirroot/s/[0-9]+/work,upperdir=$SD/dirroot/s/[0-9]+/fs,lowerdir=$SD/dirroot/s/[0-9]+/fs$" &&
	mount -t overlay overlay -o "$(mount_opts <c.json)" mnt &&
	test "$(cat mnt/file)" = one &&
	echo two >mnt/file2 &&
	umount mnt &&
	gcd usage child >u &&
	gcd commit child2 child &&
	gcd usage child2 >u2 &&
	test_cmp u u2 &&
	! test -e "$SD/dirroot/t/1" &&
	gcd remove child2 && gcd remove base
'

test_expect_success H2,ROOT '--layers dir: 128 layers mount with lowerdirs relative to s/ (as containerd compacts them)' '
	chain_128 "$SD/dir.sock" &&
	opts=$(mount_opts <m.json) &&
	lower=$(opt_of lowerdir <m.json) &&
	test "$(echo "$lower" | tr : "\n" | wc -l)" = 128 &&
	short=$(echo "$lower" | sed "s|$SD/dirroot/s/||g") &&
	data="index=off,workdir=$(opt_of workdir <m.json),upperdir=$(opt_of upperdir <m.json),lowerdir=$short" &&
	echo "compacted options: ${#data} bytes" &&
	test ${#data} -lt 4096 &&
	(cd "$SD/dirroot/s" && mount -t overlay overlay -o "$data" "$TRASH_DIRECTORY/mnt") &&
	test "$(cat mnt/layer1)$(cat mnt/layer64)$(cat mnt/layer128)" = 164128 &&
	umount mnt &&
	chain_drop "$SD/dir.sock" &&
	kill -TERM "$(cat "$SD/dir.pid")" &&
	wait_for 10 eval "! kill -0 $(cat "$SD/dir.pid") 2>/dev/null" &&
	! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SD/dir.log"
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

# The socket is the trust boundary (README: Security model): whoever talks to it can commit
# any content under any chain id, which the remote-snapshotter shortcut hands to other nodes.
test_expect_success H2,ROOT 'the socket is root-only; a peer of another uid is refused even when its mode lets it in' '
	test "$(stat -c %a "$SD_SOCK")" = 600 &&
	chmod 0666 "$SD_SOCK" && chmod 0711 "$TRASH_DIRECTORY" "$SD" &&
	test_when_finished "chmod 0700 \"\$TRASH_DIRECTORY\" \"\$SD\"" &&
	setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 - "$SD_SOCK" <<-\EOF >peer.out &&
	import socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	try:
	    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"))
	    d = s.recv(100)
	except (BrokenPipeError, ConnectionResetError):
	    d = b""
	print("closed" if d == b"" else "answered %r" % d)
	EOF
	cat peer.out &&
	test "$(cat peer.out)" = closed &&
	grep -E "\(connect\): PermissionDenied: connection of pid [0-9]+ uid 65534 refused: only root" "$SD/log" &&
	chmod 0600 "$SD_SOCK" &&
	gc stat a
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

# trash_empty: the reaper (or a Cleanup) has emptied the trash
trash_empty() { test -z "$(ls -A "$SD_ROOT/trash")"; }

# dirs_are_records: every record is a directory s/<id> or a tree t/<id> (a committed snapshot
# in the store), never both, and nothing else is there; no temp file, empty trash
dirs_are_records() {
	{ ls "$SD_ROOT/s"; ls "$SD_ROOT/t"; } | sort >dirs &&
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

# 200 cycles per client; 50 under the sanitizers, where each call is several times slower
case $OVSNAP in */build-asan/*) CYCLES=${SNAPD_CYCLES:-50} ;; *) CYCLES=${SNAPD_CYCLES:-200} ;; esac
sd_mounts() { grep -c " ${SD_ROOT}[/ ]" /proc/self/mountinfo || true; }
test_expect_success H2 "a stuck connection does not stop the others; 8 clients x $CYCLES cycles at once" '
	gc prepare cyc-base-a >/dev/null &&
	gc commit cyc-base cyc-base-a >/dev/null &&
	gc prepare cyc-warm cyc-base >/dev/null &&
	gc remove cyc-warm >/dev/null &&
	sd_mounts >mounts.before &&
	"$H2PY" - "$TEST_DIRECTORY/helpers" "$SD_SOCK" "$CYCLES" <<-\EOF &&
	import socket, sys, threading
	sys.path.insert(0, sys.argv[1])
	gc = __import__("grpc-client")
	sock = sys.argv[2]
	cycles = int(sys.argv[3])
	stuck = socket.socket(socket.AF_UNIX)
	stuck.connect(sock)
	stuck.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00")  # half a frame header, then silence
	errors = []
	def worker(w):
	    # odd clients stand on a committed parent: their snapshots are overlays on its lowers
	    parent = gc.field_bytes(3, "cyc-base") if w % 2 else b""
	    try:
	        for i in range(cycles):
	            k = "w%d/%d" % (w, i)
	            for m, body in (("Prepare", gc.field_bytes(2, k) + parent),
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
	wait_for 60 trash_empty &&
	dirs_are_records &&
	ls /proc/$(cat "$SD/pid")/fd | wc -l >fds &&
	test "$(cat fds)" -lt 20 &&
	sd_mounts >mounts.after &&
	test_cmp mounts.before mounts.after &&
	gc remove cyc-base >/dev/null
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

# the backend's snapshots, less those containerd has removed but may not have told the backend
# yet: it does that in its own garbage collection, whose interval grows with how long the last
# one took (seconds to a minute on a loaded machine)
settled() { gc list "$@" | grep -v -e "/c-\\(base\\|view\\)\"" -e "/ovsnap-t3300-$$\"" | sort; }

test_expect_success H2,CONTAINERD,BUSYBOX,STATIC_CC 'ctr image import --snapshotter ovsnap; ctr run --snapshotter ovsnap writes a file and exits 0' '
	container_setup &&
	image_build &&
	settled "kind==committed" >committed.before &&
	ctr_ image import --snapshotter ovsnap image.tar >import.out &&
	settled "kind==committed" >committed &&
	test "$(wc -l <committed)" = $(($(wc -l <committed.before) + 1)) &&
	ctr_ run --rm --snapshotter ovsnap --runc-root "$RT_STATE" "$IMAGE" "ovsnap-t3300-$$" \
		sh -c "echo written >/root/out && cat /root/out && cat /etc/marker" </dev/null >out &&
	printf "written\nimage /etc\n" >expect &&
	test_cmp expect out
'

test_expect_success H2,CONTAINERD,BUSYBOX,STATIC_CC 'kill -9 of the daemon, restart: containerd runs the image again' '
	settled >before &&
	snapd_kill9 &&
	snapd_start &&
	settled >after &&
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
