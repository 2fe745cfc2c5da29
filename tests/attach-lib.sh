# Helpers for the tests that mount volumes (t2*): sourced after lib.sh.

# same_tree VOLUME SNAP DIR: DIR shows SNAP's tree (every entry below the root, as `get` writes
# it) with the same names, types, modes, owners, times, sizes, contents, link targets and xattrs.
# Link counts and hard-link groups are left out here (t2000 checks them on their own), so that
# one problem there does not hide the others.
same_tree() {
	rm -rf want.tree &&
	ovsnap get "$1" . want.tree --at "$2" &&
	tree_manifest want.tree | sed 1d >want.manifest.full &&
	tree_manifest "$3" | sed 1d >got.manifest.full &&
	sed -e "s/ nlink=[0-9]*//" -e "/^hardlinks: /d" want.manifest.full >want.manifest &&
	sed -e "s/ nlink=[0-9]*//" -e "/^hardlinks: /d" got.manifest.full >got.manifest &&
	test_cmp want.manifest got.manifest
}

# att DIR FIELD: FIELD of the one attachment that `status --json` lists at DIR
att() {
	ovsnap status --json >status.json &&
	python3 -c '
import json, os, sys
d = json.load(open("status.json"))
m = [a for a in d if os.path.realpath(a["dir"]) == os.path.realpath(sys.argv[1])]
if len(m) != 1:
    sys.exit("%d attachments at %s in status: %s" % (len(m), sys.argv[1], json.dumps(d)))
v = m[0][sys.argv[2]]
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2"
}

# mounts_at DIR: how many mounts are stacked at DIR (mountinfo's \ooo escapes decoded)
mounts_at() {
	python3 -c '
import re, sys
want = sys.argv[1]
dec = lambda m: re.sub(r"\\([0-7]{3})", lambda x: chr(int(x.group(1), 8)), m)
print(sum(1 for l in open("/proc/self/mountinfo") if dec(l.split(" ")[4]) == want))
' "$(cd "$1" && pwd -P)"
}

# test_mounts_one DIR...: exactly one mount at each DIR
test_mounts_one() {
	local d n
	for d in "$@"; do
		n=$(mounts_at "$d")
		[ "$n" = 1 ] || { echo "$d has $n mounts stacked" >&7; return 1; }
	done
}
