#!/bin/bash
test_description='the Python client (installed by make install): modal.Volume-shaped API over a real store'
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/attach-lib.sh"

# py CODE: run CODE with the installed module, against this script's store and build
py() {
	PYTHONPATH=$PWD/prefix/lib/python3/dist-packages /usr/bin/python3 -c "import ovsnap, io, os, sys
$1"
}

test_expect_success 'setup: make install puts ovsnap.py under PREFIX/lib/python3/dist-packages' '
	make -s -C "$REPO_ROOT" install PREFIX="$PWD/prefix" >/dev/null &&
	test_path_is_file prefix/lib/python3/dist-packages/ovsnap.py &&
	py "print(ovsnap.Volume)"
'

test_expect_success 'from_name: a missing volume raises NotFoundError (a FileNotFoundError); create_if_missing makes it' '
	py "
try:
    ovsnap.Volume.from_name(\"nope\")
    sys.exit(\"no error\")
except FileNotFoundError as e:
    assert isinstance(e, ovsnap.NotFoundError) and \"nope\" in str(e), e
v = ovsnap.Volume.from_name(\"pyvol\", create_if_missing=True)
v2 = ovsnap.Volume.from_name(\"pyvol\", create_if_missing=True)
assert v.name == v2.name == \"pyvol\"
" &&
	ovsnap volume list >list &&
	grep pyvol list
'

test_expect_success 'batch_upload: files, a file object and a directory, Modal paths, one snapshot' '
	echo "local a" >local-a.txt &&
	mkdir -p tree/sub && echo one >tree/sub/one && echo two >tree/two &&
	n=$(history_length pyvol) &&
	py "
v = ovsnap.Volume.from_name(\"pyvol\")
with v.batch_upload() as batch:
    batch.put_file(\"local-a.txt\", \"/remote-a.txt\")
    batch.put_directory(\"tree\", \"/remote/directory\")
    batch.put_file(io.BytesIO(b\"some data\"), \"/foobar\")
    batch.put_file(\"local-a.txt\", \"/models/\")
" &&
	test "$(history_length pyvol)" = $((n + 1)) &&
	test "$(ovsnap get pyvol /remote-a.txt -)" = "local a" &&
	test "$(ovsnap get pyvol /foobar -)" = "some data" &&
	test "$(ovsnap get pyvol /remote/directory/sub/one -)" = one &&
	test "$(ovsnap get pyvol /remote/directory/two -)" = two &&
	test "$(ovsnap get pyvol /models/local-a.txt -)" = "local a"
'

test_expect_success 'an exception inside batch_upload uploads nothing' '
	n=$(history_length pyvol) &&
	py "
v = ovsnap.Volume.from_name(\"pyvol\")
try:
    with v.batch_upload() as batch:
        batch.put_file(\"local-a.txt\", \"/never.txt\")
        raise KeyError(\"stop\")
except KeyError:
    pass
" &&
	test "$(history_length pyvol)" = $n &&
	test_must_fail ovsnap get pyvol /never.txt -
'

test_expect_success 'listdir: entries with path, type, size and mtime; recursive; a missing path raises' '
	py "
v = ovsnap.Volume.from_name(\"pyvol\")
top = {e.path: e for e in v.listdir(\"/\")}
assert set(top) == {\"foobar\", \"models\", \"remote\", \"remote-a.txt\"}, top
assert top[\"foobar\"].type == ovsnap.FileEntryType.FILE and top[\"foobar\"].size == 9
assert top[\"remote\"].type == ovsnap.FileEntryType.DIRECTORY
assert abs(top[\"foobar\"].mtime - os.path.getmtime(\"local-a.txt\")) < 3600
deep = [e.path for e in v.listdir(\"/remote\", recursive=True)]
assert deep == [\"remote/directory\", \"remote/directory/sub\", \"remote/directory/sub/one\", \"remote/directory/two\"], deep
try:
    v.listdir(\"/nowhere\")
    sys.exit(\"no error\")
except FileNotFoundError:
    pass
"
'

test_expect_success 'read_file yields the bytes; a missing file raises FileNotFoundError' '
	head -c 3000000 /dev/urandom >big.bin &&
	ovsnap put pyvol big.bin /big.bin >/dev/null &&
	py "
v = ovsnap.Volume.from_name(\"pyvol\")
data = b\"\".join(v.read_file(\"/big.bin\"))
assert data == open(\"big.bin\", \"rb\").read()
buf = io.BytesIO()
assert v.read_file_into_fileobj(\"foobar\", buf) == 9 and buf.getvalue() == b\"some data\"
try:
    b\"\".join(v.read_file(\"/missing\"))
    sys.exit(\"no error\")
except FileNotFoundError as e:
    assert \"missing\" in str(e), e
"
'

test_expect_success 'copy_files and remove_file; a directory needs recursive=True' '
	py "
v = ovsnap.Volume.from_name(\"pyvol\")
v.copy_files([\"/remote-a.txt\", \"/foobar\"], \"/copies/\")
v.remove_file(\"/big.bin\")
try:
    v.remove_file(\"/remote\")
    sys.exit(\"no error\")
except ovsnap.Error as e:
    assert \"is a directory\" in str(e), e
v.remove_file(\"/remote\", recursive=True)
" &&
	test "$(ovsnap get pyvol /copies/foobar -)" = "some data" &&
	test "$(ovsnap get pyvol /copies/remote-a.txt -)" = "local a" &&
	test_must_fail ovsnap get pyvol /big.bin - &&
	test_must_fail ovsnap ls pyvol /remote
'

test_expect_success 'on the host, commit and reload act on the volume'"'"'s mounts; a busy reload names the holder' '
	mkdir M N &&
	ovsnap mount pyvol M &&
	ovsnap mount pyvol N &&
	echo "from M" >M/m.txt &&
	py "
v = ovsnap.Volume.from_name(\"pyvol\")
ids = v.commit()
assert len(ids) == 2, ids
ids = v.reload()
assert len(ids) == 2, ids
" &&
	test "$(cat N/m.txt)" = "from M" &&
	{ sleep 100 <N/m.txt & pid=$!; test_bg_pid $pid; } &&
	py "
v = ovsnap.Volume.from_name(\"pyvol\")
try:
    v.reload()
    sys.exit(\"no error\")
except ovsnap.VolumeBusyError as e:
    assert \"pid\" in str(e) and \"sleep\" in str(e) and \"m.txt\" in str(e), e
" &&
	{ kill $pid; wait $pid 2>/dev/null; true; } &&
	ovsnap umount M && ovsnap umount N &&
	py "
try:
    ovsnap.Volume.from_name(\"pyvol\").commit()
    sys.exit(\"no error\")
except ovsnap.NotFoundError as e:
    assert \"not mounted\" in str(e), e
"
'

test_done
