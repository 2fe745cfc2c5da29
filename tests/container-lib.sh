# shellcheck shell=bash
# tests/container-lib.sh: helpers for the container tests (t3xxx), sourced after lib.sh.
#
# Containers run a busybox-static rootfs with the static control-socket client (runtime-hook/ovsnap-ctl)
# under a real OCI runtime, with ovsnap-hook as createRuntime and poststop hook and the script's
# store ($OVSNAP_ROOT) as the hook's store. The hook under test is $OVSNAP_HOOK, by default the
# one built beside $OVSNAP (runtime-hook/ovsnap-hook for snapshotter/ovsnap, build-asan/ovsnap-hook
# for build-asan/ovsnap).
#
#   RUNTIME=runc|crun (set before sourcing; default runc)
#   container_setup                     once per script: base rootfs, base config
#   container_bundle NAME VOLUMES [ANNOTATION=VALUE]... -- CMD...
#                                       bundle $TRASH_DIRECTORY/bundles/NAME for container NAME;
#                                       VOLUMES is org.ovsnap.volumes ("" for none)
#   cid NAME                            the container id of NAME (unique to this script run)
#   rt ARGS...                          the runtime, with this script's state directory
#   rt_run NAME                         run NAME in the foreground (stdio: the caller's)
#   rt_run_fails NAME                   the run fails (not by a signal or sanitizer report)
#   rt_stderr NAME FILE                 the runtime's stderr FILE with the hooks' stderr
#   rt_start NAME                       run NAME detached (its output: NAME.out / NAME.err)
#   rt_exec NAME CMD...                 run CMD in the running NAME
#   rt_stop NAME                        SIGKILL NAME's init, wait for the agent to finish
#                                       (final commit, detach), delete NAME
#   rt_rm NAME...                       best-effort delete (for test_when_finished)
#   file_is VOLUME PATH CONTENT         the volume's head has PATH holding CONTENT
#   no_leftovers [NAME...]              nothing left of the containers NAME (attachments, agents),
#                                       no container of the script running, no new host mount,
#                                       no sanitizer report; fsck clean
#
# Every container started here is deleted when the script ends, whatever happens (test_atexit).

: "${RUNTIME:=runc}"

if [ -z "${OVSNAP_HOOK:-}" ]; then
	if [ "$(cd "$(dirname "$OVSNAP")" && pwd -P)" = "$(cd "$REPO_ROOT/snapshotter" && pwd -P)" ]; then
		OVSNAP_HOOK=$REPO_ROOT/runtime-hook/ovsnap-hook
	else
		OVSNAP_HOOK=$(dirname "$OVSNAP")/ovsnap-hook
	fi
fi
case $OVSNAP_HOOK in /*) ;; *) OVSNAP_HOOK=$PWD/$OVSNAP_HOOK ;; esac
if ! [ -f "$OVSNAP_HOOK" ] || ! [ -x "$OVSNAP_HOOK" ]; then
	echo "Bail out! no ovsnap-hook binary at $OVSNAP_HOOK (run make, or set OVSNAP_HOOK)"
	exit 1
fi
export OVSNAP_HOOK

CONTAINER_BASE=$TEST_HARNESS_DIR/base
CONTAINER_IDS=$TEST_HARNESS_DIR/containers
RT_STATE=$TRASH_DIRECTORY/.runtime-state
: >"$CONTAINER_IDS"

test_lazy_prereq BUSYBOX '
	test -x /bin/busybox && ! ldd /bin/busybox
'
test_lazy_prereq STATIC_CC '
	printf "int main(void){return 0;}\n" >t.c && cc -static -o t t.c && ./t
'
test_lazy_prereq RUNC 'command -v runc && [ "$(id -u)" = 0 ]'
test_lazy_prereq CRUN 'command -v crun && command -v unshare && [ "$(id -u)" = 0 ]'
test_lazy_prereq CONTAINERD 'command -v containerd && command -v ctr && command -v runc && [ "$(id -u)" = 0 ]'

# the prerequisites of a script for RUNTIME
RT_PREREQ=$(echo "$RUNTIME" | tr a-z A-Z),BUSYBOX,STATIC_CC

# rt ARGS...: the runtime with this script's own state directory. crun 1.8.1 refuses this
# machine's hybrid cgroup layout: it runs in a private mount namespace without the cgroup2 mount.
rt() {
	case $RUNTIME in
	runc) runc --root "$RT_STATE" "$@" ;;
	crun)
		unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"' \
			crun --root "$RT_STATE" "$@" ;;
	*) echo "unknown RUNTIME '$RUNTIME'" >&2; return 2 ;;
	esac
}

# cid NAME: the id of container NAME
cid() { echo "ovsnap-${TEST_NAME%%-*}-$$-$1"; }

# --- stopping and cleaning up ---------------------------------------------------------------

# agent_done ID: the agent of container ID has finished (or never started)
agent_done() {
	local log=$OVSNAP_ROOT/agents/$1.log
	[ -e "$log" ] || return 0
	grep -q -e "container $1 stopped" -e "^[^ ]* agent: " -e "cleanup: " "$log"
}

# rt_gone ID: the runtime no longer knows container ID
rt_gone() { ! rt state "$1" >/dev/null 2>&1; }

# rt_rm NAME...: delete the containers (best effort, quiet), wait for their agents
rt_rm() {
	local -; set +x
	local n id
	for n in "$@"; do
		id=$(cid "$n")
		rt kill "$id" KILL >/dev/null 2>&1
		rt delete -f "$id" >/dev/null 2>&1
		for _ in $(seq 1 100); do agent_done "$id" && break; sleep 0.1; done
	done
	return 0
}

# container_cleanup_: the end of the script: delete every container it started
container_cleanup_() {
	local id
	while read -r id; do
		rt kill "$id" KILL
		rt delete -f "$id"
	done <"$CONTAINER_IDS"
	while read -r id; do
		for _ in $(seq 1 100); do agent_done "$id" && break; sleep 0.1; done
	done <"$CONTAINER_IDS"
}
test_atexit container_cleanup_

# --- bundles ------------------------------------------------------------------------------

# container_setup: the base rootfs (busybox-static, ovsnap-ctl) and the base config.json
container_setup() {
	mkdir -p "$CONTAINER_BASE/rootfs" "$RT_STATE" &&
	(
		cd "$CONTAINER_BASE/rootfs" &&
		mkdir -p bin etc tmp run proc sys dev root &&
		cp /bin/busybox bin/ &&
		chroot . /bin/busybox --install -s /bin &&
		echo "root:x:0:0:root:/root:/bin/sh" >etc/passwd &&
		echo "root:x:0:" >etc/group &&
		echo "image /etc" >etc/marker &&
		cp "$TEST_DIRECTORY/../runtime-hook/ovsnap-ctl" bin/ovsnap-ctl
	) &&
	(
		cd "$CONTAINER_BASE" &&
		case $RUNTIME in crun) crun spec ;; *) runc spec ;; esac
	) &&
	test_path_is_file "$CONTAINER_BASE/config.json"
}

# container_config CONFIG VOLUMES [ANNOTATION=VALUE]... -- CMD...: edit an OCI config.json in
# place: process args CMD (no terminal), writable root, the volumes and annotations, and
# ovsnap-hook as createRuntime and poststop hook with this script's store
container_config() {
	python3 - "$OVSNAP_HOOK" "$OVSNAP_ROOT" "$@" <<-\EOF
	import json, os, sys
	hook, store, path, volumes = sys.argv[1:5]
	rest = sys.argv[5:]
	sep = rest.index("--")
	annotations, args = rest[:sep], rest[sep + 1:]
	with open(path) as f:
	    c = json.load(f)
	if args:
	    c["process"]["args"] = args
	c["process"]["terminal"] = False
	c["root"]["readonly"] = False
	a = c.setdefault("annotations", {})
	if volumes:
	    a["org.ovsnap.volumes"] = volumes
	for kv in annotations:
	    k, v = kv.split("=", 1)
	    a[k] = v
	env = ["OVSNAP_ROOT=" + store, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
	# the S3 store (tests/t6xxx) and the pause points reach the hook too
	for k in sorted(os.environ):
	    if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "OVSNAP_STORE") or k.startswith(("AWS_", "OVSNAP_S3_", "OVSNAP_PAUSE")):
	        env.append(k + "=" + os.environ[k])
	h = c.setdefault("hooks", {})
	h["createRuntime"] = [{"path": hook, "args": ["ovsnap-hook", "createRuntime"], "env": env}]
	h["poststop"] = [{"path": hook, "args": ["ovsnap-hook", "poststop"], "env": env}]
	with open(path + ".tmp", "w") as f:
	    json.dump(c, f, indent=1)
	os.rename(path + ".tmp", path)
	EOF
}

# container_bundle NAME VOLUMES [ANNOTATION=VALUE]... -- CMD...
# (crun does not show a failing hook's stderr: it goes to the bundle's hooks.stderr, see rt_stderr)
container_bundle() {
	local b=$TRASH_DIRECTORY/bundles/$1 volumes=$2 extra=()
	shift 2
	[ "$RUNTIME" = crun ] && extra=("run.oci.hooks.stderr=$b/hooks.stderr")
	rm -rf "$b" &&
	mkdir -p "$b" &&
	cp -a "$CONTAINER_BASE/rootfs" "$b/rootfs" &&
	cp "$CONTAINER_BASE/config.json" "$b/config.json" &&
	container_config "$b/config.json" "$volumes" "${extra[@]}" "$@"
}

# bundle_of NAME: the bundle directory of container NAME
bundle_of() { echo "$TRASH_DIRECTORY/bundles/$1"; }

# --- running --------------------------------------------------------------------------------

rt_register_() { cid "$1" >>"$CONTAINER_IDS"; }

rt_run() {
	rt_register_ "$1" &&
	rt run --bundle "$(bundle_of "$1")" "$(cid "$1")" </dev/null
}

# rt_run_fails NAME: running NAME fails: a non-zero status (crun's is 255), not a signal, a
# sanitizer report or "not found"
rt_run_fails() {
	local -; set +x
	local code
	rt_run "$1"
	code=$?
	case $code in
	0) echo "rt_run_fails: container $1 ran" >&7; return 1 ;;
	255) [ "$RUNTIME" = crun ] && return 0 ;;
	esac
	if test_bad_exit_ "$code"; then
		echo "rt_run_fails: $(test_describe_exit_ "$code"): container $1" >&7
		return 1
	fi
	return 0
}

# rt_stderr NAME FILE: the runtime's stderr FILE, then what the hooks of NAME wrote to stderr
# where the runtime does not show it (crun)
rt_stderr() {
	cat "$2" &&
	if [ -e "$(bundle_of "$1")/hooks.stderr" ]; then cat "$(bundle_of "$1")/hooks.stderr"; fi
}

rt_start() {
	rt_register_ "$1" &&
	rt run -d --bundle "$(bundle_of "$1")" "$(cid "$1")" </dev/null >"$TRASH_DIRECTORY/$1.out" 2>"$TRASH_DIRECTORY/$1.err" || {
		cat "$TRASH_DIRECTORY/$1.err" >&2
		return 1
	}
}

rt_exec() {
	local n=$1
	shift
	rt exec "$(cid "$n")" "$@" </dev/null
}

# rt_init_pid NAME: the host pid of NAME's init
rt_init_pid() {
	rt state "$(cid "$1")" | json 'd["pid"]'
}

rt_stop() {
	local id
	id=$(cid "$1") &&
	rt kill "$id" KILL &&
	wait_for 10 agent_done "$id" &&
	rt delete -f "$id" &&
	wait_for 5 rt_gone "$id"
}

# --- what a test checks -------------------------------------------------------------------

# file_is VOLUME PATH CONTENT: the volume's head has PATH with exactly CONTENT (and a newline)
file_is() {
	[ "$(ovsnap get "$1" "$2" - 2>/dev/null)" = "$3" ]
}

# head_message VOLUME: the message of the volume's newest snapshot
head_message() {
	ovsnap --json volume history "$1" | json 'd[0]["message"]'
}

# attachments_of ID: how many attachments `ovsnap status --json` lists for container ID
attachments_of() {
	ovsnap status --json | json "len([a for a in d if a.get('container') == '$1'])"
}

# host_mounts: the host's mount table, one mount a line, without the mounts below other test
# scripts' or tools' temp directories (other test scripts may run at the same time)
host_mounts() {
	local tmp
	tmp=$(cd "${TMPDIR:-/tmp}" && pwd -P)
	findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS | awk -v tmp="$tmp/" -v mine="$TRASH_DIRECTORY" '
		index($0, mine) == 0 && index($1, tmp) == 1 { next }
		# attachments of another ovsnap store (a benchmark, another test): not ours
		index($0, mine) == 0 && index($0, "/cache/layers/") > 0 { next }
		{ print }' | sort
}
host_mounts >"$TEST_HARNESS_DIR/mounts.before"

# no_new_host_mounts [BEFORE]: no mount appeared on the host since BEFORE (default: the start of
# the script), and none on the host involves this script's store
no_new_host_mounts() {
	local -; set +x
	host_mounts >"$TEST_HARNESS_DIR/mounts.now" &&
	comm -13 "${1:-$TEST_HARNESS_DIR/mounts.before}" "$TEST_HARNESS_DIR/mounts.now" >"$TEST_HARNESS_DIR/mounts.new" &&
	if [ -s "$TEST_HARNESS_DIR/mounts.new" ]; then
		echo "new mounts on the host:" >&7
		cat "$TEST_HARNESS_DIR/mounts.new" >&7
		return 1
	fi &&
	if findmnt -rn -o TARGET,SOURCE,OPTIONS | grep -F "$OVSNAP_ROOT" >&7; then
		echo "a mount on the host involves the store $OVSNAP_ROOT (above)" >&7
		return 1
	fi
}

# no_sanitizer_reports: no agent log holds a sanitizer report
no_sanitizer_reports() {
	local -; set +x
	if grep -l -E "AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:" \
		"$OVSNAP_ROOT"/agents/*.log 2>/dev/null >&7; then
		echo "sanitizer reports in the agent logs above" >&7
		return 1
	fi
	return 0
}

# no_leftovers [NAME...]: the containers NAME are gone with their attachments and agents; no
# container of this script is left in the runtime; no new host mount, no mount of the store on the
# host; no sanitizer report in the agent logs; fsck clean
no_leftovers() {
	local n
	for n in "$@"; do
		wait_for 10 rt_gone "$(cid "$n")" &&
		wait_for 10 agent_done "$(cid "$n")" &&
		test "$(attachments_of "$(cid "$n")")" = 0 || return 1
	done &&
	rt list >rt.list &&
	! grep -F "ovsnap-${TEST_NAME%%-*}-$$-" rt.list &&
	no_new_host_mounts &&
	no_sanitizer_reports &&
	ovsnap fsck >fsck.out
}

# no_container_attachments: ovsnap status lists no attachment of any container
no_container_attachments() {
	ovsnap status --json >status.json &&
	json_assert "[a for a in d if a.get('container')] == []" <status.json
}

# --- images (containerd) ---------------------------------------------------------------------

# image_build [DIR...]: the OCI image archive image.tar named $IMAGE, by hand (no registry):
# the busybox rootfs as its first layer, then each DIR as one more layer (a layer tar holds
# whiteouts as .wh.NAME and opaque directories as .wh..wh..opq, as OCI says, and every xattr;
# its entries sorted by name, so a directory's whiteouts come before its other entries); after
# container_setup
# (the same directory gives the same tar: no atime or ctime in the pax headers that xattrs bring)
layer_tar() {
	tar -C "$1" --numeric-owner --xattrs --xattrs-include='*' --sort=name \
		--pax-option=delete=atime,delete=ctime -cf "$2" .
}
image_build() {
	local i=0 d tars=layer0.tar
	rm -rf image && mkdir -p image/blobs/sha256 &&
	layer_tar "$CONTAINER_BASE/rootfs" layer0.tar &&
	for d in "$@"; do
		i=$((i + 1)) &&
		layer_tar "$d" "layer$i.tar" &&
		tars="$tars layer$i.tar" || return 1
	done &&
	python3 "$TEST_DIRECTORY/helpers/oci-archive.py" "$IMAGE" image image.tar $tars
}

# registry_start: a docker-registry (distribution 2.8, Debian's package) on a free loopback
# port, its storage and log in $TRASH_DIRECTORY/registry; sets REGISTRY (127.0.0.1:PORT).
# Stopped when the script ends.
test_lazy_prereq REGISTRY 'command -v docker-registry && command -v skopeo'
registry_start() {
	local r=$TRASH_DIRECTORY/registry
	mkdir -p "$r/data" &&
	cat >"$r/config.yml" <<-EOF &&
	version: 0.1
	log:
	  level: info
	storage:
	  filesystem:
	    rootdirectory: $r/data
	http:
	  addr: 127.0.0.1:0
	EOF
	{ docker-registry serve "$r/config.yml" >"$r/log" 2>&1 5>&- 6>&- 7>&- 8>&- & echo $! >"$r/pid"; } &&
	test_atexit registry_stop_ &&
	wait_for 10 grep -q "listening on 127.0.0.1:[0-9]" "$r/log" &&
	REGISTRY=$(sed -n "s/.*listening on \(127.0.0.1:[0-9]*\).*/\1/p" "$r/log" | head -1) &&
	wait_for 10 curl -sf "http://$REGISTRY/v2/" >/dev/null
}
registry_stop_() {
	local pid
	[ -e "$TRASH_DIRECTORY/registry/pid" ] || return 0
	pid=$(cat "$TRASH_DIRECTORY/registry/pid")
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$TRASH_DIRECTORY/registry/pid"
}

# registry_push ARCHIVE NAME: the OCI archive into the registry as $REGISTRY/NAME (skopeo)
registry_push() {
	skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci-archive:$1" "docker://$REGISTRY/$2"
}

# containerd_start [TOML]: containerd on a unix socket ($CTRD_SOCK), root, state and plugins below
# $CTRD, no CRI; TOML is appended to its config (a proxy snapshotter, say). ctr_ talks to it.
# Several may run (set CTRD and CTRD_SOCK before each start): each is stopped at the end.
ctr_() { ctr -a "$CTRD_SOCK" "$@"; }
containerd_start() {
	mkdir -p "$CTRD" &&
	cat >"$CTRD/config.toml" <<-EOF &&
	version = 2
	root = "$CTRD/root"
	state = "$CTRD/state"
	disabled_plugins = ["io.containerd.grpc.v1.cri"]
	[grpc]
	  address = "$CTRD_SOCK"
	[ttrpc]
	  address = ""
	[debug]
	  address = ""
	[plugins."io.containerd.internal.v1.opt"]
	  path = "$CTRD/opt"
	${1:-}
	EOF
	{ containerd --config "$CTRD/config.toml" >"$CTRD/containerd.log" 2>&1 5>&- 6>&- 7>&- 8>&- & echo $! >"$CTRD/pid"; } &&
	test_atexit "CTRD=$(printf %q "$CTRD") CTRD_SOCK=$(printf %q "$CTRD_SOCK") containerd_stop_" &&
	wait_for 10 ctr_ version >/dev/null
}

# containerd_stop_: delete every task and container, stop containerd and the shims it started
containerd_stop_() {
	local id p pid
	[ -e "$CTRD/pid" ] || return 0
	pid=$(cat "$CTRD/pid")
	if [ -S "$CTRD_SOCK" ]; then
		for id in $(ctr_ task ls -q 2>/dev/null); do
			ctr_ task kill -s SIGKILL "$id"
			for _ in $(seq 1 50); do
				ctr_ task delete "$id" >/dev/null 2>&1 && break
				sleep 0.1
			done
		done
		for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container delete "$id"; done
	fi
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# shims of this containerd (they name its socket) that are still there
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "^containerd-shim.* -address $CTRD_SOCK\( \|$\)"; then
			kill -KILL "${p#/proc/}" 2>/dev/null
		fi
	done
	rm -f "$CTRD/pid"
}
