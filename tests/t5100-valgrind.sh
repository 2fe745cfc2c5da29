#!/bin/bash
# The CLI under valgrind (memcheck): no invalid access, no use of uninitialised memory, no leak,
# for the everyday commands: put, get, ls, diff, history, rollback, gc, fsck, mount, commit,
# reload, umount. Runs only against the normal build (the ASan pass checks the same with ASan).

test_description='valgrind-clean CLI'
. "$(dirname "$0")/lib.sh"

case $OVSNAP in
*/build-asan/*)
	skip_all='valgrind and ASan do not mix; the normal-build pass runs this'
	test_done ;;
esac
command -v valgrind >/dev/null || { skip_all='valgrind is not installed'; test_done; }

vg() {
	valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite --trace-children=no "$OVSNAP" "$@"
}

test_expect_success 'put, get, ls, history, diff, rollback under valgrind' '
	mkdir -p src/d && echo one >src/d/a && echo two >src/b && ln -s b src/l &&
	vg volume create v &&
	vg put v src >/dev/null &&
	echo changed >src/b &&
	vg put v src >/dev/null &&
	vg ls v src -l >/dev/null &&
	vg --json ls v src >/dev/null &&
	vg volume history v >/dev/null &&
	vg diff v >/dev/null &&
	vg get v src out &&
	diff -r src out &&
	vg rollback v head~1 >/dev/null &&
	vg volume list >/dev/null
'

test_expect_success 'errors under valgrind: not found, usage, hostile path' '
	test_expect_code 3 vg get v no/such out2 &&
	test_expect_code 2 vg put v src ../x &&
	test_expect_code 3 vg volume history nope
'

test_expect_success 'gc and fsck under valgrind' '
	vg volume create gone && vg put gone src >/dev/null && vg volume delete gone >/dev/null &&
	vg gc >/dev/null &&
	vg fsck >/dev/null
'

# valgrind 3.19 does not know the new mount API (fsopen): mount and reload run plainly
test_expect_success 'commit, status, umount under valgrind' '
	mkdir A &&
	ovsnap mount v A >/dev/null &&
	echo new >A/new &&
	vg commit A >/dev/null &&
	ovsnap reload A >/dev/null &&
	vg status >/dev/null &&
	test "$(cat A/new)" = new &&
	vg umount A
'

test_done
