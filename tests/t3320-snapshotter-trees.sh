#!/bin/bash
test_description='ovsnap-snapshotter: committed snapshots as ovsnap trees, lowers from the node cache, the snapshot.ref shortcut across nodes, snapshots ls, gc and fsck roots, kill -9 at the new steps'
. "$(dirname "$0")/lib.sh"

. "$TEST_DIRECTORY/snapshotter-lib.sh"

upper_of() { mount_opts | tr , "\n" | sed -n "s/^upperdir=//p"; }
lower_of() { mount_opts | tr , "\n" | sed -n "s/^lowerdir=//p"; }

test_expect_success H2,ROOT 'a committed snapshot is an ovsnap tree; its children stand on the node cache' '
	sd_start 1 &&
	sd 1 prepare "ns/1/a" >m.json &&
	src=$(mount_src <m.json) &&
	echo one >"$src/keep" && echo gone >"$src/del" && mkdir -p "$src/dir/sub" && echo x >"$src/dir/sub/f" &&
	ln "$src/keep" "$src/hard" &&
	sd 1 commit "ns/2/sha256:1111111111111111111111111111111111111111111111111111111111111111" "ns/1/a" &&
	test -s sd1/t/1 && ! test -e sd1/s/1 &&
	ls store/containerd/roots/*/1 &&
	sd 1 usage "ns/2/sha256:1111111111111111111111111111111111111111111111111111111111111111" >u &&
	grep "\"inodes\": 6" u &&
	sd 1 prepare "ns/3/b" "ns/2/sha256:1111111111111111111111111111111111111111111111111111111111111111" >m.json &&
	lower=$(lower_of <m.json) && up=$(upper_of <m.json) &&
	case $lower in "$TRASH_DIRECTORY"/sd1/node/cache/mnt/*) ;; *) false ;; esac &&
	test -s "sd1/node/cache/layers/${lower##*/}/image" &&
	mkdir mnt && mount -t overlay overlay -o "$(mount_opts <m.json)" mnt &&
	rm mnt/del && rm -r mnt/dir && mkdir mnt/dir && echo new >mnt/dir/n && echo two >mnt/keep &&
	umount mnt &&
	sd 1 commit "ns/4/sha256:2222222222222222222222222222222222222222222222222222222222222222" "ns/3/b" &&
	sd 1 view "ns/5/v" "ns/4/sha256:2222222222222222222222222222222222222222222222222222222222222222" >v.json &&
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
	sd 1 prepare "ns/6/c" "ns/4/sha256:2222222222222222222222222222222222222222222222222222222222222222" >m.json &&
	mount -t overlay overlay -o "$(mount_opts <m.json)" mnt &&
	test "$(cat mnt/keep)" = two && test "$(cat mnt/dir/n)" = new &&
	umount mnt
'

test_expect_success H2,ROOT 'a second node over the same store: Prepare with snapshot.ref answers AlreadyExists, the layer is committed and mounts' '
	sd_start 2 &&
	L=containerd.io/snapshot.ref &&
	expect_status AlreadyExists sd 2 prepare "ns/1/extract-1 sha256:1111111111111111111111111111111111111111111111111111111111111111" \
		-l $L=sha256:1111111111111111111111111111111111111111111111111111111111111111 &&
	sd 2 list "labels.\"$L\"==sha256:1111111111111111111111111111111111111111111111111111111111111111" >l1 &&
	test "$(wc -l <l1)" = 1 && grep "\"kind\": \"committed\"" l1 &&
	P=$(python3 -c "import json;print(json.load(open(\"l1\"))[\"name\"])") &&
	expect_status AlreadyExists sd 2 prepare "ns/2/extract-2 sha256:2222222222222222222222222222222222222222222222222222222222222222" "$P" \
		-l $L=sha256:2222222222222222222222222222222222222222222222222222222222222222 &&
	sd 2 list "parent==$P" >l2 && grep committed l2 &&
	Q=$(python3 -c "import json;print(json.load(open(\"l2\"))[\"name\"])") &&
	sd 2 prepare "ns/3/run" "$Q" >m.json &&
	mount -t overlay overlay -o "$(mount_opts <m.json)" mnt &&
	test "$(cat mnt/keep)" = two && ! test -e mnt/del && test "$(cat mnt/dir/n)" = new &&
	umount mnt &&
	# unknown layer, wrong parent, no label: no shortcut
	sd 2 prepare "ns/4/x" -l $L=sha256:3333333333333333333333333333333333333333333333333333333333333333 >/dev/null &&
	sd 2 prepare "ns/5/y" "$P" -l $L=sha256:1111111111111111111111111111111111111111111111111111111111111111 >/dev/null &&
	sd 2 prepare "ns/6/z" >/dev/null
'

for f in ctree-captured ctree-recorded ctree-rooted commit-recorded; do
test_expect_success H2,ROOT "kill -9 at $f, restart: no committed snapshot lost, the half-done commit cleaned" '
	sd_stop 1 && sd_start 1 OVSNAP_FAULT='$f' &&
	sd 1 prepare "ns/k/'$f'" >m.json &&
	echo data >"$(mount_src <m.json)/f" &&
	{ sd 1 commit "ns/k/c-'$f'" "ns/k/'$f'"; true; } &&
	wait_for 10 sd_gone 1 &&
	sd_start 1 &&
	sd 1 list >all && grep -c "\"kind\": \"committed\"" all >n &&
	if sd 1 stat "ns/k/c-'$f'" >st 2>/dev/null; then
		sd 1 view "ns/k/v-'$f'" "ns/k/c-'$f'" >v.json && test "$(cat "$(mount_src <v.json)"/f)" = data
	else
		sd 1 stat "ns/k/'$f'" | grep active &&
		n=$(ls sd1/t | wc -l) && c=$(grep -c committed all) && test "$n" -le "$c" &&
		test "$(ls store/containerd/roots/$(cat sd1/instance)/ | wc -l)" = "$n"
	fi &&
	"$OVSNAP" --root "$STORE" fsck
'
done

# committed N: the committed snapshots of daemon N, one name a line, sorted
committed() { sd "$1" list "kind==committed" | python3 -c 'import json,sys; [print(json.loads(l)["name"]) for l in sys.stdin]' | sort; }
# trees_are_roots N: daemon N has a tree record t/<id> for each of its committed snapshots and a
# store root for each tree record, nothing more
trees_are_roots() {
	ls "sd$1/t" | sort >trees &&
	ls "store/containerd/roots/$(cat "sd$1/instance")/" | sort >roots &&
	test_cmp trees roots &&
	test "$(wc -l <trees)" = "$(committed "$1" | wc -l)"
}

test_expect_success H2,ROOT 'kill -9 at ctree-unrecorded (Remove: tree record gone, store root left): the restart drops the root, nothing else lost' '
	sd 1 prepare "ns/u/a" >m.json &&
	echo doomed >"$(mount_src <m.json)/f" &&
	sd 1 commit "ns/u/c" "ns/u/a" &&
	committed 1 | grep -vx "ns/u/c" >expect &&
	trees_are_roots 1 &&
	sd_stop 1 && sd_start 1 OVSNAP_FAULT=ctree-unrecorded &&
	test_must_fail sd 1 remove "ns/u/c" &&
	wait_for 10 sd_gone 1 &&
	sd_start 1 &&
	expect_status NotFound sd 1 stat "ns/u/c" &&
	committed 1 >actual &&
	test_cmp expect actual &&
	trees_are_roots 1 &&
	sd 1 prepare "ns/u/p" "ns/4/sha256:2222222222222222222222222222222222222222222222222222222222222222" >p.json &&
	mount -t overlay overlay -o "$(mount_opts <p.json)" mnt &&
	test "$(cat mnt/keep)" = two && umount mnt &&
	"$OVSNAP" --root "$STORE" gc &&
	"$OVSNAP" --root "$STORE" fsck
'

test_expect_success H2,ROOT 'kill -9 at shortcut-stored (tree recorded, no snapshot record): the restart drops it; the shortcut then works' '
	L=containerd.io/snapshot.ref &&
	C1=sha256:1111111111111111111111111111111111111111111111111111111111111111 &&
	committed 2 >expect &&
	trees_are_roots 2 &&
	sd_stop 2 && sd_start 2 OVSNAP_FAULT=shortcut-stored &&
	test_must_fail sd 2 prepare "ns/s/extract-1 $C1" -l $L=$C1 &&
	wait_for 10 sd_gone 2 &&
	sd_start 2 &&
	committed 2 >actual &&
	test_cmp expect actual &&
	trees_are_roots 2 &&
	expect_status AlreadyExists sd 2 prepare "ns/s/extract-2 $C1" -l $L=$C1 &&
	grep "committed as \"$C1@" status.out &&
	trees_are_roots 2 &&
	"$OVSNAP" --root "$STORE" fsck
'

test_expect_success H2 'the daemons stop cleanly' '
	sd_stop 1 && sd_stop 2 &&
	! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" sd1.log sd2.log
'

test_done
