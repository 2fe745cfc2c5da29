#!/bin/bash
test_description='runc with ovsnap-hook wired in as the installed hooks.d/ovsnap.json says (podman, CRI-O)'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"
. "$TEST_DIRECTORY/helpers/hooks-d-tests.sh"
test_done
