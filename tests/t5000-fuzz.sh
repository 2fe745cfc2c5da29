#!/bin/bash
# libFuzzer harnesses (tests/fuzz/fuzz-*.c) over every parser of untrusted input: tree objects,
# snapshot and volume records, attachment manifests, the OCI state and config.json, the volumes
# annotation and the control-socket protocol. Builds them with clang (tests/fuzz/build), replays
# every saved crash (tests/fuzz/crashes/TARGET/) and the seed corpus (tests/fuzz/corpus/TARGET/),
# then, against the normal build only, fuzzes each target for FUZZ_SECONDS (default 60), two at
# a time. A longer campaign: FUZZ_SECONDS=3600 TEST_TIMEOUT=20000 tests/run t5000.
# A crash found here leaves its input in the kept trash directory (artifacts/TARGET/): once the
# bug is fixed, copy it to tests/fuzz/crashes/TARGET/ so that every run replays it.

test_description='fuzzing the parsers of untrusted input'
. "$(dirname "$0")/lib.sh"

fuzz_dir=$TEST_DIRECTORY/fuzz
fuzz_bin=$REPO_ROOT/build-fuzz
: "${FUZZ_SECONDS:=60}"

targets=()
for h in "$fuzz_dir"/fuzz-*.c; do
	t=${h##*/fuzz-}
	targets+=("${t%.c}")
done

test_lazy_prereq CLANG 'command -v clang'
# The long runs belong to the pass over the normal build; the sanitizer pass of tests/check
# only replays the saved inputs (the harnesses carry their own sanitizers either way).
test_lazy_prereq NORMAL_BUILD '
	[ "$FUZZ_SECONDS" -gt 0 ] &&
	[ "$(realpath "$OVSNAP")" = "$(realpath "$REPO_ROOT/snapshotter/ovsnap")" ]
'

# Scratch stores of the harnesses (their $TMPDIR): tmpfs when there is one, for the manifest
# harness's fsyncs; removed when the script ends, whatever happens.
if [ -d /dev/shm ] && [ -w /dev/shm ] && fuzz_tmp=$(mktemp -d /dev/shm/ovsnap-fuzz.XXXXXX); then
	test_atexit "rm -rf '$fuzz_tmp'"
else
	fuzz_tmp=$TRASH_DIRECTORY/tmp
	mkdir -p "$fuzz_tmp"
fi

# replay TARGET FILE...: run the harness once over each file; name every input that crashes
replay() {
	local t=$1 f rc=0
	shift
	for f in "$@"; do
		TMPDIR=$fuzz_tmp "$fuzz_bin/fuzz-$t" "$f" >"replay.log" 2>&1 && continue
		echo "fuzz-$t crashes on $f:"
		grep -E 'ERROR|SUMMARY|contract violated|^ +#[0-9] ' replay.log | head -20
		rc=1
	done
	return $rc
}

# fuzz TARGET: fuzz it for FUZZ_SECONDS from its seed corpus; new inputs go to work/TARGET,
# a crashing one to artifacts/TARGET/
fuzz() {
	local t=$1
	mkdir -p "work/$t" "artifacts/$t" &&
	TMPDIR=$fuzz_tmp "$fuzz_bin/fuzz-$t" -max_total_time="$FUZZ_SECONDS" -timeout=25 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$PWD/artifacts/$t/" \
		"work/$t" "$fuzz_dir/corpus/$t" >"fuzz-$t.log" 2>&1
}

# fuzz_pair TARGET [TARGET]: fuzz both at once; on a crash show the report and the input
fuzz_pair() {
	local pids=() t rc=0 i=0
	for t in "$@"; do
		fuzz "$t" &
		pids+=($!)
		test_bg_pid $!
	done
	for t in "$@"; do
		if wait "${pids[$i]}"; then
			grep -E '^Done|stat::number_of_executed_units' "fuzz-$t.log" | tail -1 | sed "s/^/fuzz-$t: /"
		else
			echo "fuzz-$t found a crash (input kept in $PWD/artifacts/$t/):"
			grep -E 'ERROR|SUMMARY|contract violated|^ +#[0-9] ' "fuzz-$t.log" | head -30
			ls -l "artifacts/$t"
			rc=1
		fi
		i=$((i + 1))
	done
	return $rc
}

test_expect_success CLANG 'every harness builds with clang, ASan, UBSan and libFuzzer' '
	"$fuzz_dir/build" &&
	for t in "${targets[@]}"; do
		test -x "$fuzz_bin/fuzz-$t" || return 1
	done
'

test_expect_success CLANG 'every target has seed inputs' '
	for t in "${targets[@]}"; do
		ls "$fuzz_dir/corpus/$t"/* >/dev/null || return 1
	done
'

test_expect_success CLANG 'every saved crash input replays without a crash' '
	rc=0 &&
	for d in "$fuzz_dir"/crashes/*/; do
		test -d "$d" || continue
		t=$(basename "$d") &&
		test -e "$fuzz_bin/fuzz-$t" &&
		for f in "$d"*; do
			test -f "$f" || continue
			replay "$t" "$f" || rc=1
		done || return 1
	done &&
	test $rc = 0
'

test_expect_success CLANG 'the seed corpus replays without a crash' '
	for t in "${targets[@]}"; do
		replay "$t" "$fuzz_dir/corpus/$t"/* || return 1
	done
'

i=0
while [ $i -lt ${#targets[@]} ]; do
	pair=("${targets[@]:$i:2}")
	test_expect_success CLANG,NORMAL_BUILD "fuzz ${pair[*]} for $FUZZ_SECONDS s (normal build only)" '
		fuzz_pair "${pair[@]}"
	'
	i=$((i + 2))
done

test_done
