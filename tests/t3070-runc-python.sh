#!/bin/bash
test_description='runc: the Python client inside a container commits and reloads through the control socket'
. "$(dirname "$0")/lib.sh"
RUNTIME=runc
. "$TEST_DIRECTORY/container-lib.sh"

test_lazy_prereq PYTHON3 'test -x /usr/bin/python3'

# python_bundle NAME VOLUMES -- CMD...: a bundle whose container has the host's /usr (python3)
# read-only and the installed ovsnap module on its PYTHONPATH
python_bundle() {
	container_bundle "$@" &&
	ln -s usr/lib "$(bundle_of "$1")/rootfs/lib" &&
	ln -s usr/lib64 "$(bundle_of "$1")/rootfs/lib64" &&
	python3 - "$(bundle_of "$1")/config.json" "$PWD/prefix/lib/python3/dist-packages" <<-\EOF
	import json, sys
	path, pydir = sys.argv[1:3]
	c = json.load(open(path))
	c["mounts"] += [
	    {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]},
	    {"destination": "/opt/ovsnap-python", "type": "bind", "source": pydir, "options": ["rbind", "ro"]},
	]
	c["process"]["env"].append("PYTHONPATH=/opt/ovsnap-python")
	json.dump(c, open(path, "w"), indent=1)
	EOF
}

# in_py NAME CODE: run python3 CODE in container NAME
in_py() {
	rt_exec "$1" /usr/bin/python3 -c "import ovsnap, os, sys
$2"
}

test_expect_success "$RT_PREREQ,PYTHON3" 'setup: make install; a running container with volume data and python3' '
	container_setup &&
	make -s -C "$REPO_ROOT" install PREFIX="$PWD/prefix" >/dev/null &&
	ovsnap volume create data &&
	echo hello >hello.txt && ovsnap put data hello.txt / >/dev/null &&
	python_bundle py data:/data org.ovsnap.commit-interval=0 -- sleep 1000 &&
	rt_start py &&
	in_py py "print(open(\"/data/hello.txt\").read().strip())" >out &&
	echo hello >expect && test_cmp expect out
'

test_expect_success "$RT_PREREQ,PYTHON3" 'Volume.from_name(...).commit() inside the container makes its writes the head' '
	in_py py "
v = ovsnap.Volume.from_name(\"data\")
with open(\"/data/from-python.txt\", \"w\") as f:
    f.write(\"written in python\\n\")
print(v.commit()[0])
" >id &&
	test "$(cat id)" = "$(head_of data)" &&
	file_is data from-python.txt "written in python"
'

test_expect_success "$RT_PREREQ,PYTHON3" 'reload() shows what the host put since; with a file open it raises VolumeBusyError naming it' '
	echo newer >newer.txt && ovsnap put data newer.txt / >/dev/null &&
	in_py py "
v = ovsnap.Volume.from_name(\"data\")
assert not os.path.exists(\"/data/newer.txt\")
v.reload()
assert open(\"/data/newer.txt\").read() == \"newer\\n\"
f = open(\"/data/hello.txt\")
try:
    v.reload()
    sys.exit(\"no error\")
except ovsnap.VolumeBusyError as e:
    assert \"python3\" in str(e) and \"/data/hello.txt\" in str(e), e
"
'

test_expect_success "$RT_PREREQ,PYTHON3" 'a volume the container does not have raises NotFoundError' '
	in_py py "
try:
    ovsnap.Volume.from_name(\"other\")
    sys.exit(\"no error\")
except FileNotFoundError as e:
    assert \"not attached\" in str(e), e
"
'

test_expect_success "$RT_PREREQ,PYTHON3" 'the container stops cleanly' '
	rt_stop py &&
	no_leftovers py
'

test_done
