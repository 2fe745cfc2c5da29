#!/bin/bash
# make install honours PREFIX and DESTDIR, and installs the CLI, the hook, the static control
# client, the hooks.d entry pointing at the installed hook, and the containerd snapshotter daemon
# with its systemd unit.

test_description='make install'
. "$(dirname "$0")/lib.sh"

repo=$(cd "$TEST_DIRECTORY/.." && pwd)

test_expect_success 'make install PREFIX=/opt/ov DESTDIR=stage' '
	make -s -C "$repo" install PREFIX=/opt/ov DESTDIR="$PWD/stage" &&
	test -x stage/opt/ov/bin/ovsnap &&
	test -x stage/opt/ov/bin/ovsnap-hook &&
	test -x stage/opt/ov/bin/ovsnap-ctl &&
	test -x stage/opt/ov/bin/ovsnap-snapshotter &&
	grep "^ExecStart=/opt/ov/bin/ovsnap-snapshotter " stage/opt/ov/lib/systemd/system/ovsnap-snapshotter.service &&
	grep "\"path\": \"/opt/ov/bin/ovsnap-hook\"" stage/opt/ov/share/containers/oci/hooks.d/ovsnap.json &&
	python3 -m json.tool stage/opt/ov/share/containers/oci/hooks.d/ovsnap.json >/dev/null
'

test_expect_success 'the installed CLI runs' '
	stage/opt/ov/bin/ovsnap --version >version &&
	grep "^ovsnap " version
'

test_done
