# shellcheck shell=bash
# tests/s3-lib.sh: helpers for the S3 store tests (t6xxx), sourced after lib.sh. A real S3
# endpoint on loopback (scripts/s3-server: Swift with s3api) in the trash directory; node roots
# node-N beside it share its bucket. Without Swift the SWIFT prerequisite is missing and the
# script's tests are skipped, saying why.
#
#   s3_setup                the server up, its environment exported (in a test body), stopped
#                           when the script ends; then `eval "$(cat "$TRASH_DIRECTORY/env")"`
#                           at the top level, so later tests see it too
#   on_node N ARGS...       ovsnap on node root node-N, the store in the bucket
#   s3_stop, s3_start       stop the server, start it again (same port, same contents)

S3_SERVER=$REPO_ROOT/scripts/s3-server

test_lazy_prereq SWIFT 'command -v swift-proxy-server && command -v swift-object-server && /usr/bin/python3 -c "import swift.common.middleware.s3api"'
test_have_prereq SWIFT ||
	echo "# skipping the S3 tests: OpenStack Swift is not installed (scripts/install-deps)"

s3_setup() {
	"$S3_SERVER" start "$TRASH_DIRECTORY/s3" --port 0 >"$TRASH_DIRECTORY/env" &&
	test_atexit "\"$S3_SERVER\" stop \"$TRASH_DIRECTORY/s3\"" &&
	eval "$(cat "$TRASH_DIRECTORY/env")"
}

on_node() { local n=$1; shift; ovsnap --root "$TRASH_DIRECTORY/node-$n" --store "$OVSNAP_STORE" "$@"; }

s3_stop() { "$S3_SERVER" stop "$TRASH_DIRECTORY/s3"; }
s3_start() { "$S3_SERVER" start "$TRASH_DIRECTORY/s3" >/dev/null 2>&1; }
