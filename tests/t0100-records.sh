#!/bin/bash
# Store record parsers refuse hostile or damaged records (C unit test over the engine's decoders).

test_description='record decoders refuse malformed input'
. "$(dirname "$0")/lib.sh"

unit=${OVSNAP_UNIT_RECORDS:-$(dirname "$OVSNAP")/../tests/unit/test-records}
case $OVSNAP in */build-asan/*) unit=$(dirname "$OVSNAP")/test-records ;; esac

test_expect_success 'every malformed tree and snapshot record is refused, naming the record' '
	test -x "$unit" &&
	"$unit" >out &&
	cat out &&
	! grep "^not ok" out &&
	grep -c "^ok" out >n &&
	test "$(cat n)" -ge 15
'

test_done
