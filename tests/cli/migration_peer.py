#!/usr/bin/env python3
"""A hostile migration peer for tests/cli/migration (vmm/migration_stream.h's frames).

  migration_peer.py dest PATH MODE    listen at PATH as a fake destination:
      garbage     answer the source's first frame with bytes that are no frame
      close       read a little of the stream, then hang up
      accept      accept the VM, take its memory and state, then hang up instead of READY
      refuse      answer with an ERROR frame
  migration_peer.py source PATH MODE  connect to a destination at PATH as a fake source:
      garbage     send bytes that are no frame
      protocol1   a HELLO of migration protocol 1 (an older skiff's)
      arm64       a HELLO from an arm64 VM
      badcrc      a HELLO whose payload does not match its CRC
      bigpages    HELLO and a CONFIG that is no description
      hangup      a good HELLO, then hang up
  migration_peer.py relay PATH TARGET HELD GO   listen at PATH and pass the stream on to a
      real destination at TARGET, both ways, except that the destination's first answer (its
      ACCEPT, sent once it has the description) is held back: HELD is created when it comes,
      and it goes on to the source once GO exists (20 s at most). The source meanwhile waits
      for it with its description sent, so a test can change that description in between.
Prints what the other side answered (a refusal's text) on stdout."""
import os
import socket
import struct
import sys
import threading
import time
import zlib


def covered(ftype, payload):
    """What the payload CRC covers: all of it, but a PAGES frame's count and offsets only."""
    if ftype == 4 and len(payload) >= 4:
        return payload[:8 + 8 * struct.unpack("<I", payload[:4])[0]]
    return payload


def frame(ftype, payload=b"", protocol=2, arch=1, crc=None):
    head = b"SKMG" + struct.pack("<HHIII", protocol, arch, ftype, len(payload),
                                 zlib.crc32(covered(ftype, payload)) if crc is None else crc)
    return head + struct.pack("<I", zlib.crc32(head)) + payload


HELLO = struct.pack("<I", 4096) + b"fake-peer".ljust(32, b"\0")


def read_answer(s):
    s.settimeout(5)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    if len(data) >= 24 and data[:4] == b"SKMG":
        ftype, length = struct.unpack("<II", data[8:16])
        return "%d %s" % (ftype, data[24:24 + length].decode("ascii", "replace"))
    return "raw %d bytes" % len(data)


def dest(path, mode):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)
    c, _ = srv.accept()
    c.settimeout(2)
    c.recv(24 + len(HELLO))
    if mode == "garbage":
        c.sendall(b"this is not a frame at all, no no no" * 4)
    elif mode == "refuse":
        c.sendall(frame(8, b"not today"))
    elif mode == "close":
        pass
    elif mode == "accept":
        c.sendall(frame(3))
        try:
            while c.recv(1 << 20):
                pass
        except socket.timeout:
            pass
    time.sleep(0.5)
    c.close()
    srv.close()


def source(path, mode):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(100):
        try:
            s.connect(path)
            break
        except OSError:
            time.sleep(0.1)
    if mode == "garbage":
        s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 10)
    elif mode == "protocol1":
        s.sendall(frame(1, HELLO, protocol=1))
    elif mode == "arm64":
        s.sendall(frame(1, HELLO, arch=2))
    elif mode == "badcrc":
        s.sendall(frame(1, HELLO, crc=12345))
    elif mode == "bigpages":
        s.sendall(frame(1, HELLO) + frame(2, b"\x00\x02\x01\x00\xff\xff\xff\x7f"))
    elif mode == "hangup":
        s.sendall(frame(1, HELLO))
        s.close()
        print("hung up")
        return
    print(read_answer(s))
    s.close()


def pipe(a, b, before_first=None):
    first = True
    try:
        while True:
            data = a.recv(1 << 16)
            if not data:
                break
            if first and before_first:
                before_first()
            first = False
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def relay(path, target, held, go):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)
    src, _ = srv.accept()
    dst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dst.connect(target)

    def hold():
        open(held, "w").close()
        for _ in range(200):
            if os.path.exists(go):
                return
            time.sleep(0.1)

    t = threading.Thread(target=pipe, args=(src, dst))
    t.start()
    pipe(dst, src, hold)
    t.join()
    srv.close()


if __name__ == "__main__":
    if sys.argv[1] == "relay":
        relay(*sys.argv[2:6])
    else:
        {"dest": dest, "source": source}[sys.argv[1]](sys.argv[2], sys.argv[3])
