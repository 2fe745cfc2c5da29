#!/bin/bash
test_description='reloads racing a reader and writers: every reload finishes or changes nothing; no write is lost'
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/attach-lib.sh"

# 200 rounds; 50 under the sanitizers, where every command starts 5-10x slower
case $OVSNAP in */build-asan/*) ROUNDS=${RACE_ROUNDS:-50} ;; *) ROUNDS=${RACE_ROUNDS:-200} ;; esac

# reader DIR FILE: open, read and close DIR/FILE in a loop, as a training job reads its data:
# mostly for a few microseconds (the shell's own read), every tenth time for as long as cat
# takes to start
reader() {
	local n=0
	while :; do
		n=$((n + 1))
		if [ $((n % 10)) = 0 ]; then cat "$1/$2" >/dev/null 2>&1; else read -r _ <"$1/$2" 2>/dev/null; fi
	done
}

# writer DIR LOG: create DIR/w/N files in a loop, logging the name of each one that was written
# (a write may fail with EROFS while a reload switches mounts: that one is not logged)
writer() {
	local n=0
	while :; do
		n=$((n + 1))
		if echo "w$n" 2>/dev/null >"$1/w/f$n"; then echo "f$n" >>"$2"; fi
		[ $((n % 4)) = 0 ] && sleep 0.002
	done
}

# reload_once DIR: reload DIR; "volume busy" (exit 4) is the only failure allowed
reload_once() {
	ovsnap reload "$1" >/dev/null 2>reload.err
	case $? in
	0) echo ok >>reloads ;;
	4) grep -q "volume busy" reload.err || { cat reload.err >&7; return 1; }
	   echo busy >>reloads ;;
	*) cat reload.err >&7; return 1 ;;
	esac
}

# stopped_after_reloads PID: stop the background PID; R and W are one mount each; at least one
# reload went through (the counts go to the log)
stopped_after_reloads() {
	{ kill "$1"; wait "$1" 2>/dev/null; true; } &&
	test_mounts_one R W &&
	echo "reloads: $(grep -c ok reloads) done, $(grep -c busy reloads) refused busy" >&7 &&
	test "$(grep -c ok reloads)" -gt 0
}

# wait_for_rollup: the background roll-up has merged the packs (at most 10 s)
wait_for_rollup() {
	for _ in $(seq 1 100); do
		[ "$(ls "$TEST_STORE"/packs/*.pack | wc -l)" -lt 16 ] && return 0
		sleep 0.1
	done
	echo "the packs were never rolled up" >&7
	return 1
}

# all_in_head DIR NAMES: every file name listed in NAMES is in v's head, in DIR
all_in_head() {
	ovsnap --json ls v "$1" >ls.json &&
	python3 -c '
import json, sys
have = {e["name"] for e in json.load(open("ls.json"))}
want = [l.strip() for l in open(sys.argv[1]) if l.strip()]
missing = [w for w in want if w not in have]
if missing:
    sys.exit("%d of %d files missing from the head: %s" % (len(missing), len(want), missing[:10]))
' "$2"
}

test_expect_success 'setup: a volume with data, mounted twice (R reads, W writes)' '
	ovsnap volume create v &&
	mkdir -p src/d00/e000 src/w &&
	echo data >src/d00/e000/f00000.bin &&
	echo w0 >src/w/f0 &&
	ovsnap put v src/ >/dev/null &&
	mkdir R W &&
	ovsnap mount v R &&
	ovsnap mount v W
'

test_expect_success "host: $ROUNDS rounds of commit in W, write and reload in R, with a reader in R" '
	{ reader R d00/e000/f00000.bin & rpid=$!; test_bg_pid $rpid; } &&
	: >reloads && : >new.names && : >mine.names &&
	for i in $(seq 1 $ROUNDS); do
		echo x >W/new$i.txt && echo new$i.txt >>new.names &&
		ovsnap commit W >/dev/null &&
		echo y >R/mine$i.txt && echo mine$i.txt >>mine.names &&
		reload_once R || return 1
	done &&
	stopped_after_reloads $rpid &&
	ovsnap reload R >/dev/null &&
	ovsnap commit R >/dev/null &&
	all_in_head . new.names &&
	all_in_head . mine.names &&
	test_line_count = $ROUNDS new.names &&
	ovsnap fsck >fsck.out
'

test_expect_success 'host: a writer creating files in R while R reloads loses none of them' '
	: >written && : >reloads &&
	{ writer R written & wpid=$!; test_bg_pid $wpid; } &&
	for i in $(seq 1 $ROUNDS); do
		echo z >W/more$i.txt &&
		ovsnap commit W >/dev/null &&
		reload_once R || return 1
		[ "$(grep -c ok reloads)" -lt $((ROUNDS / 4)) ] || break
	done &&
	stopped_after_reloads $wpid &&
	echo "the writer wrote $(wc -l <written) files" >&7 &&
	ovsnap commit R >/dev/null &&
	all_in_head w written &&
	ovsnap fsck >fsck.out
'

test_expect_success 'each reload step that fails leaves R as it was: one writable overlay that commits and reloads' '
	for point in reload-freeze reload-carry-over reload-mount reload-intent reload-replace; do
		echo "uncommitted $point" >R/pending-$point &&
		snap=$(att R snapshot) &&
		echo "$point" >W/moved-$point && ovsnap commit W >/dev/null &&
		test_must_fail env OVSNAP_FAIL=$point ovsnap reload R 2>err &&
		test_stderr_mentions err "injected fault at $point" &&
		test_mounts_one R &&
		test "$(att R snapshot)" = "$snap" &&
		test_path_is_missing R/moved-$point &&
		echo "still writable" >R/after-$point &&
		ovsnap commit R >/dev/null &&
		ovsnap get v pending-$point - >got && echo "uncommitted $point" >expect && test_cmp expect got &&
		ovsnap get v after-$point - >got && echo "still writable" >expect && test_cmp expect got &&
		ovsnap reload R >/dev/null &&
		test_path_is_file R/moved-$point || return 1
	done &&
	ovsnap fsck >fsck.out
'

test_expect_success 'a failure to save the state after the switch: the reload stands, the next command settles it' '
	echo once-more >W/final && ovsnap commit W >/dev/null &&
	OVSNAP_FAIL=reload-final-save ovsnap reload R >/dev/null 2>err &&
	test_stderr_mentions err "injected fault at reload-final-save" &&
	test_path_is_file R/final &&
	test "$(att R snapshot)" = "$(head_of v)" &&
	echo after-final >R/after-final &&
	ovsnap commit R >/dev/null &&
	ovsnap get v after-final - >got && echo after-final >expect && test_cmp expect got &&
	test_mounts_one R
'

test_expect_success 'a state that cannot be settled stops the next commit, saying why; nothing is lost' '
	echo again >W/again && ovsnap commit W >/dev/null &&
	OVSNAP_FAIL=reload-final-save ovsnap reload R >/dev/null 2>err &&
	echo pending >R/pending-settle &&
	test_must_fail env OVSNAP_FAIL=reconcile-save ovsnap commit R 2>err &&
	test_stderr_mentions err "settle the state of" &&
	test_stderr_mentions err "injected fault at reconcile-save" &&
	ovsnap commit R >/dev/null &&
	ovsnap get v pending-settle - >got && echo pending >expect && test_cmp expect got &&
	test_mounts_one R
'

test_expect_success 'a commit that fails at each step loses nothing: the next one takes it all' '
	for point in commit-ingest commit-update commit-manifest; do
		echo "c $point" >R/c-$point &&
		test_must_fail env OVSNAP_FAIL=$point ovsnap commit R 2>err &&
		test_stderr_mentions err "injected fault at $point" &&
		ovsnap commit R >/dev/null &&
		ovsnap get v c-$point - >got && echo "c $point" >expect && test_cmp expect got || return 1
	done &&
	test_mounts_one R
'

test_expect_success 'umount --commit that fails after its commit leaves R mounted, writable, committing' '
	echo u1 >R/u1 &&
	test_must_fail env OVSNAP_FAIL=umount ovsnap umount R --commit >out 2>err &&
	test_stderr_mentions err "injected fault at umount" &&
	test_mounts_one R &&
	ovsnap get v u1 - >got && echo u1 >expect && test_cmp expect got &&
	echo u2 >R/u2 &&
	ovsnap commit R >/dev/null &&
	ovsnap get v u2 - >got && echo u2 >expect && test_cmp expect got
'

test_expect_success 'umount --commit while a file is open for writing: refused busy, nothing committed or lost' '
	h=$(head_of v) &&
	echo held >R/held &&
	{ sleep 100 3>>R/held & pid=$!; test_bg_pid $pid; } &&
	test_expect_code 4 ovsnap umount R --commit 2>err &&
	test_stderr_mentions err "volume busy" &&
	test "$(head_of v)" = "$h" &&
	{ kill $pid; wait $pid 2>/dev/null; true; } &&
	test_mounts_one R &&
	echo after >R/after-busy &&
	ovsnap commit R >/dev/null &&
	ovsnap get v held - >got && echo held >expect && test_cmp expect got
'

test_expect_success 'a commit'"'"'s background roll-up of packs does not keep the attachment locked' '
	# puts up to 15 packs: the commit'"'"'s own makes 16, and rolls them up in the background
	for i in $(seq 1 30); do
		[ "$(ls "$TEST_STORE"/packs/*.pack | wc -l)" -lt 15 ] || break
		echo $i >p$i && ovsnap put v p$i /packs/ >/dev/null || return 1
	done &&
	test "$(ls "$TEST_STORE"/packs/*.pack | wc -l)" = 15 &&
	echo c >R/consolidated &&
	OVSNAP_PAUSE=background ovsnap commit R >/dev/null &&
	flock -n "$TEST_STORE/attach/$(att R id)/lock" true &&
	wait_for_rollup
'

test_expect_success 'gc after a reload killed past its switch keeps every layer the live mount stands on' '
	mkdir -p W/gcdir && echo gcx >W/gcdir/gcx && ovsnap commit W >/dev/null &&
	OVSNAP_FAULT=reload-switched killed ovsnap reload R &&
	ovsnap gc >/dev/null &&
	echo gcx >expect && test_cmp expect R/gcdir/gcx &&
	test_cmp R/d00/e000/f00000.bin src/d00/e000/f00000.bin &&
	ovsnap reload R >/dev/null &&
	ovsnap gc >/dev/null &&
	test_cmp expect R/gcdir/gcx &&
	ovsnap fsck >fsck.out
'

test_expect_success 'a mount point with a space in its name: a reload killed past its switch is settled too' '
	mkdir "S P" &&
	ovsnap mount v "S P" >/dev/null &&
	echo spaced >W/spaced && ovsnap commit W >/dev/null &&
	OVSNAP_FAULT=reload-switched killed ovsnap reload "S P" &&
	test_path_is_file "S P/spaced" &&
	echo "in S P" >"S P/mine" &&
	ovsnap commit "S P" >/dev/null &&
	ovsnap get v mine - >got && echo "in S P" >expect && test_cmp expect got &&
	test_mounts_one "S P" &&
	ovsnap umount "S P"
'

# A reload killed while the old mount is frozen leaves it read-only until the next command on
# the attachment (commit, reload, status) sets it right.
test_expect_success 'a reload killed at each step: the next commit and reload work, one overlay, fsck clean' '
	for point in reload-frozen reload-intent-saved reload-switched reload-beneath; do
		echo "k $point" >R/killed-$point &&
		echo "$point" >W/kmoved-$point && ovsnap commit W >/dev/null &&
		OVSNAP_FAULT=$point killed ovsnap reload R &&
		ovsnap commit R >/dev/null &&
		echo "after $point" >R/after-kill-$point &&
		ovsnap commit R >/dev/null &&
		ovsnap get v killed-$point - >got && echo "k $point" >expect && test_cmp expect got &&
		ovsnap get v after-kill-$point - >got && echo "after $point" >expect && test_cmp expect got &&
		ovsnap reload R >/dev/null &&
		test_path_is_file R/kmoved-$point &&
		echo "again $point" >R/again-$point && ovsnap commit R >/dev/null &&
		ovsnap get v again-$point - >got && echo "again $point" >expect && test_cmp expect got &&
		if [ $point != reload-beneath ]; then test_mounts_one R; fi || return 1
	done &&
	ovsnap fsck >fsck.out
'

test_expect_success 'umount --commit removes every overlay at R, including one a killed reload left beneath' '
	echo last >R/last &&
	ovsnap umount R --commit >/dev/null &&
	test "$(mounts_at R)" = 0 &&
	ovsnap get v last - >got && echo last >expect && test_cmp expect got &&
	ovsnap umount W &&
	ovsnap fsck >fsck.out
'

test_done
