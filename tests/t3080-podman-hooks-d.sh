#!/bin/bash
# podman 4.3 sets RLIMIT_NOFILE/NPROC in every spec by default, and this machine refuses them
# (setrlimit: Operation not permitted): the containers here run with containers.conf's
# default_ulimits emptied. crun 1.8.1 refuses the hybrid cgroup layout, so it runs through the
# same unshare wrapper as in container-lib.sh.
test_description='podman --hooks-dir with the installed hooks.d/ovsnap.json: volumes under runc and crun'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/container-lib.sh"

test_lazy_prereq PODMAN 'command -v podman && command -v runc && command -v crun && [ "$(id -u)" = 0 ]'

# podman wants a short runroot (at most 50 characters): one below /tmp, removed at the end
PODRUN=$(mktemp -d /tmp/ovpod.XXXXXX) || exit 1
pod_cleanup_() {
	findmnt -rn -o TARGET | grep "^$PODRUN/" | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$PODRUN"
}
test_atexit pod_cleanup_

# pod ARGS...: podman with this script's own storage, hooks dir and containers.conf
pod() {
	CONTAINERS_CONF=$PWD/containers.conf podman --root "$PWD/podman/root" --runroot "$PODRUN" \
		--hooks-dir "$PWD/hooks.d" "$@" </dev/null
}

# no_attachments: the store lists no attachment
no_attachments() { [ "$(ovsnap status --json | json "len(d)")" = 0 ]; }

# pod_run RUNTIME [podman run options]... -- CMD...: a container of the busybox rootfs
pod_run() {
	local runtime=$1 opts=()
	shift
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	pod run --rm --network none --runtime "$runtime" "${opts[@]}" --rootfs "$CONTAINER_BASE/rootfs" "$@"
}

test_expect_success PODMAN,BUSYBOX,STATIC_CC 'setup: make install; a hooks dir with the installed ovsnap.json' '
	container_setup &&
	make -s -C "$REPO_ROOT" install PREFIX="$PWD/prefix" >/dev/null &&
	cp "$OVSNAP_HOOK" prefix/bin/ovsnap-hook &&
	mkdir hooks.d podman &&
	python3 - prefix/share/containers/oci/hooks.d/ovsnap.json hooks.d/ovsnap.json "$OVSNAP_ROOT" <<-\EOF &&
	import json, os, sys
	src, dst, store = sys.argv[1:4]
	d = json.load(open(src))
	# only the store differs from the installed file: this script'"'"'s, not /var/lib/ovsnap
	d["hook"]["env"] = ["OVSNAP_ROOT=" + store, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + [
	    k + "=" + os.environ[k] for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS") if os.environ.get(k)]
	json.dump(d, open(dst, "w"))
	EOF
	printf "[containers]\ndefault_ulimits = []\n" >containers.conf &&
	printf "#!/bin/sh\nexec unshare -m sh -c '"'"'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun \"\$@\"'"'"' crun \"\$@\"\n" >crun-wrap &&
	chmod +x crun-wrap &&
	ovsnap volume create data &&
	echo "from the host" >hello.txt &&
	ovsnap put data hello.txt / >/dev/null
'

for rt in runc crun; do
	test_expect_success PODMAN,BUSYBOX,STATIC_CC "podman run --runtime $rt: the volume is attached at /data and committed at exit" '
		runtime='"$rt"' &&
		if [ $runtime = crun ]; then runtime=$PWD/crun-wrap; fi &&
		pod_run $runtime --annotation org.ovsnap.volumes=data:/data -- \
			sh -c "cat /data/hello.txt && grep -c \" /data overlay\" /proc/self/mounts; echo '"$rt"' >/data/by-'"$rt"'.txt" >out &&
		printf "from the host\n1\n" >expect &&
		test_cmp expect out &&
		wait_for 10 file_is data by-'"$rt"'.txt '"$rt"' &&
		wait_for 10 no_attachments
	'
done

test_expect_success PODMAN,BUSYBOX,STATIC_CC 'without the annotation podman runs no ovsnap hook' '
	pod_run runc -- sh -c "test ! -e /data/hello.txt" &&
	no_attachments &&
	ovsnap fsck >fsck.out
'

test_done
