#!/bin/bash
test_description='ovsnap-snapshotter: ctr image pull from a registry on loopback and ctr run; a second node over the same store pulls with containerd'"'"'s unpacker and unpacks nothing'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"
. "$TEST_DIRECTORY/snapshotter-lib.sh"

# Two nodes share the store $STORE: node N is ovsnap-snapshotter N (snapshotter-lib.sh) and a
# containerd below ctrdN using it as the proxy snapshotter "ovsnap". Node 1 pulls with ctr (its
# unpack, rootfs.ApplyLayers, sends no snapshot.ref: every layer is unpacked and committed);
# node 2 pulls with containerd's client and its unpacker (build/containerd-pull, from
# `make containerd-suite`), whose Prepare carries containerd.io/snapshot.ref.
PULL=${OVSNAP_CONTAINERD_PULL:-$REPO_ROOT/build/containerd-pull}
if [ -x "$PULL" ]; then
	test_set_prereq PULL
else
	say_ "# skipping the second node: no $PULL (make containerd-suite)"
fi
IMAGE=localhost/ovsnap-test-pull:latest
CTR_PREREQ=H2,ROOT,CONTAINERD,REGISTRY,BUSYBOX,STATIC_CC

# node N: what ctr_ and containerd_start act on from here
node() {
	CTRD=$TRASH_DIRECTORY/ctrd$1
	CTRD_SOCK=$CTRD/containerd.sock
}
# node_start N: daemon N and its containerd
node_start() {
	node "$1" &&
	sd_start "$1" &&
	containerd_start "$(printf '[proxy_plugins.ovsnap]\n  type = "snapshot"\n  address = "%s"' "$TRASH_DIRECTORY/sd$1.sock")" &&
	ctr_ plugins ls | grep -E "io.containerd.snapshotter.v1 +ovsnap .* ok"
}
# calls N METHOD [CODE]: how many METHOD calls daemon N has logged (ending with CODE)
calls() { grep -c " $2: ${3:-}" "$TRASH_DIRECTORY/sd$1.log"; }
# store_snapshots: how many snapshot records the store holds (a commit adds one)
store_snapshots() { find "$STORE/snapshots" -type f ! -name ".*" | wc -l; }
# layer_digests: the image's layer blobs
layer_digests() {
	python3 -c '
import json
i = json.load(open("image/index.json"))
m = json.load(open("image/blobs/sha256/" + i["manifests"][0]["digest"].split(":")[1]))
for l in m["layers"]:
    print(l["digest"])'
}
# run_image NAME: ctr run of the pulled image on the current node: reads every layer
run_image() {
	ctr_ run --rm --snapshotter ovsnap --runc-root "$RT_STATE" "$REF" "ovsnap-t3330-$$-$1" \
		sh -c "cat /etc/layer2 /etc/layer3 /data/new; ls /data; test -e /etc/marker || echo no-marker" \
		</dev/null >"$1.out" &&
	printf "two\nthree\nnew\nnew\nnew-link\nno-marker\n" >expect &&
	test_cmp expect "$1.out"
}

test_expect_success $CTR_PREREQ 'a three-layer image (whiteouts, an opaque dir, hard links) is pushed to a registry on loopback' '
	container_setup &&
	mkdir -p l2/etc l2/data l3/etc l3/data &&
	echo two >l2/etc/layer2 && : >l2/etc/.wh.marker && echo old >l2/data/old &&
	echo three >l3/etc/layer3 && : >l3/data/.wh..wh..opq && echo new >l3/data/new &&
	ln l3/data/new l3/data/new-link &&
	image_build l2 l3 &&
	registry_start &&
	REF=$REGISTRY/ovsnap/pull:latest &&
	registry_push image.tar ovsnap/pull:latest &&
	skopeo inspect --tls-verify=false "docker://$REF" >inspect.json &&
	test "$(python3 -c "import json; print(len(json.load(open(\"inspect.json\"))[\"Layers\"]))")" = 3
'

test_expect_success $CTR_PREREQ 'node 1: ctr image pull --snapshotter ovsnap unpacks and commits every layer as a tree; ctr run reads them' '
	node_start 1 &&
	n=$(store_snapshots) &&
	ctr_ image pull --plain-http --snapshotter ovsnap "$REF" >pull.out &&
	test "$(calls 1 Commit OK)" = 3 &&
	test "$(store_snapshots)" = $((n + 3)) &&
	test "$(ls sd1/t | wc -l)" = 3 &&
	run_image run1
'

test_expect_success $CTR_PREREQ,PULL 'node 1, another namespace: containerd'"'"'s unpacker finds every layer held (AlreadyExists), nothing unpacked' '
	n=$(store_snapshots) && c=$(calls 1 Commit) &&
	"$PULL" --address "$CTRD_SOCK" --namespace other --plain-http "$REF" >pull-ns.out &&
	cat pull-ns.out &&
	test "$(calls 1 Commit)" = "$c" &&
	test "$(store_snapshots)" = "$n" &&
	test "$(grep -c "Prepare: AlreadyExists: .* is in the store: committed as" sd1.log)" = 3
'

test_expect_success $CTR_PREREQ,PULL 'node 2 (own root, same store): the pull downloads and unpacks no layer; the image runs' '
	node_start 2 &&
	n=$(store_snapshots) &&
	"$PULL" --address "$CTRD_SOCK" --plain-http "$REF" >pull2.out &&
	cat pull2.out &&
	grep "^$REF sha256:" pull2.out &&
	test "$(grep -c "Prepare: AlreadyExists: .* is in the store: committed as" sd2.log)" = 3 &&
	test "$(calls 2 Commit)" = 0 &&
	test "$(store_snapshots)" = "$n" &&
	test "$(ls sd2/t | wc -l)" = 3 &&
	ctr_ content ls >content2 &&
	for l in $(layer_digests); do
		! grep -F "$l" content2 || return 1
	done &&
	run_image run2 &&
	test "$(calls 2 Commit)" = 0 &&
	test "$(store_snapshots)" = "$n"
'

test_expect_success $CTR_PREREQ 'the store is clean; the daemons stop cleanly with no sanitizer report' '
	"$OVSNAP" --root "$STORE" fsck &&
	for i in 2 1; do
		node $i && containerd_stop_ && sd_stop $i || return 1
	done &&
	! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" sd1.log sd2.log
'

test_done
