#!/bin/bash
# The engine's folders are layers (README: Architecture): a file may include headers of its own
# folder and of the folders below it, never of one above, so no module cycle can form.
test_description='the engine is layered: lib < erofs, s3 < store < tree < node < capture < attach < maint < grpc < containerd < cli'
. "$(dirname "$0")/lib.sh"

test_expect_success 'no source file includes a header of a higher layer' '
	python3 - "$REPO_ROOT/snapshotter" <<-\EOF
	import glob, os, re, sys
	os.chdir(sys.argv[1])
	order = ["lib", "erofs", "s3", "store", "tree", "node", "capture", "attach", "maint", "grpc", "containerd", "cli"]
	where = {os.path.basename(f): f.split("/")[0] for f in glob.glob("*/*.[ch]")}
	bad = []
	for f in sorted(glob.glob("*/*.[ch]")):
	    d = f.split("/")[0]
	    if d not in order:
	        bad.append("%s: a folder that is not a layer" % f)
	        continue
	    for inc in re.findall(r"#include \"([a-z0-9-]+\.h)\"", open(f).read()):
	        if inc not in where:
	            bad.append("%s: includes %s, which no folder holds" % (f, inc))
	        elif order.index(where[inc]) > order.index(d):
	            bad.append("%s (%s) includes %s (%s)" % (f, d, inc, where[inc]))
	print("\n".join(bad))
	sys.exit(1 if bad else 0)
	EOF
'

test_expect_success 'every engine source is in a layer folder, none left at the top' '
	test -z "$(ls "$REPO_ROOT"/snapshotter/*.c "$REPO_ROOT"/snapshotter/*.h 2>/dev/null)"
'

test_done
