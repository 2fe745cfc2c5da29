#!/bin/bash
test_description='containers under containerd (ctr run) with ovsnap-hook: put, commit, reload, final commit'
. "$(dirname "$0")/lib.sh"
# containerd's shim runs runc through a wrapper that adds ovsnap-hook to the bundle's config.json;
# runc's state goes to the script's own directory (--runc-root), under the namespace "default"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"

CTRD=$TRASH_DIRECTORY/containerd
CTRD_SOCK=$CTRD/containerd.sock
IMAGE=localhost/ovsnap-test-busybox:latest
ctr_exec_n=0

# the runc of containerd's containers, with their state directory
rt() { runc --root "$RT_STATE/default" "$@"; }


# containerd_running: the containerd of this script runs
containerd_running() {
	[ -e "$CTRD/pid" ] && kill -0 "$(cat "$CTRD/pid")" 2>/dev/null
}

# shims_of_ours: the shim processes that name this script's containerd socket
shims_of_ours() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep "^containerd-shim.* -address $CTRD_SOCK\( \|$\)"
	done
	return 0
}

# runc_wrapper: the runtime binary containerd's shim runs: at `create`, add ovsnap-hook (with
# this script's store) to the bundle's config.json, then runc
runc_wrapper() {
	local env='"OVSNAP_ROOT='"$OVSNAP_ROOT"'", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"' k
	for k in ASAN_OPTIONS UBSAN_OPTIONS; do
		[ -n "${!k:-}" ] && env="$env, \"$k=${!k}\""
	done
	cat >"$CTRD/runc-ovsnap" <<-EOF &&
	#!/bin/sh
	bundle= sub= prev=
	for a in "\$@"; do
		case \$prev in --bundle|-b) bundle=\$a ;; esac
		case \$a in --bundle=*) bundle=\${a#--bundle=} ;; create) [ -z "\$sub" ] && sub=create ;; esac
		prev=\$a
	done
	if [ "\$sub" = create ] && [ -n "\$bundle" ]; then
		python3 - "\$bundle/config.json" <<-\PY || exit 1
		import json, sys
		p = sys.argv[1]
		with open(p) as f:
		    c = json.load(f)
		env = [$env]
		hook = "$OVSNAP_HOOK"
		h = c.setdefault("hooks", {})
		h.setdefault("createRuntime", []).append({"path": hook, "args": ["ovsnap-hook", "createRuntime"], "env": env})
		h.setdefault("poststop", []).append({"path": hook, "args": ["ovsnap-hook", "poststop"], "env": env})
		with open(p + ".tmp", "w") as f:
		    json.dump(c, f)
		import os
		os.rename(p + ".tmp", p)
		PY
	fi
	exec runc "\$@"
	EOF
	chmod +x "$CTRD/runc-ovsnap"
}

# ctr_run_opts_ NAME VOLUMES [ANNOTATION=VALUE]...: the options of ctr run
ctr_run_opts_() {
	local a
	shift
	printf '%s\n' --runc-binary "$CTRD/runc-ovsnap" --runc-root "$RT_STATE"
	[ -n "$1" ] && printf '%s\n' --annotation "org.ovsnap.volumes=$1"
	shift
	for a in "$@"; do printf '%s\n' --annotation "$a"; done
}

# ctr_run NAME VOLUMES [ANNOTATION=VALUE]... -- CMD...: run a container in the foreground (--rm)
# ctr_start NAME VOLUMES [ANNOTATION=VALUE]... -- CMD...: run it detached
ctr_run_() {
	local mode=$1 name=$2 opts=() cmd
	shift 2
	local i=1
	for a in "$@"; do [ "$a" = -- ] && break; i=$((i + 1)); done
	cmd=("${@:i+1}")
	mapfile -t opts < <(ctr_run_opts_ "$name" "${@:1:i-1}")
	rt_register_ "$name" &&
	if [ "$mode" = fg ]; then
		ctr_ run --rm "${opts[@]}" "$IMAGE" "$(cid "$name")" "${cmd[@]}" </dev/null
	else
		ctr_ run -d --null-io "${opts[@]}" "$IMAGE" "$(cid "$name")" "${cmd[@]}" </dev/null
	fi
}
ctr_run() { ctr_run_ fg "$@"; }
ctr_start() { ctr_run_ bg "$@"; }

# ctr_exec NAME CMD...: run CMD in the running container NAME
ctr_exec() {
	local n=$1
	shift
	ctr_exec_n=$((ctr_exec_n + 1))
	ctr_ task exec --exec-id "e$ctr_exec_n" "$(cid "$n")" "$@" </dev/null
}

# ctr_stop NAME: SIGKILL the task, wait for the agent (final commit), delete task and container
ctr_stop() {
	local id
	id=$(cid "$1") &&
	ctr_ task kill -s SIGKILL "$id" &&
	wait_for 10 agent_done "$id" &&
	wait_for 10 ctr_ task delete "$id" &&
	ctr_ container delete "$id"
}

# ctr_gone NAME...: containerd knows no task or container NAME
ctr_gone() {
	local n
	ctr_ task ls -q >tasks &&
	ctr_ container ls -q >containers &&
	for n in "$@"; do
		! grep -x "$(cid "$n")" tasks containers || return 1
	done
}

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'setup: containerd on a local socket, a hand-built busybox image imported' '
	container_setup &&
	containerd_start &&
	runc_wrapper &&
	image_build &&
	ctr_ image import image.tar >import.out &&
	ctr_ image ls -q >images &&
	grep -x "$IMAGE" images &&
	ovsnap volume create data &&
	echo "hello from the host" >hello.txt &&
	ovsnap put data hello.txt >/dev/null
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'ctr run: a file put with ovsnap put is visible inside' '
	ctr_run put data:/data -- sh -c "cat /data/hello.txt && ls /data" >out &&
	printf "hello from the host\nhello.txt\n" >expect &&
	test_cmp expect out &&
	ctr_gone put &&
	no_leftovers put
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'setup: two running containers attach data' '
	ctr_start writer data:/data org.ovsnap.commit-interval=0 -- sleep 1000 &&
	ctr_start reader data:/data org.ovsnap.commit-interval=0 -- sleep 1000 &&
	test "$(attachments_of "$(cid writer)")" = 1 &&
	test "$(attachments_of "$(cid reader)")" = 1 &&
	ctr_exec reader cat /data/hello.txt >actual &&
	echo "hello from the host" >expect &&
	test_cmp expect actual
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'while they run, no mount of the store is visible on the host' '
	! findmnt -rn -o TARGET,SOURCE,OPTIONS | grep -F "$OVSNAP_ROOT"
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'a write committed through the socket is seen by the other container after it reloads' '
	ctr_exec writer sh -c "echo one >/data/from-writer.txt && ovsnap-ctl commit" >reply &&
	echo "ok $(head_of data)" >expect &&
	test_cmp expect reply &&
	file_is data from-writer.txt one &&
	test_must_fail ctr_exec reader cat /data/from-writer.txt &&
	ctr_exec reader ovsnap-ctl reload >reply &&
	test_cmp expect reply &&
	ctr_exec reader cat /data/from-writer.txt >actual &&
	echo one >expect &&
	test_cmp expect actual
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'host ovsnap reload CONTAINER-ID brings a newer commit' '
	ctr_exec writer sh -c "echo two >/data/from-writer.txt && ovsnap-ctl commit" >reply &&
	ctr_exec reader cat /data/from-writer.txt >actual &&
	echo one >expect &&
	test_cmp expect actual &&
	ovsnap reload "$(cid reader)" >out &&
	head_of data >expect &&
	test_cmp expect out &&
	ctr_exec reader cat /data/from-writer.txt >actual &&
	echo two >expect &&
	test_cmp expect actual
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'a killed task: the final commit keeps its last write' '
	ctr_exec reader sh -c "echo last >/data/last-words.txt" &&
	test_expect_code 3 ovsnap ls data last-words.txt &&
	ctr_stop reader &&
	file_is data last-words.txt last &&
	test "$(attachments_of "$(cid reader)")" = 0 &&
	ctr_stop writer &&
	ctr_gone reader writer &&
	no_leftovers reader writer
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'ctr run --rm: the final commit after exit keeps the last write (commit-interval=0)' '
	n=$(history_length data) &&
	ctr_run last data:/data org.ovsnap.commit-interval=0 -- sh -c "echo bye >/data/bye.txt" &&
	wait_for 10 agent_done "$(cid last)" &&
	file_is data bye.txt bye &&
	test "$(history_length data)" = $((n + 1)) &&
	test "$(head_message data)" = "final commit" &&
	ctr_gone last &&
	no_leftovers last
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'background commits land within interval + 2 s' '
	ctr_start bg data:/data org.ovsnap.commit-interval=1 -- sleep 1000 &&
	ctr_exec bg sh -c "echo tick >/data/bg.txt" &&
	wait_for 3 file_is data bg.txt tick &&
	ctr_stop bg &&
	no_leftovers bg
'

test_expect_success CONTAINERD,BUSYBOX,STATIC_CC 'containerd stops; no shim, container, attachment or mount is left; fsck clean' '
	containerd_stop_ &&
	! containerd_running &&
	shims_of_ours >shims &&
	test_must_be_empty shims &&
	no_leftovers &&
	no_container_attachments &&
	test_mounts_below_ "$TRASH_DIRECTORY" | tr "\0" "\n" >mounts &&
	test_must_be_empty mounts &&
	ovsnap fsck
'

test_done
