#!/bin/bash
test_description='ovsnap-snapshotter with a real containerd: ctr image import of multi-layer archives, one realistic (tens of thousands of files, hard links, xattrs, whiteouts, opaque dirs); ctr run reads every layer; ctr snapshots ls, info, usage, rm; the same after kill -9 and after a stop and start of the daemon'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"
. "$TEST_DIRECTORY/snapshotter-lib.sh"

# The realistic image: the busybox base layer and three layers from tests/helpers/image-layers.py,
# about $T3340_FILES files under /data in all; its expect.json is the merged tree, computed by the
# generator from the layers (not by the code under test).
FILES=${T3340_FILES:-20000}
LAYERS="python3 $TEST_DIRECTORY/helpers/image-layers.py"
SMALL=localhost/ovsnap-t3340-small:latest
REAL=localhost/ovsnap-t3340-real:latest
CTRD=$TRASH_DIRECTORY/ctrd
CTRD_SOCK=$CTRD/containerd.sock
PREREQ=H2,ROOT,CONTAINERD,BUSYBOX,STATIC_CC

snaps() { ctr_ snapshots --snapshotter ovsnap "$@"; }
# snaps_ls: ctr snapshots ls as "KEY PARENT KIND" lines, "-" for no parent, sorted
snaps_ls() { snaps ls | awk 'NR > 1 { print $1, (NF == 3 ? $2 : "-"), $NF }' | sort; }
# calls METHOD [CODE]: how many METHOD calls the daemon has logged (ending with CODE)
calls() { grep -c " $1: ${2:-}" "$TRASH_DIRECTORY/sd1.log"; }
# chain_ids IMAGE-DIR: the chain ids of the image's layers, bottom first (what containerd names
# its committed snapshots)
chain_ids() {
	python3 - "$1" <<-\EOF
	import hashlib, json, sys
	d = sys.argv[1]
	blob = lambda dg: json.load(open(d + "/blobs/sha256/" + dg.split(":")[1]))
	m = blob(json.load(open(d + "/index.json"))["manifests"][0]["digest"])
	chain = None
	for diff in blob(m["config"]["digest"])["rootfs"]["diff_ids"]:
	    chain = diff if chain is None else "sha256:" + hashlib.sha256((chain + " " + diff).encode()).hexdigest()
	    print(chain)
	EOF
}
# run_real NAME: ctr run of the realistic image; what it saw of /data checked against expect.json
run_real() {
	ctr_ run --rm --snapshotter ovsnap --runc-root "$RT_STATE" "$REAL" "ovsnap-t3340-$$-$1" \
		sh -c "$($LAYERS script); test -e /etc/marker || echo no-marker" </dev/null >"$1.out" &&
	$LAYERS check gen/expect.json "$1.out" &&
	test "$(tail -1 "$1.out")" = no-marker
}
# scan_view NAME: the view v-real of the image's top layer, mounted on the host: /data checked
# against expect.json with its xattrs and hard links
scan_view() {
	mkdir -p mnt &&
	snaps mounts mnt v-real >mount.sh &&
	sh mount.sh &&
	$LAYERS scan mnt/data >"$1.scan"
	local rc=$?
	umount mnt || rc=1
	[ $rc = 0 ] && $LAYERS check gen/expect.json "$1.scan"
}
# snapshot_state: ctr snapshots ls and info of every layer, and the usage of every committed one
snapshot_state() {
	local c
	snaps_ls &&
	for c in $(cat real.chain); do
		snaps info "$c" | grep -v -e '"Created"' -e '"Updated"' &&
		snaps usage "$c" | tail -n +2 || return 1
	done
}

test_expect_success $PREREQ 'two multi-layer archives: a small one and a realistic one' '
	container_setup &&
	mkdir -p s2/etc s2/data s3/data &&
	echo two >s2/etc/layer2 && : >s2/etc/.wh.marker && echo old >s2/data/old &&
	: >s3/data/.wh..wh..opq && echo new >s3/data/new && ln s3/data/new s3/data/new-link &&
	IMAGE=$SMALL image_build s2 s3 && mv image.tar small.tar && mv image small-image &&
	mkdir gen && $LAYERS make gen "$FILES" >nfiles &&
	echo "# $(cat nfiles) files in the merged /data of the realistic image" >&7 &&
	test "$(cat nfiles)" -gt $((FILES * 8 / 10)) &&
	IMAGE=$REAL image_build gen/l1 gen/l2 gen/l3 && mv image.tar real.tar && mv image real-image &&
	rm layer*.tar &&
	chain_ids small-image >small.chain && chain_ids real-image >real.chain &&
	test "$(head -1 small.chain)" = "$(head -1 real.chain)" &&
	test "$(wc -l <real.chain)" = 4
'

test_expect_success $PREREQ 'ctr image import --snapshotter ovsnap: every layer committed once, the shared base layer once' '
	sd_start 1 &&
	containerd_start "$(printf '"'"'[proxy_plugins.ovsnap]\n  type = "snapshot"\n  address = "%s"'"'"' "$TRASH_DIRECTORY/sd1.sock")" &&
	ctr_ image import --snapshotter ovsnap small.tar >import-small.out &&
	test "$(calls Commit OK)" = 3 &&
	ctr_ image import --snapshotter ovsnap real.tar >import-real.out &&
	test "$(calls Commit OK)" = 6 &&
	snaps_ls >ls &&
	for c in $(cat small.chain real.chain); do
		grep -E "^$c .* Committed\$" ls || return 1
	done
'

test_expect_success $PREREQ 'ctr run of the small image reads its layers' '
	ctr_ run --rm --snapshotter ovsnap --runc-root "$RT_STATE" "$SMALL" "ovsnap-t3340-$$-small" \
		sh -c "cat /etc/layer2 /data/new; ls /data; test -e /etc/marker || echo no-marker" </dev/null >small.out &&
	printf "two\nnew\nnew\nnew-link\nno-marker\n" >expect &&
	test_cmp expect small.out
'

test_expect_success $PREREQ 'ctr run of the realistic image: every file of every layer with its content, mode, owner and hard links; whiteouts and opaque dirs hide what they should' '
	run_real run1
'

test_expect_success $PREREQ 'from the host, a view of the top layer: the same tree with every xattr' '
	snaps view v-real "$(tail -1 real.chain)" >/dev/null &&
	# a root for containerd'"'"'s garbage collection, which drops snapshots nothing references
	snaps label v-real containerd.io/gc.root=t3340 &&
	scan_view view1 &&
	grep -q " user\.ovsnap\.tag " view1.scan && grep -q " user\.ovsnap\.long " view1.scan
'

test_expect_success $PREREQ 'ctr snapshots ls, info and usage show the layer chain' '
	snaps_ls >ls &&
	prev= &&
	for c in $(cat real.chain); do
		grep -x "$c ${prev:--} Committed" ls &&
		snaps info "$c" >info &&
		grep "\"Kind\": \"Committed\"" info &&
		if [ -n "$prev" ]; then grep "\"Parent\": \"$prev\"" info; else ! grep "\"Parent\"" info; fi &&
		snaps usage "$c" | tail -1 | awk "{ print \$1, \$NF }" >usage &&
		read -r key inodes <usage &&
		echo "$c: $(snaps usage "$c" | tail -1)" &&
		test "$key" = "$c" && test "$inodes" -gt 0 &&
		prev=$c || return 1
	done &&
	grep -x "v-real $prev View" ls &&
	snaps usage "$(sed -n 2p real.chain)" | tail -1 | awk "{ print \$NF }" >usage1 &&
	read -r inodes <usage1 &&
	test "$inodes" -ge $((FILES * 6 / 10)) &&
	snapshot_state >state.before
'

test_expect_success $PREREQ 'ctr snapshots rm: refused for a layer with children; an active snapshot on the image goes' '
	snaps prepare act "$(tail -1 real.chain)" &&
	test_must_fail snaps rm "$(tail -1 real.chain)" 2>err &&
	cat err && grep -i child err &&
	snaps rm act &&
	! snaps_ls | grep "^act "
'

for how in kill9 stop; do
test_expect_success $PREREQ "$how of the daemon and a restart: the same snapshots; the image runs and reads the same tree" '
	if [ '$how' = kill9 ]; then
		kill -KILL "$(cat sd1.pid)" && wait_for 10 sd_gone 1
	else
		sd_stop 1
	fi &&
	sd_start 1 &&
	wait_for 15 snaps ls >/dev/null &&
	snapshot_state >state.'$how' &&
	test_cmp state.before state.'$how' &&
	run_real run-'$how' &&
	scan_view view-'$how'
'
done

# the daemon's snapshots of the default namespace (containerd drops a removed one from the
# backend in its own garbage collection, a moment after ctr snapshots rm)
backend_empty() { ! sd 1 list | grep -q "\"default/"; }

# gone_or_rm KEY: ctr snapshots rm KEY, unless containerd's gc took it first (a layer whose
# child is gone and that no image names is garbage to containerd); while that gc is still
# removing a child, the rm is refused for the child: wait_for tries again
gone_or_rm() { snaps rm "$1" 2>rm.err || grep "not found" rm.err; }
no_snaps() { test -z "$(snaps_ls)"; }

test_expect_success $PREREQ 'ctr snapshots rm of every layer top first, ctr image rm: nothing left, the store is clean' '
	commits=$(calls Commit) &&
	snaps rm v-real &&
	snaps rm "$(tail -1 real.chain)" &&
	for c in $(tac real.chain | sed "1d;\$d") $(tac small.chain); do
		wait_for 30 gone_or_rm "$c" || { cat rm.err; return 1; }
	done &&
	ctr_ image rm "$SMALL" "$REAL" &&
	wait_for 60 no_snaps &&
	wait_for 120 backend_empty &&
	test "$(calls Commit)" = "$commits" &&
	"$OVSNAP" --root "$STORE" gc &&
	"$OVSNAP" --root "$STORE" fsck
'

test_expect_success $PREREQ 'containerd and the daemon stop cleanly, no sanitizer report' '
	containerd_stop_ &&
	sd_stop 1 &&
	! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" sd1.log
'

test_done
