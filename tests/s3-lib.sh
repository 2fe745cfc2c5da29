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
#   bucket_count PREFIX     how many keys of the bucket start with PREFIX
#   paused NAME POINT CMD...  CMD in the background, held at pause point POINT (lib/fault.h)
#                           until `go NAME`; status_of NAME waits for it and prints its status

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

# Swift's own API: the access key holds a colon, which curl --user cannot take
bucket_count() {
	local token
	token=$(curl -sf -D - -o /dev/null -H "X-Auth-User: $AWS_ACCESS_KEY_ID" \
		-H "X-Auth-Key: $AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL/auth/v1.0" |
		tr -d "\r" | sed -n "s/^X-Auth-Token: //Ip") &&
	curl -sf -H "X-Auth-Token: $token" "$AWS_ENDPOINT_URL/v1/AUTH_test/${OVSNAP_STORE#s3://}?prefix=$1" | wc -l
}
s3_start() { "$S3_SERVER" start "$TRASH_DIRECTORY/s3" >/dev/null 2>&1; }

# paused NAME POINT CMD...: run CMD in the background, held at pause point POINT until
# `go NAME`; its exit status lands in NAME.rc, its output in NAME.out and NAME.err, the S3
# client's counters in NAME.stats. Returns once CMD has reached the point.
paused() {
	local name=$1 point=$2
	shift 2
	rm -f "$TRASH_DIRECTORY/$name.paused" "$TRASH_DIRECTORY/$name.rc" "$TRASH_DIRECTORY/$name.stats"
	{
		OVSNAP_PAUSE=$point OVSNAP_PAUSE_FILE=$TRASH_DIRECTORY/$name.paused \
		OVSNAP_S3_STATS=$TRASH_DIRECTORY/$name.stats "$@" \
			>"$TRASH_DIRECTORY/$name.out" 2>"$TRASH_DIRECTORY/$name.err"
		echo $? >"$TRASH_DIRECTORY/$name.rc"
	} &
	wait_for 60 test -e "$TRASH_DIRECTORY/$name.paused"
}
go() { rm -f "$TRASH_DIRECTORY/$1.paused"; }
# finished NAME: the paused command NAME has ended; status_of NAME: its exit status
finished() { test -s "$TRASH_DIRECTORY/$1.rc"; }
status_of() { wait_for 120 finished "$1" && cat "$TRASH_DIRECTORY/$1.rc"; }

