#!/usr/bin/python3
"""A realistic multi-layer image, as layer directories for image_build (tests/container-lib.sh),
and the merged tree a container must see on top of the busybox base layer.

  image-layers.py make OUT N      OUT/l1 OUT/l2 OUT/l3: about N files under /data in all
                                  (sizes 0-16 KiB and a few of 1 MiB, modes with setuid,
                                  owners, user.* and trusted.* xattrs, hard links within and
                                  across directories, symlinks, duplicate contents), then
                                  whiteouts (.wh.NAME) of files, of a whole directory, of one
                                  name of a hard-link group and of the base layer's
                                  /etc/marker, opaque directories (.wh..wh..opq), files
                                  rewritten, a file turned into a directory and back, a name
                                  removed and added again; OUT/expect.json: the merged /data
  image-layers.py scan DIR        the tree DIR (a mounted snapshot's /data, seen from the host)
                                  in the form `check` takes, xattrs included
  image-layers.py check EXPECT FILE
                                  FILE (from `scan`, or what the container printed for
                                  CONTAINER_SCRIPT below) is the tree EXPECT says: the same
                                  entries, types, modes, owners, contents, link targets, xattrs
                                  (when FILE has them; containerd drops the layers' trusted.*
                                  ones, see make), and two names share an inode exactly when
                                  they are one hard-link group. Prints the differences.

The layers are applied to a model the way OCI says (whiteouts and opaque directories hide only
what lower layers hold; an entry replaces a non-directory or a directory of another type), so
the expectation never comes from the code under test.
"""
import hashlib
import json
import os
import random
import re
import stat
import sys

# Run in the container (busybox sh) from /data: one line per entry, then the checksums and
# the symlink targets. Paths hold no spaces or newlines (the generator makes none).
CONTAINER_SCRIPT = r"""
cd /data || exit 1
echo '== stat'
find . ! -name . -exec stat -c '%f|%a|%u|%g|%i|%n' {} +
echo '== sha256'
find . -type f -exec sha256sum {} +
echo '== symlinks'
find . -type l | while read -r l; do echo "$l $(readlink "$l")"; done
echo '== end'
"""


class Layers:
    def __init__(self, out, seed):
        self.out = out
        self.rng = random.Random(seed)
        self.model = {}   # path (no leading /) -> entry, the merged tree so far
        self.groups = 0   # hard-link group ids handed out
        self.layer = None
        self.contents = []

    # --- one layer --------------------------------------------------------------------------
    def begin(self, n):
        self.layer = os.path.join(self.out, "l%d" % n)
        os.mkdir(self.layer)
        os.chmod(self.layer, 0o755)  # the layer's root entry is the container's /
        self.opaque, self.whiteouts, self.added = [], [], {}

    def host(self, path):
        return os.path.join(self.layer, path)

    def parents(self, path):
        """the parent directories of PATH in this layer, with the metadata the merged tree
        already has for them (a layer that only passes through a directory changes nothing)"""
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d in self.added:
                continue
            e = self.model.get(d)
            if e is None or e["t"] != "d":
                e = {"t": "d", "mode": 0o755, "uid": 0, "gid": 0, "x": {}}
            self.mkdir(d, e["mode"], e["uid"], e["gid"], e["x"])

    def mkdir(self, path, mode=0o755, uid=0, gid=0, xattrs=None):
        self.parents(path)
        if path not in self.added:
            os.mkdir(self.host(path))
        self.meta(path, mode, uid, gid, xattrs or {})
        self.added[path] = {"t": "d", "mode": mode, "uid": uid, "gid": gid, "x": dict(xattrs or {})}

    def meta(self, path, mode, uid, gid, xattrs):
        p = self.host(path)
        os.chown(p, uid, gid)
        os.chmod(p, mode)  # after chown, which clears setuid
        for k, v in xattrs.items():
            os.setxattr(p, k, v.encode())

    def file(self, path, data=None, mode=0o644, uid=0, gid=0, xattrs=None):
        self.parents(path)
        if data is None:
            data = self.data()
        with open(self.host(path), "wb") as f:
            f.write(data)
        self.meta(path, mode, uid, gid, xattrs or {})
        self.added[path] = {"t": "f", "mode": mode, "uid": uid, "gid": gid, "x": dict(xattrs or {}),
                            "sha": hashlib.sha256(data).hexdigest(), "g": None}
        self.contents.append(data)

    def link(self, path, target):
        """a second name for TARGET, a file of this layer (tar links only within a layer)"""
        self.parents(path)
        os.link(self.host(target), self.host(path))
        e = self.added[target]
        if e["g"] is None:
            self.groups += 1
            e["g"] = self.groups
        self.added[path] = e  # one entry: one inode

    def symlink(self, path, target):
        self.parents(path)
        os.symlink(target, self.host(path))
        os.lchown(self.host(path), 0, 0)
        self.added[path] = {"t": "l", "target": target}

    def whiteout(self, path):
        d, name = os.path.split(path)
        self.file(os.path.join(d, ".wh." + name), b"")
        del self.added[os.path.join(d, ".wh." + name)]
        self.contents.pop()
        self.whiteouts.append(path)

    def make_opaque(self, path, mode=0o755, xattrs=None):
        self.mkdir(path, mode, 0, 0, xattrs)
        self.file(path + "/.wh..wh..opq", b"")
        del self.added[path + "/.wh..wh..opq"]
        self.contents.pop()
        self.opaque.append(path)

    def end(self):
        """apply the layer to the model: opaque dirs and whiteouts hide the lower layers'
        entries, then this layer's entries replace or join them"""
        m = self.model
        for d in self.opaque:
            for p in [p for p in m if p.startswith(d + "/")]:
                del m[p]
        for w in self.whiteouts:
            self.remove(w)
        for p in sorted(self.added):
            e = self.added[p]
            old = m.get(p)
            if old is not None and not (old["t"] == "d" and e["t"] == "d"):
                self.remove(p)
            m[p] = e

    def remove(self, path):
        m = self.model
        m.pop(path, None)
        for p in [p for p in m if p.startswith(path + "/")]:
            del m[p]

    # --- random content -----------------------------------------------------------------------
    def data(self):
        r = self.rng.random()
        if r < 0.03:
            return b""
        if r < 0.05 and self.contents:
            return self.rng.choice(self.contents)  # the same bytes as another file: not a link
        size = self.rng.randint(1, 2048) if r < 0.75 else self.rng.randint(2049, 16384)
        return self.rng.randbytes(size)

    def attrs(self):
        r = self.rng.random()
        mode = self.rng.choice([0o644] * 8 + [0o600, 0o640, 0o755, 0o444])
        if r < 0.002:
            mode = 0o4755
        u = self.rng.random()
        uid = gid = 0 if u < 0.9 else (1000 if u < 0.98 else 65534)
        x = {}
        if self.rng.random() < 0.02:
            x["user.ovsnap.tag"] = "u%d" % self.rng.randint(0, 1 << 30)
        if self.rng.random() < 0.01:
            x["trusted.ovsnap.tag"] = "t%d" % self.rng.randint(0, 1 << 30)
            x["user.ovsnap.long"] = "v" * self.rng.randint(100, 1000)
        return {"mode": mode, "uid": uid, "gid": gid, "xattrs": x}

    def files_of(self, top):
        """the files of TOP's generated tree (TOP/dNN/dNN/...)"""
        r = re.compile(re.escape(top) + r"/d\d\d/d\d\d/")
        return [p for p, e in self.model.items() if e["t"] == "f" and r.match(p)]

    def churn(self, files):
        """rewrite 3% of FILES (lower layers' files) and white out another 3%; the set of both"""
        self.rng.shuffle(files)
        k = max(1, len(files) * 3 // 100)
        for p in files[:k]:
            self.file(p, **self.attrs())
        for p in files[k:2 * k]:
            self.whiteout(p)
        return set(files[:2 * k])

    def tree(self, top, n):
        """N files in about N/100 leaf directories below TOP, some linked twice"""
        leaves = max(1, (n + 99) // 100)
        fan = max(1, int(leaves ** 0.5 + 0.999))
        made = []
        for i in range(n):
            leaf = i // 100
            p = "%s/d%02d/d%02d/f%05d" % (top, leaf // fan, leaf % fan, i)
            self.file(p, **self.attrs())
            made.append(p)
            if self.rng.random() < 0.02:
                self.link(p + ".link", p)
        return made


def make(out, total):
    L = Layers(out, 20240601)
    n1, n2 = total * 60 // 100, total * 25 // 100
    n3 = total - n1 - n2

    # layer 1: an application's files
    L.begin(1)
    L.mkdir("data", 0o755, 0, 0, {"user.ovsnap.dir": "data", "trusted.ovsnap.dir": "top"})
    l1 = L.tree("data/a", n1)
    for i in range(4):
        L.file("data/a/big/b%d" % i, L.rng.randbytes(1 << 20))
    for i in range(10):  # links across directories, one group of three
        L.link("data/a/links/l%02d" % i, l1[i * 97 % len(l1)])
    L.link("data/a/links/third", l1[0])
    for i in range(50):
        t = L.rng.choice(["../d00/d00/f%05d" % i, "/data/a/big/b0", "/nowhere/dangling"])
        L.symlink("data/a/syms/s%02d" % i, t)
    for name in ("opaque", "gone-dir", "dir-to-file"):
        for i in range(20):
            L.file("data/a/%s/sub/f%d" % (name, i))
        L.file("data/a/%s/top" % name, **L.attrs())
    L.file("data/a/file-to-dir")
    L.file("data/a/reborn", b"first\n")
    L.mkdir("data/a/d00", 0o750, 0, 0, {"user.ovsnap.dir": "d00"})
    L.end()

    # layer 2: an update: new files, rewrites, deletions, opaque and replaced entries
    L.begin(2)
    L.tree("data/b", n2)
    touched = L.churn(sorted(L.files_of("data/a")))
    linked = sorted(p for p in L.files_of("data/a") if p.endswith(".link"))
    for p in linked[:3]:  # one name of a hard-link group goes, the other stays
        if p[:-len(".link")] not in touched:
            L.whiteout(p)
    L.whiteout("data/a/gone-dir")
    L.whiteout("data/a/reborn")
    L.make_opaque("data/a/opaque", 0o700, {"user.ovsnap.opaque": "yes"})
    for i in range(5):
        L.file("data/a/opaque/new%d" % i)
    L.file("data/a/opaque/sub/only", b"only\n")
    L.mkdir("data/a/file-to-dir")
    L.file("data/a/file-to-dir/inside", b"inside\n")
    L.whiteout("etc/marker")
    L.end()

    # layer 3: another update over both
    L.begin(3)
    L.tree("data/c", n3)
    L.churn(sorted(L.files_of("data/b")) + sorted(L.files_of("data/a")))
    L.file("data/a/reborn", b"second\n")
    L.file("data/a/dir-to-file", b"now a file\n")
    L.make_opaque("data/b/d00")
    L.file("data/b/d00/fresh", b"fresh\n")
    L.end()

    expect = {p[len("data/"):]: e for p, e in L.model.items() if p.startswith("data/")}
    for e in expect.values():
        # containerd 1.6's unpacker sets no trusted.* xattr from a layer (its own overlayfs
        # snapshotter's layers have none either): the merged tree has only the user.* ones
        e.get("x", {}).pop("trusted.ovsnap.tag", None)
        e.get("x", {}).pop("trusted.ovsnap.dir", None)
    with open(os.path.join(out, "expect.json"), "w") as f:
        json.dump(expect, f, indent=0, sort_keys=True)
    print(sum(1 for e in expect.values() if e["t"] == "f"))


# --- what was seen ------------------------------------------------------------------------------
def scan(top):
    """DIR as the container script prints it, plus xattr lines"""
    out = ["== stat"]
    sums, links, xattrs = [], [], []
    for dirpath, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            rel = "./" + os.path.relpath(p, top)
            st = os.lstat(p)
            out.append("%x|%o|%d|%d|%d|%s" % (st.st_mode, stat.S_IMODE(st.st_mode), st.st_uid,
                                              st.st_gid, st.st_ino, rel))
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    sums.append("%s  %s" % (hashlib.sha256(f.read()).hexdigest(), rel))
            elif stat.S_ISLNK(st.st_mode):
                links.append("%s %s" % (rel, os.readlink(p)))
            for x in sorted(os.listxattr(p, follow_symlinks=False)):
                v = os.getxattr(p, x, follow_symlinks=False)
                xattrs.append("%s %s %s" % (rel, x, v.hex()))
    print("\n".join(out + ["== sha256"] + sums + ["== symlinks"] + links + ["== xattrs"] + xattrs
                    + ["== end"]))


def parse(path):
    sec, seen = None, {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("== "):
                sec = line[3:]
                continue
            if sec == "stat":
                mode, perm, uid, gid, ino, rel = line.split("|", 5)
                t = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l"}.get(
                    stat.S_IFMT(int(mode, 16)), "?")
                seen[rel[2:]] = {"t": t, "mode": int(perm, 8), "uid": int(uid), "gid": int(gid),
                                 "ino": int(ino), "x": {}}
            elif sec == "sha256":
                h, rel = line.split("  ", 1)
                seen[rel[2:]]["sha"] = h
            elif sec == "symlinks":
                rel, target = line.split(" ", 1)
                seen[rel[2:]]["target"] = target
            elif sec == "xattrs":
                rel, name, v = line.split(" ", 2)
                seen[rel[2:]]["x"][name] = bytes.fromhex(v).decode()
    if sec != "end":
        sys.exit("%s: cut short (last section: %s)" % (path, sec))
    return seen, "== xattrs" in open(path).read()


def check(expect_path, seen_path):
    with open(expect_path) as f:
        expect = json.load(f)
    seen, with_xattrs = parse(seen_path)
    bad = []
    for p in sorted(set(expect) | set(seen)):
        e, s = expect.get(p), seen.get(p)
        if s is None:
            bad.append("missing: %s" % p)
            continue
        if e is None:
            bad.append("unexpected: %s (%s)" % (p, s["t"]))
            continue
        if e["t"] != s["t"]:
            bad.append("%s: type %s, expected %s" % (p, s["t"], e["t"]))
            continue
        keys = {"f": ["mode", "uid", "gid", "sha"], "d": ["mode", "uid", "gid"], "l": ["target"]}[e["t"]]
        if with_xattrs and e["t"] != "l":
            keys.append("x")
        for k in keys:
            if e.get(k) != s.get(k):
                bad.append("%s: %s %.200r, expected %.200r" % (p, k, s.get(k), e.get(k)))
    # inodes: one per hard-link group, none shared otherwise
    by_ino, by_group = {}, {}
    for p, s in seen.items():
        if s["t"] == "f" and p in expect:
            by_ino.setdefault(s["ino"], set()).add(p)
            g = expect[p]["g"]
            by_group.setdefault(g if g is not None else "solo:" + p, set()).add(p)
    want = sorted(sorted(v) for v in by_group.values())
    got = sorted(sorted(v) for v in by_ino.values())
    if want != got:
        w = {tuple(v) for v in want}
        extra = [v for v in got if tuple(v) not in w][:10]
        bad.append("inodes shared other than as the hard-link groups say: %s" % extra)
    groups = sum(1 for v in want if len(v) > 1)
    for b in bad[:40]:
        print(b)
    if bad:
        print("%d differences" % len(bad))
        return 1
    print("ok: %d entries, %d hard-link groups%s" % (len(expect), groups,
                                                     ", xattrs" if with_xattrs else ""))
    return 0


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "make":
        make(a[1], int(a[2]))
    elif len(a) == 2 and a[0] == "scan":
        scan(a[1])
    elif len(a) == 3 and a[0] == "check":
        sys.exit(check(a[1], a[2]))
    elif len(a) == 1 and a[0] == "script":
        print(CONTAINER_SCRIPT)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
