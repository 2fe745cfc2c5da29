# shellcheck shell=bash
# The hook wired in exactly as the installed hooks.d/ovsnap.json says, as podman and CRI-O run
# it: its path, its args (no stage argument) for each of its stages, only when its annotation
# pattern matches. Sourced by t3060 (runc) and t3160 (crun) after container-lib.sh.

# hooksd_bundle NAME VOLUMES [ANNOTATION=VALUE]... -- CMD...: container_bundle, then the hooks
# replaced by what the installed hooks.d file says (plus the env naming this script's store)
hooksd_bundle() {
	container_bundle "$@" &&
	python3 - "$HOOKSD" "$(bundle_of "$1")/config.json" <<-\EOF
	import json, os, re, sys
	hooksd, path = sys.argv[1:3]
	d = json.load(open(hooksd))
	c = json.load(open(path))
	env = c["hooks"]["createRuntime"][0]["env"]
	c["hooks"] = {}
	ann = c.get("annotations", {})
	if any(re.search(k, a) and re.search(v, ann[a])
	       for k, v in d["when"]["annotations"].items() for a in ann):
	    for stage in d["stages"]:
	        c["hooks"][stage] = [{"path": d["hook"]["path"], "args": d["hook"]["args"], "env": env}]
	json.dump(c, open(path, "w"), indent=1)
	EOF
}

test_expect_success "$RT_PREREQ" 'setup: make install, the hook under test in its installed place' '
	container_setup &&
	make -s -C "$REPO_ROOT" install PREFIX="$PWD/prefix" >/dev/null &&
	HOOKSD=$PWD/prefix/share/containers/oci/hooks.d/ovsnap.json &&
	test "$(json "d[\"hook\"][\"path\"]" <"$HOOKSD")" = "$PWD/prefix/bin/ovsnap-hook" &&
	cp "$OVSNAP_HOOK" "$PWD/prefix/bin/ovsnap-hook" &&
	ovsnap volume create data &&
	echo "from the host" >hello.txt &&
	ovsnap put data hello.txt / >/dev/null
'

test_expect_success "$RT_PREREQ" 'a container wired through hooks.d gets its volume, and its writes are committed at exit' '
	hooksd_bundle once data:/data org.ovsnap.commit-interval=0 -- sh -c "cat /data/hello.txt && echo bye >/data/bye.txt" &&
	rt_run once >out &&
	echo "from the host" >expect &&
	test_cmp expect out &&
	wait_for 10 file_is data bye.txt bye &&
	wait_for 10 agent_done "$(cid once)" &&
	test "$(attachments_of "$(cid once)")" = 0
'

test_expect_success "$RT_PREREQ" 'a running container wired through hooks.d commits and reloads through its socket' '
	hooksd_bundle long data:/data org.ovsnap.commit-interval=0 -- sleep 1000 &&
	rt_start long &&
	test "$(attachments_of "$(cid long)")" = 1 &&
	rt_exec long sh -c "echo mine >/data/mine.txt && ovsnap-ctl commit" >reply &&
	grep "^ok " reply &&
	file_is data mine.txt mine &&
	echo newer >newer.txt && ovsnap put data newer.txt / >/dev/null &&
	rt_exec long ovsnap-ctl reload data >reply &&
	grep "^ok " reply &&
	rt_exec long cat /data/newer.txt >actual &&
	echo newer >expect && test_cmp expect actual &&
	rt_stop long &&
	no_leftovers once long
'

test_expect_success "$RT_PREREQ" 'a container without the annotation gets no hook at all' '
	hooksd_bundle plain "" -- true &&
	python3 -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(1 if c[\"hooks\"] else 0)" "$(bundle_of plain)/config.json" &&
	rt_run plain
'

test_expect_success "$RT_PREREQ" 'a status the hook cannot place, with volumes asked for: the start fails and says why' '
	b=$(bundle_of once) &&
	for status in paused "" weird; do
		printf "{\"ociVersion\":\"1.0.2\",\"id\":\"x\",\"status\":\"%s\",\"pid\":1,\"bundle\":\"%s\"}" "$status" "$b" >state.json &&
		test_expect_code 2 "$OVSNAP_HOOK" <state.json 2>err &&
		test_stderr_mentions err "cannot tell the hook stage" "refusing to start the container without its volumes" || return 1
	done &&
	b=$(bundle_of plain) &&
	printf "{\"ociVersion\":\"1.0.2\",\"id\":\"x\",\"status\":\"weird\",\"pid\":1,\"bundle\":\"%s\"}" "$b" >state.json &&
	"$OVSNAP_HOOK" <state.json
'
