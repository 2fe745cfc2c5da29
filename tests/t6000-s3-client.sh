#!/bin/bash
# The S3 client (snapshotter/s3) against a real S3 endpoint: scripts/s3-server (Debian's Swift
# with s3api) on loopback, started here in the trash directory. tests/unit/test-s3 covers
# put/get/head/delete, ranges at the edges, a list past 1000 keys, odd key characters, a
# multipart upload, a parallel batch, the conditional-PUT probe, the server stopped and
# restarted in the middle of a batch, a hung server, a wrong secret and a missing bucket.
# Skipped, saying why, when Swift is not installed (scripts/install-deps installs it).

test_description='the S3 client against Swift s3api on loopback'
. "$(dirname "$0")/lib.sh"

units=$(dirname "$OVSNAP")/../tests/unit
case $OVSNAP in */build-asan/*) units=$(dirname "$OVSNAP") ;; esac
server=$REPO_ROOT/scripts/s3-server

test_lazy_prereq SWIFT 'command -v swift-proxy-server && command -v swift-object-server && /usr/bin/python3 -c "import swift.common.middleware.s3api"'
test_have_prereq SWIFT ||
	echo "# skipping the S3 tests: OpenStack Swift is not installed (apt-get install --no-install-recommends swift swift-proxy swift-account swift-container swift-object)"

test_cmp_files_() { cmp "$1" "$2"; }

test_expect_success SWIFT 's3-server start prints the environment, and start again is a no-op' '
	"$server" start "$PWD/s3" --port 0 >env 2>start.err &&
	test_atexit "\"$server\" stop \"$TRASH_DIRECTORY/s3\"" &&
	cat start.err &&
	grep -x "export AWS_ENDPOINT_URL=http://127.0.0.1:[0-9]*" env &&
	grep -x "export OVSNAP_STORE=s3://ovsnap" env &&
	grep -x "export AWS_REGION=us-east-1" env &&
	"$server" start "$PWD/s3" >env2 2>/dev/null &&
	test_cmp_files_ env env2
'

test_expect_success SWIFT 'the unit test talks S3 to it, through a stop and a restart' '
	test -x "$units/test-s3" &&
	eval "$(cat env)" &&
	mkdir scratch &&
	if OVSNAP_S3_TIMEOUT=60 "$units/test-s3" "$server" "$PWD/s3" "$PWD/scratch" >out 2>err
	then rc=0; else rc=$?; fi &&
	cat out err &&
	test "$rc" = 0 &&
	! grep "^not ok" out &&
	test "$(grep -c "^ok" out)" -ge 40
'

test_expect_success SWIFT 'stop stops every server; a second stop is a no-op' '
	"$server" stop "$PWD/s3" &&
	for s in account container object proxy; do
		! test -e "s3/run/$s.pid" || return 1
	done &&
	"$server" stop "$PWD/s3" &&
	port=$(cat s3/run/port) &&
	! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
'

test_expect_success SWIFT 'a later start brings the same bucket contents back' '
	"$server" start "$PWD/s3" >env3 2>/dev/null &&
	test_cmp_files_ env env3 &&
	eval "$(cat env3)" &&
	printf "machine 127.0.0.1 login %s password %s\n" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >netrc &&
	curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --netrc-file netrc \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		"$AWS_ENDPOINT_URL/ovsnap/many/k00007" >got &&
	printf many/k00007 >want &&
	test_cmp_files_ want got &&
	"$server" stop "$PWD/s3"
'

test_expect_success SWIFT 'a busy --port is refused clearly' '
	{ python3 -c "
import socket, time, sys
s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(30)" >busy & } &&
	test_bg_pid $! &&
	for i in $(seq 50); do test -s busy && break; sleep 0.1; done &&
	test_must_fail "$server" start "$PWD/s3b" --port "$(cat busy)" 2>err &&
	grep "port $(cat busy) on 127.0.0.1 is busy" err
'

test_done
