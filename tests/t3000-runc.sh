#!/bin/bash
test_description='containers under runc with ovsnap-hook: put, commit, reload, background and final commits, busy, shared lowers, hostile images'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"
. "$TEST_DIRECTORY/helpers/runtime-tests.sh"
test_done
