#!/bin/bash
test_description='crun with ovsnap-hook wired in as the installed hooks.d/ovsnap.json says (podman, CRI-O)'
. "$(dirname "$0")/lib.sh"
RUNTIME=crun
. "$TEST_DIRECTORY/container-lib.sh"
. "$TEST_DIRECTORY/helpers/hooks-d-tests.sh"
test_done
