#!/bin/bash
# Store record parsers and pack index readers refuse hostile or damaged input (C unit tests over
# the engine): records with bad names, order, sizes or versions; pack indexes that lie (offsets or
# sizes past the data, unknown kinds, unsorted keys, wrong counts) with their checksum intact.

test_description='record decoders and pack indexes refuse malformed input'
. "$(dirname "$0")/lib.sh"

units=$(dirname "$OVSNAP")/../tests/unit
case $OVSNAP in */build-asan/*) units=$(dirname "$OVSNAP") ;; esac
unit=${OVSNAP_UNIT_RECORDS:-$units/test-records}

test_expect_success 'every malformed tree and snapshot record is refused, naming the record' '
	test -x "$unit" &&
	"$unit" >out &&
	cat out &&
	! grep "^not ok" out &&
	grep -c "^ok" out >n &&
	test "$(cat n)" -ge 15
'

test_expect_success 'every malformed pack index is refused as corrupt, naming the pack' '
	test -x "$units/test-packs" &&
	mkdir scratch &&
	"$units/test-packs" "$PWD/scratch" >out &&
	cat out &&
	! grep "^not ok" out &&
	test "$(grep -c "^ok" out)" = 6
'

test_expect_success 'packs are read by range: only indexes to open, and a location outlives a roll-up' '
	test -x "$units/test-pack-reads" &&
	mkdir -p scratch &&
	"$units/test-pack-reads" "$PWD/scratch" >out &&
	cat out &&
	! grep "^not ok" out &&
	test "$(grep -c "^ok" out)" = 6
'

# GCC 12's libasan does not take its allocator's lock around fork(): a child forked while
# another thread is inside malloc waits on that lock forever (seen in CI: the child hangs in
# SizeClassAllocator64::GetFromAllocator). glibc's malloc does take it, so the fork guards
# of our own locks are tested in the normal build only.
test_lazy_prereq GLIBC_MALLOC 'case $OVSNAP in */build-asan/*) false ;; esac'

test_expect_success GLIBC_MALLOC 'fork while other threads hold the store lock: the child finds it free' '
	test -x "$units/test-fork" &&
	mkdir -p scratch &&
	{ "$units/test-fork" "$PWD/scratch" >out; status=$?; cat out; test $status = 0; } &&
	! grep "^not ok" out &&
	test "$(grep -c "^ok" out)" = 3
'

test_expect_success 'a linked io_uring chain is never split across two submissions' '
	test -x "$units/test-uring" &&
	mkdir -p scratch &&
	"$units/test-uring" "$PWD/scratch" >out &&
	cat out &&
	! grep "^not ok" out &&
	test "$(grep -c "^ok" out)" = 2
'

test_expect_success '16 operations at once on one store handle: one fails alone, the others are whole' '
	test -x "$units/test-sessions" &&
	mkdir -p sessions &&
	"$units/test-sessions" "$PWD/sessions" >out &&
	cat out &&
	! grep "^not ok" out &&
	test "$(grep -c "^ok" out)" = 6
'

test_expect_success 'the same under ThreadSanitizer: no data race' '
	tsan=$REPO_ROOT/build-tsan/test-sessions &&
	test -x "$tsan" &&
	mkdir -p sessions-tsan &&
	TSAN_OPTIONS=halt_on_error=1 "$tsan" "$PWD/sessions-tsan" >out 2>err &&
	cat out err &&
	! grep -q "ThreadSanitizer" err &&
	test "$(grep -c "^ok" out)" = 6
'

test_done
