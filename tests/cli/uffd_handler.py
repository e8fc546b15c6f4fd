#!/usr/bin/env python3
"""A page-fault handler for PUT /snapshot/load's Uffd backend, as Firecracker documents them:
listens on SOCKET, takes one connection, receives the userfaultfd (SCM_RIGHTS) and the JSON
description of guest memory, and serves every missing-page fault from the snapshot's memory file
MEM (UFFDIO_COPY of the page at the region's offset). It appends "served N" to LOG after each
fault and "regions R" once it has the description; a malformed description is reported there.
Usage: uffd_handler.py SOCKET MEM LOG"""
import array
import fcntl
import json
import mmap
import os
import select
import socket
import struct
import sys
import ctypes

UFFDIO_COPY = 0xC028AA03  # _IOWR(0xAA, 0x03, struct uffdio_copy)
UFFD_EVENT_PAGEFAULT = 0x12
PAGE = 4096


def main():
    sock_path, mem_path, log_path = sys.argv[1:4]
    log = open(log_path, "a", buffering=1)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    conn, _ = srv.accept()
    fds = array.array("i")
    data, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not fds:
        log.write("no userfaultfd received\n")
        return 1
    uffd = fds[0]
    try:
        regions = json.loads(data)
        for r in regions:
            for key in ("base_host_virt_addr", "size", "offset", "page_size", "page_size_kib"):
                int(r[key])
    except (ValueError, KeyError, TypeError) as e:
        log.write("bad description %r: %s\n" % (data, e))
        return 1
    log.write("regions %d\n" % len(regions))
    fd = os.open(mem_path, os.O_RDONLY)
    mem = mmap.mmap(fd, os.fstat(fd).st_size, access=mmap.ACCESS_COPY)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    served = 0
    while True:
        select.select([uffd], [], [])
        try:
            msg = os.read(uffd, 32)
        except BlockingIOError:
            continue
        if len(msg) < 32 or msg[0] != UFFD_EVENT_PAGEFAULT:
            continue
        addr = struct.unpack_from("Q", msg, 16)[0] & ~(PAGE - 1)
        for r in regions:
            start = r["base_host_virt_addr"]
            if start <= addr < start + r["size"]:
                src = base + r["offset"] + (addr - start)
                copy = bytearray(struct.pack("QQQQq", addr, src, PAGE, 0, 0))
                try:
                    fcntl.ioctl(uffd, UFFDIO_COPY, copy)
                except OSError:
                    pass  # EEXIST: another fault on the page was served first
                served += 1
                log.write("served %d\n" % served)
                break
        else:
            log.write("fault outside every region: 0x%x\n" % addr)


if __name__ == "__main__":
    sys.exit(main())
