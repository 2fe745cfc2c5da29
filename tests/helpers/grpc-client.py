#!/usr/bin/python3
"""A small gRPC client of containerd's Snapshots service for the tests, on
python3-h2 over a unix socket, with the protobuf encoding done by hand (the
messages are few and small). Also sends deliberately broken requests.

  grpc-client.py SOCK prepare KEY [PARENT] [-l K=V]...     -> the mounts, JSON
  grpc-client.py SOCK view KEY [PARENT] [-l K=V]...
  grpc-client.py SOCK mounts KEY
  grpc-client.py SOCK commit NAME KEY [-l K=V]...
  grpc-client.py SOCK remove KEY
  grpc-client.py SOCK stat KEY                              -> the Info, JSON
  grpc-client.py SOCK update KEY [-l K=V]... [-p PATH]...
  grpc-client.py SOCK list [FILTER]...                     -> one Info per line, JSON
  grpc-client.py SOCK usage KEY                             -> {"size": N, "inodes": N}
  grpc-client.py SOCK cleanup
  grpc-client.py SOCK call METHOD HEXBODY [--timeout T] [--keep-open]
        send HEXBODY (the DATA bytes: gRPC prefix and message, as given) to METHOD
  grpc-client.py SOCK raw HEXBYTES      send bytes on a bare connection, shut down our side,
                                        and say how it ended

A failed call prints "CODE-NAME: message" on stderr and exits with the gRPC
status (1-16); a transport failure exits 64.
"""
import json
import socket
import struct
import sys
import urllib.parse

import h2.config
import h2.connection
import h2.events

SVC = "/containerd.services.snapshots.v1.Snapshots/"
NAMES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
         "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
         "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
         "Unauthenticated"]


# --- protobuf by hand -------------------------------------------------------------------------
def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def labels(num, kv):
    return b"".join(field_bytes(num, field_bytes(1, k) + field_bytes(2, v)) for k, v in kv)


def parse(data):
    """{field number: [raw values]}: ints for varints, bytes for the rest"""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(data, i)
        elif wire == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        elif wire == 1:
            v, i = data[i:i + 8], i + 8
        elif wire == 5:
            v, i = data[i:i + 4], i + 4
        else:
            raise ValueError("bad wire type")
        out.setdefault(num, []).append(v)
    return out


def read_varint(data, i):
    v = shift = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def s(m, n):
    return m.get(n, [b""])[-1].decode()


def mount_of(b):
    m = parse(b)
    return {"type": s(m, 1), "source": s(m, 2), "target": s(m, 3),
            "options": [o.decode() for o in m.get(4, [])]}


def ts_of(b):
    m = parse(b)
    return m.get(1, [0])[-1] + m.get(2, [0])[-1] / 1e9


def info_of(b):
    m = parse(b)
    kinds = {0: "unknown", 1: "view", 2: "active", 3: "committed"}
    lab = {}
    for e in m.get(6, []):
        em = parse(e)
        lab[s(em, 1)] = s(em, 2)
    return {"name": s(m, 1), "parent": s(m, 2), "kind": kinds.get(m.get(3, [0])[-1], "?"),
            "created": ts_of(m.get(4, [b""])[-1]), "updated": ts_of(m.get(5, [b""])[-1]),
            "labels": lab}


# --- HTTP/2 -----------------------------------------------------------------------------------
class Failed(Exception):
    pass


def connect(sock_path):
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sk.settimeout(30)
    sk.connect(sock_path)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sk.sendall(conn.data_to_send())
    return sk, conn


def call(sock_path, method, body, timeout=None, keep_open=False):
    """(status, message, [response messages])"""
    sk, conn = connect(sock_path)
    sid = conn.get_next_available_stream_id()
    hdrs = [(":method", "POST"), (":scheme", "http"), (":path", method if method.startswith("/") else SVC + method),
            (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")]
    if timeout:
        hdrs.append(("grpc-timeout", timeout))
    conn.send_headers(sid, hdrs)
    sk.sendall(conn.data_to_send())
    # send in pieces the flow-control window allows; the server may answer early
    off, done, ended = 0, False, keep_open
    data, status, message, headers = b"", None, "", {}
    while not done:
        while off < len(body) and conn.local_flow_control_window(sid) > 0:
            n = min(len(body) - off, conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
            conn.send_data(sid, body[off:off + n])
            off += n
        if off >= len(body) and not ended:
            conn.end_stream(sid)
            ended = True
        sk.sendall(conn.data_to_send())
        chunk = sk.recv(65536)
        if not chunk:
            raise Failed("connection closed by the server")
        for ev in conn.receive_data(chunk):
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                headers.update(dict(ev.headers))
                if "grpc-status" in headers:
                    status = int(headers["grpc-status"])
                    message = urllib.parse.unquote(headers.get("grpc-message", ""))
                if ev.stream_ended:
                    done = True
            elif isinstance(ev, h2.events.DataReceived):
                data += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
            elif isinstance(ev, h2.events.StreamReset):
                done = True
                if status is None:
                    raise Failed("stream reset by the server (code %d)" % ev.error_code)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                raise Failed("GOAWAY from the server")
        sk.sendall(conn.data_to_send())
    sk.close()
    if status is None:
        raise Failed("no grpc-status (HTTP status %s)" % headers.get(":status"))
    msgs, i = [], 0
    while i + 5 <= len(data):
        n = struct.unpack(">I", data[i + 1:i + 5])[0]
        msgs.append(data[i + 5:i + 5 + n])
        i += 5 + n
    return status, message, msgs


def frame(msg):
    return b"\0" + struct.pack(">I", len(msg)) + msg


def rpc(sock_path, method, msg):
    status, message, msgs = call(sock_path, method, frame(msg))
    if status != 0:
        print("%s: %s" % (NAMES[status] if status < len(NAMES) else status, message), file=sys.stderr)
        sys.exit(status)
    return msgs


def opts(args):
    pos, lab, paths, extra = [], [], [], {}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-l":
            k, _, v = args[i + 1].partition("=")
            lab.append((k, v))
            i += 2
        elif a == "-p":
            paths.append(args[i + 1])
            i += 2
        elif a == "--timeout":
            extra["timeout"] = args[i + 1]
            i += 2
        elif a == "--keep-open":
            extra["keep_open"] = True
            i += 1
        else:
            pos.append(a)
            i += 1
    return pos, lab, paths, extra


def raw(sock_path, data):
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sk.settimeout(10)
    sk.connect(sock_path)
    try:
        sk.sendall(data)
        sk.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            c = sk.recv(65536)
            if not c:
                print("closed by the server after %d bytes" % len(got))
                return
            got += c
    except socket.timeout:
        print("still open after 10 s")
    except ConnectionResetError:
        print("reset by the server")


def main():
    sock_path, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    pos, lab, paths, extra = opts(args)
    try:
        if cmd in ("prepare", "view"):
            msg = field_bytes(2, pos[0]) + (field_bytes(3, pos[1]) if len(pos) > 1 else b"") + labels(4, lab)
            r = parse(rpc(sock_path, cmd.capitalize(), msg)[0])
            print(json.dumps([mount_of(m) for m in r.get(1, [])]))
        elif cmd == "mounts":
            r = parse(rpc(sock_path, "Mounts", field_bytes(2, pos[0]))[0])
            print(json.dumps([mount_of(m) for m in r.get(1, [])]))
        elif cmd == "commit":
            rpc(sock_path, "Commit", field_bytes(2, pos[0]) + field_bytes(3, pos[1]) + labels(4, lab))
        elif cmd == "remove":
            rpc(sock_path, "Remove", field_bytes(2, pos[0]))
        elif cmd == "stat":
            r = parse(rpc(sock_path, "Stat", field_bytes(2, pos[0]))[0])
            print(json.dumps(info_of(r[1][-1])))
        elif cmd == "update":
            info = field_bytes(1, pos[0]) + labels(6, lab)
            mask = b"".join(field_bytes(1, p) for p in paths)
            msg = field_bytes(2, info) + (field_bytes(3, mask) if paths else b"")
            r = parse(rpc(sock_path, "Update", msg)[0])
            print(json.dumps(info_of(r[1][-1])))
        elif cmd == "list":
            msgs = rpc(sock_path, "List", b"".join(field_bytes(2, f) for f in pos))
            for m in msgs:
                for i in parse(m).get(1, []):
                    print(json.dumps(info_of(i)))
        elif cmd == "usage":
            r = parse(rpc(sock_path, "Usage", field_bytes(2, pos[0]))[0])
            print(json.dumps({"size": r.get(1, [0])[-1], "inodes": r.get(2, [0])[-1]}))
        elif cmd == "cleanup":
            rpc(sock_path, "Cleanup", b"")
        elif cmd == "call":
            status, message, msgs = call(sock_path, pos[0], bytes.fromhex(pos[1]), **extra)
            print("%s: %s" % (NAMES[status] if status < len(NAMES) else status, message))
            sys.exit(status)
        elif cmd == "raw":
            raw(sock_path, bytes.fromhex(pos[0]))
        else:
            print("unknown command " + cmd, file=sys.stderr)
            sys.exit(64)
    except (Failed, OSError) as e:
        print("transport: %s" % e, file=sys.stderr)
        sys.exit(64)


if __name__ == "__main__":
    main()
