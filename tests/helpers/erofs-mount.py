#!/usr/bin/env python3
"""erofs-mount.py IMAGE TARGET: mount an EROFS image file read-only at TARGET
with the new mount API (fsopen, fsconfig source=IMAGE, fsmount, move_mount),
file-backed: no loop device (mount(8) of util-linux 2.38 would attach one).
On failure prints the kernel's fs-context messages and exits 1."""
import ctypes
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount = 428, 429, 430, 431, 432
FSOPEN_CLOEXEC = 1
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
FSMOUNT_CLOEXEC = 1
MOUNT_ATTR_RDONLY = 1
MOVE_MOUNT_F_EMPTY_PATH = 4


def syscall(*args):
    r = libc.syscall(*args)
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r


def messages(fd):
    out = []
    while True:
        try:
            out.append(os.read(fd, 4096).decode(errors="replace"))
        except OSError:
            return out


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    image, target = (a.encode() for a in sys.argv[1:])
    fs = syscall(SYS_fsopen, b"erofs", FSOPEN_CLOEXEC)
    try:
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, b"source", image, 0)
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, None, None, 0)
        mnt = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY)
        syscall(SYS_move_mount, mnt, b"", -100, target, MOVE_MOUNT_F_EMPTY_PATH)
        os.close(mnt)
    except OSError as e:
        print("erofs-mount: %s: %s" % (sys.argv[1], e.strerror), file=sys.stderr)
        for m in messages(fs):
            print("erofs-mount: kernel: " + m, file=sys.stderr)
        return 1
    finally:
        os.close(fs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
