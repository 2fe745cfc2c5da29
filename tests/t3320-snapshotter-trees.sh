#!/bin/bash
test_description='ovsnap-snapshotter: committed snapshots as ovsnap trees, lowers from the node cache, the snapshot.ref shortcut across nodes, snapshots ls, gc and fsck roots, kill -9 at the new steps'
. "$(dirname "$0")/lib.sh"

if [ -z "${OVSNAP_SNAPSHOTTER:-}" ]; then
	OVSNAP_SNAPSHOTTER=$(dirname "$OVSNAP")/ovsnap-snapshotter
fi
case $OVSNAP_SNAPSHOTTER in /*) ;; *) OVSNAP_SNAPSHOTTER=$PWD/$OVSNAP_SNAPSHOTTER ;; esac
H2PY=/usr/bin/python3
test_lazy_prereq H2 '/usr/bin/python3 -c "import h2"'
STORE=$TRASH_DIRECTORY/store

# d N: the grpc client of daemon N (1 or 2)
d() { local n=$1; shift; "$H2PY" "$TEST_DIRECTORY/helpers/grpc-client.py" "$TRASH_DIRECTORY/sd$n.sock" "$@"; }
# start N [ENV=VALUE...]: daemon N, root sd<N>, node sd<N>/node, the shared store $STORE
start() {
	local n=$1; shift
	{ env "$@" "$OVSNAP_SNAPSHOTTER" --root "$TRASH_DIRECTORY/sd$n" --store "$STORE" \
		--address "$TRASH_DIRECTORY/sd$n.sock" --debug >>"$TRASH_DIRECTORY/sd$n.log" 2>&1 &
		echo $! >"$TRASH_DIRECTORY/sd$n.pid"; } &&
	wait_for 10 test -S "$TRASH_DIRECTORY/sd$n.sock" &&
	wait_for 10 d "$n" list
}
gone() { ! kill -0 "$(cat "$TRASH_DIRECTORY/sd$1.pid")" 2>/dev/null; }
stop() { kill -TERM "$(cat "$TRASH_DIRECTORY/sd$1.pid")" && wait_for 10 gone "$1"; }
atexit_() { for n in 1 2; do [ -e "$TRASH_DIRECTORY/sd$n.pid" ] && kill -KILL "$(cat "$TRASH_DIRECTORY/sd$n.pid")"; done; return 0; }
test_atexit atexit_
expect_status() {
	local want=$1
	shift
	"$@" >status.out 2>&1
	local rc=$?
	cat status.out
	[ "$rc" != 0 ] && [ "$rc" != 64 ] && grep -q "^$want: " status.out
}
mount_src() { python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["source"])'; }
mount_opts() { python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)[0]["options"]))'; }
upper_of() { mount_opts | tr , "\n" | sed -n "s/^upperdir=//p"; }
lower_of() { mount_opts | tr , "\n" | sed -n "s/^lowerdir=//p"; }

test_expect_success H2,ROOT 'a committed snapshot is an ovsnap tree; its children stand on the node cache' '
	start 1 &&
	d 1 prepare "ns/1/a" >m.json &&
	src=$(mount_src <m.json) &&
	echo one >"$src/keep" && echo gone >"$src/del" && mkdir -p "$src/dir/sub" && echo x >"$src/dir/sub/f" &&
	ln "$src/keep" "$src/hard" &&
	d 1 commit "ns/2/sha256:1111111111111111111111111111111111111111111111111111111111111111" "ns/1/a" &&
	test -s sd1/t/1 && ! test -e sd1/s/1 &&
	ls store/containerd/roots/*/1 &&
	d 1 usage "ns/2/sha256:1111111111111111111111111111111111111111111111111111111111111111" >u &&
	grep "\"inodes\": 6" u &&
	d 1 prepare "ns/3/b" "ns/2/sha256:1111111111111111111111111111111111111111111111111111111111111111" >m.json &&
	lower=$(lower_of <m.json) && up=$(upper_of <m.json) &&
	case $lower in "$TRASH_DIRECTORY"/sd1/node/cache/mnt/*) ;; *) false ;; esac &&
	test -s "sd1/node/cache/layers/${lower##*/}/image" &&
	mkdir mnt && mount -t overlay overlay -o "$(mount_opts <m.json)" mnt &&
	rm mnt/del && rm -r mnt/dir && mkdir mnt/dir && echo new >mnt/dir/n && echo two >mnt/keep &&
	umount mnt &&
	d 1 commit "ns/4/sha256:2222222222222222222222222222222222222222222222222222222222222222" "ns/3/b" &&
	d 1 view "ns/5/v" "ns/4/sha256:2222222222222222222222222222222222222222222222222222222222222222" >v.json &&
	if grep -q "\"bind\"" v.json; then mount --bind -o ro "$(mount_src <v.json)" mnt; else mount -t overlay overlay -o "$(mount_opts <v.json)" mnt; fi &&
	test "$(cat mnt/keep)" = two && ! test -e mnt/del && ! test -e mnt/dir/sub && test "$(cat mnt/dir/n)" = new &&
	test "$(cat mnt/hard)" = one &&
	umount mnt
'

test_expect_success H2,ROOT 'ovsnap snapshots ls shows key, kind, parent, tree and size offline' '
	"$OVSNAP" --json snapshots ls --dir sd1 >ls.json &&
	python3 - <<-\PY &&
	import json
	l = json.load(open("ls.json"))
	by = {s["key"]: s for s in l}
	c = by["ns/4/sha256:2222222222222222222222222222222222222222222222222222222222222222"]
	assert c["kind"] == "committed" and c["snapshot"] and c["parent"].startswith("ns/2/"), c
	assert by["ns/5/v"]["kind"] == "view" and by["ns/5/v"]["snapshot"] is None
	PY
	"$OVSNAP" snapshots ls --dir sd1 >ls.txt && grep -c committed ls.txt | grep -x 2
'

test_expect_success H2,ROOT 'gc keeps what committed snapshots reference; fsck checks it' '
	"$OVSNAP" --root "$STORE" gc &&
	"$OVSNAP" --root "$STORE" --json fsck >f.json &&
	grep "\"containerd_snapshots\": 2" f.json &&
	rm -rf sd1/node/cache/layers/* &&
	d 1 prepare "ns/6/c" "ns/4/sha256:2222222222222222222222222222222222222222222222222222222222222222" >m.json &&
	mount -t overlay overlay -o "$(mount_opts <m.json)" mnt &&
	test "$(cat mnt/keep)" = two && test "$(cat mnt/dir/n)" = new &&
	umount mnt
'

test_expect_success H2,ROOT 'a second node over the same store: Prepare with snapshot.ref answers AlreadyExists, the layer is committed and mounts' '
	start 2 &&
	L=containerd.io/snapshot.ref &&
	expect_status AlreadyExists d 2 prepare "ns/1/extract-1 sha256:1111111111111111111111111111111111111111111111111111111111111111" \
		-l $L=sha256:1111111111111111111111111111111111111111111111111111111111111111 &&
	d 2 list "labels.\"$L\"==sha256:1111111111111111111111111111111111111111111111111111111111111111" >l1 &&
	test "$(wc -l <l1)" = 1 && grep "\"kind\": \"committed\"" l1 &&
	P=$(python3 -c "import json;print(json.load(open(\"l1\"))[\"name\"])") &&
	expect_status AlreadyExists d 2 prepare "ns/2/extract-2 sha256:2222222222222222222222222222222222222222222222222222222222222222" "$P" \
		-l $L=sha256:2222222222222222222222222222222222222222222222222222222222222222 &&
	d 2 list "parent==$P" >l2 && grep committed l2 &&
	Q=$(python3 -c "import json;print(json.load(open(\"l2\"))[\"name\"])") &&
	d 2 prepare "ns/3/run" "$Q" >m.json &&
	mount -t overlay overlay -o "$(mount_opts <m.json)" mnt &&
	test "$(cat mnt/keep)" = two && ! test -e mnt/del && test "$(cat mnt/dir/n)" = new &&
	umount mnt &&
	# unknown layer, wrong parent, no label: no shortcut
	d 2 prepare "ns/4/x" -l $L=sha256:3333333333333333333333333333333333333333333333333333333333333333 >/dev/null &&
	d 2 prepare "ns/5/y" "$P" -l $L=sha256:1111111111111111111111111111111111111111111111111111111111111111 >/dev/null &&
	d 2 prepare "ns/6/z" >/dev/null
'

for f in ctree-captured ctree-recorded ctree-rooted commit-recorded; do
test_expect_success H2,ROOT "kill -9 at $f, restart: no committed snapshot lost, the half-done commit cleaned" '
	stop 1 && start 1 OVSNAP_FAULT='$f' &&
	d 1 prepare "ns/k/'$f'" >m.json &&
	echo data >"$(mount_src <m.json)/f" &&
	{ d 1 commit "ns/k/c-'$f'" "ns/k/'$f'"; true; } &&
	wait_for 10 gone 1 &&
	start 1 &&
	d 1 list >all && grep -c "\"kind\": \"committed\"" all >n &&
	if d 1 stat "ns/k/c-'$f'" >st 2>/dev/null; then
		d 1 view "ns/k/v-'$f'" "ns/k/c-'$f'" >v.json && test "$(cat "$(mount_src <v.json)"/f)" = data
	else
		d 1 stat "ns/k/'$f'" | grep active &&
		n=$(ls sd1/t | wc -l) && c=$(grep -c committed all) && test "$n" -le "$c" &&
		test "$(ls store/containerd/roots/$(cat sd1/instance)/ | wc -l)" = "$n"
	fi &&
	"$OVSNAP" --root "$STORE" fsck
'
done

test_expect_success H2 'the daemons stop cleanly' '
	stop 1 && stop 2 &&
	! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" sd1.log sd2.log
'

test_done
