#!/usr/bin/env python3
"""Trees for the EROFS writer's tests (tests/t1050-erofs.sh).

  erofs-tree.py fixed DIR          every file type and boundary the writer must keep
  erofs-tree.py random SEED N DIR  about N random entries: names of any bytes, sizes at
                                   block boundaries, xattrs, hard links, deep dirs, odd modes,
                                   ids and mtimes (seeded: the same seed gives the same tree)
  erofs-tree.py compare SRC MNT    every entry's type, mode, owner, mtime (ns), size, rdev,
                                   nlink, xattrs, symlink target and bytes, and the hard-link
                                   groups, the same below both; prints each difference, exit 1
Paths are bytes throughout: names need not be UTF-8."""
import os
import random
import socket
import stat
import sys

BLK = 4096
PATH_BUDGET = 3500


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def fixed(root):
    r = random.Random(1)
    os.makedirs(root)
    for size in (0, 1, 4095, 4096, 4097, (1 << 20) + 1, 8192, 4032, 4033):
        write(os.path.join(root, b"f%d" % size), r.randbytes(size))
    os.mkdir(os.path.join(root, b"empty"))
    os.mkdir(os.path.join(root, b"one"))
    write(os.path.join(root, b"one", b"only"), b"x")
    big = os.path.join(root, b"big")
    os.mkdir(big)
    for i in range(5000):
        write(os.path.join(big, b"entry-%05d" % i), b"%d\n" % i if i % 7 else b"")
    os.symlink(b"a", os.path.join(root, b"s1"))
    os.symlink(b"t" * 4095, os.path.join(root, b"s4095"))
    os.mkfifo(os.path.join(root, b"fifo"))
    s = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        s.bind("sock")
    finally:
        os.chdir(cwd)
        s.close()
    os.mknod(os.path.join(root, b"whiteout"), stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.mknod(os.path.join(root, b"chr"), stat.S_IFCHR | 0o620, os.makedev(4, 64))
    os.mknod(os.path.join(root, b"blk"), stat.S_IFBLK | 0o660, os.makedev(259, 70000))
    suid = os.path.join(root, b"suid")
    write(suid, b"#!/bin/sh\n")
    os.chmod(suid, 0o4755)
    sticky = os.path.join(root, b"sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    odd = os.path.join(root, b"odd")
    write(odd, b"odd")
    os.chmod(odd, 0o2741)
    os.chown(odd, 70000, 4000000000)
    none = os.path.join(root, b"nomode")
    write(none, b"")
    os.chmod(none, 0)
    os.utime(os.path.join(root, b"f1"), ns=(0, 1700000000123456789))
    os.utime(os.path.join(root, b"f0"), ns=(0, -86400 * 365 * 10 * 10**9 + 999999999))
    opaque = os.path.join(root, b"opaque")
    os.mkdir(opaque)
    write(os.path.join(opaque, b"inside"), b"in")
    os.setxattr(opaque, b"trusted.overlay.opaque", b"y")
    os.setxattr(os.path.join(root, b"f4097"), b"user.small", b"v")
    os.setxattr(os.path.join(root, b"f4097"), b"user.empty", b"")
    os.setxattr(os.path.join(root, b"f4095"), b"user.big", r.randbytes(3000))
    os.setxattr(os.path.join(root, b"f4095"), b"trusted.t", b"trusted value")
    os.setxattr(os.path.join(root, b"s1"), b"trusted.on-a-symlink", b"1", follow_symlinks=False)
    os.link(os.path.join(root, b"f1"), os.path.join(root, b"f1-link"))
    os.link(os.path.join(root, b"f4096"), os.path.join(root, b"one", b"f4096-a"))
    os.link(os.path.join(root, b"f4096"), os.path.join(big, b"f4096-b"))
    os.link(os.path.join(root, b"fifo"), os.path.join(root, b"fifo-link"))
    write(os.path.join(root, b"n" * 255), b"longest name")
    write(os.path.join(root, b"\xff\xfe-not-utf8 \x01\t\n"), b"odd name")
    deep = root
    for i in range(100):
        deep = os.path.join(deep, b"d")
    os.makedirs(deep)
    write(os.path.join(deep, b"bottom"), b"deep")


def rand_name(r, taken, room=255):
    while True:
        n = min(room, r.choice((1, 2, 3, 8, 20, 100, 255, r.randint(1, 255))))
        alphabet = r.choice((b"abcdefgh", bytes(range(1, 256))))
        name = bytes(r.choice(alphabet) for _ in range(n)).replace(b"/", b"_")
        if name not in (b".", b"..") and name not in taken:
            taken.add(name)
            return name


def rand_size(r):
    k = r.randint(0, 5)
    base = r.choice((0, 1, BLK - 64, BLK - 1, BLK, BLK + 1, 2 * BLK - 1, 2 * BLK, 2 * BLK + 1, 3000, 4032, 4033))
    return max(0, k * BLK + base - (BLK if k and base == 0 else 0)) if r.random() < 0.8 else r.randint(0, 70000)


def rand_meta(r, path, is_dir=False):
    mode = r.randint(0, 0o7777)
    if is_dir:
        mode |= 0o700
    os.chmod(path, mode)
    os.chown(path, r.choice((0, 1000, 65535, 65536, 70000, r.randint(0, 2**32 - 2))),
             r.choice((0, 100, 65536, r.randint(0, 2**32 - 2))))


def rand_xattrs(r, path, follow=True):
    budget = 2500
    for _ in range(r.choice((0, 0, 1, 2, 5))):
        # user.* is for files and directories only
        ns = r.choice((b"user.", b"trusted.")) if follow else b"trusted."
        name = ns + bytes(r.choice(b"abcdefghijklmnop.-_") for _ in range(r.randint(1, 40)))
        value = r.randbytes(r.choice((0, 1, 3, 100, r.randint(0, 1500))))
        if len(name) + len(value) + 20 > budget:
            break
        budget -= len(name) + len(value) + 20
        os.setxattr(path, name, value, follow_symlinks=follow)


def rand_tree(seed, count, root):
    r = random.Random(seed)
    os.makedirs(root)
    dirs = [root]
    files = []
    taken = {root: set()}
    made = 0
    while made < count:
        parent = r.choice(dirs) if r.random() < 0.7 else dirs[-1]
        # paths stay below PATH_MAX (4096) with room for the mount point's prefix
        if len(parent) > PATH_BUDGET - 16:
            parent = root
        p = os.path.join(parent, rand_name(r, taken[parent], PATH_BUDGET - len(parent)))
        kind = r.choices(("file", "dir", "link", "hard", "fifo", "chr", "deep"), (50, 12, 10, 8, 4, 4, 1))[0]
        if kind == "file" or (kind == "hard" and not files):
            write(p, r.randbytes(rand_size(r)))
            files.append(p)
            rand_meta(r, p)
            rand_xattrs(r, p)
        elif kind == "dir":
            os.mkdir(p)
            dirs.append(p)
            taken[p] = set()
            rand_xattrs(r, p)
            if r.random() < 0.1:
                os.setxattr(p, b"trusted.overlay.opaque", b"y")
        elif kind == "deep":
            for _ in range(r.randint(10, 40)):
                if len(p) > PATH_BUDGET - 16:
                    break
                os.mkdir(p)
                taken[p] = set()
                dirs.append(p)
                p = os.path.join(p, rand_name(r, taken[p], PATH_BUDGET - len(p)))
                made += 1
            write(p, r.randbytes(rand_size(r)))
            files.append(p)
        elif kind == "link":
            os.symlink(bytes(r.choice(b"abc/._-xyz") for _ in range(r.choice((1, 2, 50, 4095, r.randint(1, 4095))))), p)
            chown = r.choice((0, 70000))
            os.chown(p, chown, chown, follow_symlinks=False)
            if r.random() < 0.2:
                rand_xattrs(r, p, follow=False)
        elif kind == "hard":
            os.link(r.choice(files), p)
        elif kind == "fifo":
            os.mkfifo(p)
            rand_meta(r, p)
        elif kind == "chr":
            dev = os.makedev(0, 0) if r.random() < 0.5 else os.makedev(r.randint(0, 4095), r.randint(0, 2**20 - 1))
            os.mknod(p, r.choice((stat.S_IFCHR, stat.S_IFBLK)) | r.randint(0, 0o777), dev)
        made += 1
    # mtimes last, children before their directory: creating an entry sets its parent's
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            ns = r.randint(-2**33, 2**34) * 10**9 + r.randint(0, 10**9 - 1)
            os.utime(p, ns=(0, ns), follow_symlinks=False)
    os.utime(root, ns=(0, r.randint(0, 2**31) * 10**9 + 5))
    for d in dirs[1:]:
        if r.random() < 0.2:
            rand_meta(r, d, is_dir=True)


def entries(root):
    """relative path -> lstat, for every entry below root (and root as b'')"""
    out = {b"": os.lstat(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out


def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in names}


def content(path):
    with open(path, "rb") as f:
        return f.read()


def compare(src, mnt):
    a, b = entries(src), entries(mnt)
    bad = []

    def say(path, what):
        bad.append("%r: %s" % (path, what))

    for p in sorted(set(a) | set(b)):
        if p not in b:
            say(p, "missing below " + os.fsdecode(mnt))
            continue
        if p not in a:
            say(p, "not in the source")
            continue
        x, y = a[p], b[p]
        for field in ("st_mode", "st_uid", "st_gid", "st_mtime_ns"):
            if getattr(x, field) != getattr(y, field):
                say(p, "%s %r != %r" % (field, getattr(x, field), getattr(y, field)))
        if not stat.S_ISDIR(x.st_mode) and x.st_nlink != y.st_nlink:
            say(p, "nlink %d != %d" % (x.st_nlink, y.st_nlink))
        if stat.S_ISDIR(x.st_mode):
            nx = 2 + sum(1 for q in a if os.path.dirname(q) == p and q != p and stat.S_ISDIR(a[q].st_mode))
            if y.st_nlink != nx:
                say(p, "directory nlink %d, expected %d" % (y.st_nlink, nx))
        if (stat.S_ISCHR(x.st_mode) or stat.S_ISBLK(x.st_mode)) and x.st_rdev != y.st_rdev:
            say(p, "rdev %x != %x" % (x.st_rdev, y.st_rdev))
        sp, mp = os.path.join(src, p), os.path.join(mnt, p)
        if xattrs(sp) != xattrs(mp):
            say(p, "xattrs %r != %r" % (sorted(xattrs(sp)), sorted(xattrs(mp))))
        if stat.S_ISLNK(x.st_mode) and os.readlink(sp) != os.readlink(mp):
            say(p, "symlink target differs")
        if stat.S_ISREG(x.st_mode):
            if x.st_size != y.st_size:
                say(p, "size %d != %d" % (x.st_size, y.st_size))
            elif content(sp) != content(mp):
                say(p, "content differs")

    def groups(tree):
        by = {}
        for p, s in tree.items():
            if not stat.S_ISDIR(s.st_mode):
                by.setdefault((s.st_dev, s.st_ino), []).append(p)
        return sorted(sorted(g) for g in by.values() if len(g) > 1)

    if groups(a) != groups(b):
        bad.append("hard-link groups differ: %r != %r" % (groups(a)[:5], groups(b)[:5]))
    for line in bad[:50]:
        print("compare: " + line)
    print("compare: %d entries, %d differences" % (len(a), len(bad)))
    return 1 if bad else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "fixed":
        fixed(os.fsencode(argv[2]))
    elif len(argv) == 5 and argv[1] == "random":
        rand_tree(int(argv[2]), int(argv[3]), os.fsencode(argv[4]))
    elif len(argv) == 4 and argv[1] == "compare":
        return compare(os.fsencode(argv[2]), os.fsencode(argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
