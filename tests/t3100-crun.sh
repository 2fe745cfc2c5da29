#!/bin/bash
test_description='containers under crun with ovsnap-hook: the same scenarios as t3000-runc'
. "$(dirname "$0")/lib.sh"
RUNTIME=crun
. "$TEST_DIRECTORY/container-lib.sh"
. "$TEST_DIRECTORY/helpers/runtime-tests.sh"
test_done
