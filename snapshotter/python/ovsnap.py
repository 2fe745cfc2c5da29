"""ovsnap: Modal-style volumes in Python, for code that uses modal.Volume.

    vol = ovsnap.Volume.from_name("models", create_if_missing=True)
    with vol.batch_upload() as batch:
        batch.put_file("model.bin", "/models/model.bin")
        batch.put_directory("./data", "/data")
    for entry in vol.listdir("/models"):
        print(entry.path, entry.size)
    vol.commit()    # in a container: its changes; on the host: its mounts'
    vol.reload()    # VolumeBusyError while a file is open in the mount

On the host it drives the `ovsnap` CLI (its --json output, a store given by
`root=` or $OVSNAP_ROOT); inside a container started with ovsnap-hook it
speaks to the control socket the hook placed there, for commit and reload.
It never reads or writes the store itself. Paths in a volume start at its
root, with or without a leading "/", as in Modal.

Standard library only.
"""

import dataclasses
import enum
import errno
import json
import os
import shutil
import socket
import subprocess
import tempfile

__all__ = [
    "Volume", "FileEntry", "FileEntryType", "Error", "NotFoundError", "VolumeBusyError",
    "UsageError", "NoSpaceError", "CorruptError",
]

CONTROL_SOCKET = "/run/ovsnap/control.sock"


class Error(Exception):
    """An ovsnap operation failed; `code` is the CLI's exit code (1 generic)."""
    code = 1


class UsageError(Error, ValueError):
    """A request ovsnap refuses as it stands: a bad path or name (exit 2)."""
    code = 2


class NotFoundError(Error, FileNotFoundError):
    """No such volume, snapshot or path (exit 3)."""
    code = 3


class VolumeBusyError(Error):
    """A reload or unmount refused while a process holds the mount (exit 4).
    The message names each holder: "pid 412 (python3) has /data/x open"."""
    code = 4


class NoSpaceError(Error, OSError):
    """The volume's inode limit or the disk is full (exit 5)."""
    code = 5


class CorruptError(Error):
    """The store holds a damaged record or object (exit 6): run ovsnap fsck."""
    code = 6


_BY_CODE = {2: UsageError, 3: NotFoundError, 4: VolumeBusyError, 5: NoSpaceError, 6: CorruptError}
_BY_WORD = {"usage": UsageError, "notfound": NotFoundError, "busy": VolumeBusyError,
            "nospace": NoSpaceError, "corrupt": CorruptError}


def _error(cls, message):
    if cls is NotFoundError:
        return cls(errno.ENOENT, message)
    if cls is NoSpaceError:
        return cls(errno.ENOSPC, message)
    return cls(message)


class FileEntryType(enum.IntEnum):
    UNSPECIFIED = 0
    FILE = 1
    DIRECTORY = 2
    SYMLINK = 3
    FIFO = 4
    SOCKET = 5
    CHARACTER_DEVICE = 6
    BLOCK_DEVICE = 7


_TYPES = {"file": FileEntryType.FILE, "dir": FileEntryType.DIRECTORY,
          "symlink": FileEntryType.SYMLINK, "fifo": FileEntryType.FIFO,
          "socket": FileEntryType.SOCKET, "char": FileEntryType.CHARACTER_DEVICE,
          "block": FileEntryType.BLOCK_DEVICE}


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One entry of a volume: its path from the root (no leading "/"), its
    type, size in bytes and modification time (seconds since the epoch)."""
    path: str
    type: FileEntryType
    mtime: float
    size: int


def _in_container():
    return "OVSNAP_CONTROL" in os.environ or os.path.exists(CONTROL_SOCKET)


class _Cli:
    """The ovsnap command line: argv in, JSON or bytes out, errors raised."""

    def __init__(self, root=None, program=None):
        self.program = program or os.environ.get("OVSNAP", "ovsnap")
        self.root = root

    def argv(self, args, json_out):
        a = [self.program]
        if self.root:
            a += ["--root", os.fspath(self.root)]
        if json_out:
            a.append("--json")
        return a + [os.fspath(x) for x in args]

    def run(self, *args, json_out=False, stdin=None):
        try:
            p = subprocess.run(self.argv(args, json_out), input=stdin, capture_output=True)
        except FileNotFoundError as e:
            raise Error("cannot run %s: %s" % (self.program, e.strerror)) from None
        if p.returncode != 0:
            raise self.failure(p.returncode, p.stderr)
        return json.loads(p.stdout) if json_out else p.stdout

    @staticmethod
    def failure(code, stderr):
        message = stderr.decode("utf-8", "replace").strip() or "ovsnap exited with %d" % code
        if code < 0:
            message = "ovsnap was killed by signal %d" % -code
        err = _error(_BY_CODE.get(code, Error), message)
        if type(err) is Error:
            err.code = code
        return err

    def stream(self, *args, chunk=1 << 20):
        try:
            p = subprocess.Popen(self.argv(args, False), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        except FileNotFoundError as e:
            raise Error("cannot run %s: %s" % (self.program, e.strerror)) from None
        try:
            while True:
                data = p.stdout.read(chunk)
                if not data:
                    break
                yield data
        finally:
            p.stdout.close()
            stderr = p.stderr.read()
            p.stderr.close()
            code = p.wait()
        if code != 0:
            raise self.failure(code, stderr)


def _control(request, path=None):
    """One request on the container's control socket; the reply's lines."""
    path = path or os.environ.get("OVSNAP_CONTROL", CONTROL_SOCKET)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(request.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                part = s.recv(65536)
                if not part:
                    break
                data += part
    except OSError as e:
        raise Error("control socket %s: %s" % (path, e.strerror or e)) from None
    lines = data.decode("utf-8", "replace").splitlines()
    last = lines[-1] if lines else ""
    if last.startswith("ok"):
        return lines
    if last.startswith("error "):
        word, _, message = last[6:].partition(" ")
        raise _error(_BY_WORD.get(word, Error), message)
    raise Error("control socket %s: unexpected reply %r" % (path, data[:200]))


class Volume:
    """A named ovsnap volume (modal.Volume's shape)."""

    def __init__(self, name, *, root=None, program=None, control=None):
        self.name = name
        self._cli = _Cli(root, program)
        self._control = control

    def __repr__(self):
        return "ovsnap.Volume(%r)" % self.name

    @classmethod
    def from_name(cls, name, create_if_missing=False, *, root=None, program=None):
        """The volume `name`: NotFoundError if there is none (unless
        create_if_missing). Inside a container, one of its attached volumes."""
        if root is None and program is None and _in_container():
            vol = cls(name, control=os.environ.get("OVSNAP_CONTROL", CONTROL_SOCKET))
            if name not in {line.split(" ")[0] for line in _control("status", vol._control)[:-1]}:
                raise _error(NotFoundError, "volume '%s' is not attached to this container" % name)
            return vol
        vol = cls(name, root=root, program=program)
        try:
            vol._cli.run("volume", "history", name, json_out=True)
        except NotFoundError:
            if not create_if_missing:
                raise
            try:
                vol._cli.run("volume", "create", name)
            except Error:
                vol._cli.run("volume", "history", name, json_out=True)  # made meanwhile?
        return vol

    # --- commit and reload -------------------------------------------------------------

    def _host_mounts(self):
        mounts = [a["dir"] for a in self._cli.run("status", json_out=True)
                  if a["volume"] == self.name and a.get("container") is None and a["mounted"]]
        if not mounts:
            raise _error(NotFoundError, "volume '%s' is not mounted on this host "
                         "(ovsnap mount %s DIR)" % (self.name, self.name))
        return mounts

    def commit(self):
        """Make this container's (on the host: every mount's) changes the
        volume's newest snapshot. Returns the snapshot ids."""
        if self._control:
            return _control("commit " + self.name, self._control)[-1].split()[1:]
        return [self._cli.run("commit", d).decode().strip() for d in self._host_mounts()]

    def reload(self):
        """Remount on the newest snapshot; VolumeBusyError (naming the
        holder) while a file is open there."""
        if self._control:
            return _control("reload " + self.name, self._control)[-1].split()[1:]
        return [self._cli.run("reload", d).decode().strip() for d in self._host_mounts()]

    # --- files ------------------------------------------------------------------------

    def _host_only(self, what):
        if self._control:
            raise Error("%s: not available inside a container; use the mounted path" % what)

    def listdir(self, path="/", recursive=False):
        """The entries of directory `path` (or the one file there)."""
        self._host_only("listdir")
        args = ["ls"] + (["-R"] if recursive else []) + [self.name, path]
        return [FileEntry(path=e["path"], type=_TYPES.get(e["type"], FileEntryType.UNSPECIFIED),
                          mtime=e["mtime_ns"] / 1e9, size=e["size"])
                for e in self._cli.run(*args, json_out=True)]

    def iterdir(self, path="/", recursive=True):
        yield from self.listdir(path, recursive)

    def read_file(self, path):
        """The bytes of the file at `path`, in chunks."""
        self._host_only("read_file")
        yield from self._cli.stream("get", self.name, path, "-")

    def read_file_into_fileobj(self, path, fileobj):
        n = 0
        for chunk in self.read_file(path):
            fileobj.write(chunk)
            n += len(chunk)
        return n

    def remove_file(self, path, recursive=False):
        self._host_only("remove_file")
        self._cli.run("rm", self.name, path, *(["-r"] if recursive else []))

    def copy_files(self, src_paths, dst_path):
        self._host_only("copy_files")
        self._cli.run("cp", self.name, *src_paths, dst_path)

    def batch_upload(self, force=False):
        """A context manager; everything put in it lands as one snapshot when
        the block ends without an exception. ovsnap replaces existing files
        whatever `force` says (Modal refuses them without force=True)."""
        self._host_only("batch_upload")
        return _BatchUpload(self, force)


class _BatchUpload:
    def __init__(self, volume, force):
        self._volume = volume
        self._items = []
        self._tmp = None

    def __enter__(self):
        return self

    def put_file(self, local_file, remote_path):
        """A local path, or a file object opened for reading bytes; a
        remote_path ending in "/" receives the file under its base name."""
        if isinstance(local_file, (str, bytes, os.PathLike)):
            local = os.fspath(local_file)
            if os.path.isdir(local):
                raise IsADirectoryError(errno.EISDIR, "put_file: a directory (use put_directory)",
                                        local)
        else:
            if self._tmp is None:
                self._tmp = tempfile.mkdtemp(prefix="ovsnap-batch.")
            name = os.path.basename(remote_path.rstrip("/")) or "file"
            local = os.path.join(self._tmp, "%d" % len(self._items), name)
            os.mkdir(os.path.dirname(local))
            with open(local, "wb") as out:
                data = local_file.read()
                out.write(data.encode() if isinstance(data, str) else data)
        self._items.append((local, remote_path))

    def put_directory(self, local_path, remote_path):
        """The contents of local_path, at remote_path."""
        local = os.fspath(local_path)
        if not os.path.isdir(local):
            raise NotADirectoryError(errno.ENOTDIR, "put_directory: not a directory", local)
        self._items.append((local.rstrip("/") + "/", remote_path))

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None and self._items:
                listing = b"".join(os.fsencode(p) + b"\0" for item in self._items for p in item)
                self._volume._cli.run("put", self._volume.name, "--batch", "-", stdin=listing)
        finally:
            if self._tmp:
                shutil.rmtree(self._tmp, ignore_errors=True)
        return False


if __name__ == "__main__":  # python3 -m ovsnap: a smoke check of the installation
    print("ovsnap client: Volume, FileEntry, %s" % ", ".join(__all__[3:]))
