#!/usr/bin/env python3
"""The GDB stub over its protocol (docs/debugging.md), against skiff running the bare-metal guest
tests/kvm/guests/gdb.S on this machine's /dev/kvm: a scripted client reads and writes registers
and memory at the guest's virtual addresses (its page tables map the code at 0xffffffff80000000),
sets software and hardware breakpoints and a watchpoint, single-steps, interrupts with Ctrl-C,
and sends hostile input (bad checksums, malformed and oversized packets, unmapped addresses,
breakpoints on garbage), each answered with an error while the stub and skiff go on. Then it
writes the guest's stop flag and detaches: the guest runs on to its end (status 0); a second run
is detached and attached again, and its hardware breakpoint and step work then too; a third ends
with `k`. Prints "ok - NAME" / "not ok - NAME: why".

Usage: gdb_rsp.py SKIFF GUEST_BIN GUEST_ELF WORKDIR"""
import os
import socket
import struct
import subprocess
import sys
import time

SKIFF, BIN, ELF, WORK = sys.argv[1:5]
HIGH = 0xffffffff80000000
failed = 0


def result(name, good, why=""):
    global failed
    if good:
        print(f"ok - gdb-{name}")
    else:
        failed += 1
        print(f"not ok - gdb-{name}: {why}")
    sys.stdout.flush()


def symbols():
    out = subprocess.run(["nm", ELF], capture_output=True, text=True, check=True).stdout
    return {f[2]: int(f[0], 16) for f in (l.split() for l in out.splitlines()) if len(f) == 3}


SYM = symbols()
STARTED = []


def csum(data):
    return sum(data) & 0xff


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)
        self.buf = b""

    def raw(self, data):
        self.s.sendall(data)

    def read_byte(self):
        while not self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("the stub closed the connection")
            self.buf += chunk
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def packet(self):
        """The next packet's payload (acking it), skipping '+'."""
        while True:
            b = self.read_byte()
            if b == b"$":
                break
            if b == b"-":
                raise AssertionError("the stub asked for a resend")
        data = b""
        while True:
            b = self.read_byte()
            if b == b"#":
                break
            data += b
        cs = self.read_byte() + self.read_byte()
        assert int(cs, 16) == csum(data), "bad checksum from the stub"
        try:
            self.raw(b"+")
        except OSError:
            pass  # after D the stub has closed the connection
        out, i = b"", 0
        while i < len(data):  # undo '}' escapes
            if data[i:i + 1] == b"}":
                out += bytes([data[i + 1] ^ 0x20])
                i += 2
            else:
                out += data[i:i + 1]
                i += 1
        return out.decode("latin-1")

    def ack(self):
        b = self.read_byte()
        return b

    def cmd(self, text):
        data = text.encode("latin-1") if isinstance(text, str) else text
        self.raw(b"$" + data + b"#" + b"%02x" % csum(data))
        return self.packet()


def regs(c):
    g = bytes.fromhex(c.cmd("g"))
    r = struct.unpack_from("<16Q", g, 0)
    names = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"] + [f"r{i}" for i in range(8, 16)]
    d = dict(zip(names, r))
    d["rip"] = struct.unpack_from("<Q", g, 128)[0]
    d["eflags"] = struct.unpack_from("<I", g, 136)[0]
    d["cs"] = struct.unpack_from("<I", g, 140)[0]
    d["cr0"], d["cr2"], d["cr3"], d["cr4"], d["cr8"], d["efer"] = struct.unpack_from("<6Q", g, 552)
    d["_len"] = len(g)
    return d


def start(name, extra=()):
    sock = os.path.join(WORK, f"{name}.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    log = open(os.path.join(WORK, f"{name}.log"), "w")
    p = subprocess.Popen([SKIFF, "run", "--raw", BIN, "--gdb", f"unix:{sock}", "--log-level", "info",
                          *extra], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    STARTED.append(p)
    for _ in range(200):
        if os.path.exists(sock):
            break
        if p.poll() is not None:
            break
        time.sleep(0.05)
    return p, sock


def logtext(name):
    with open(os.path.join(WORK, f"{name}.log")) as f:
        return f.read()


def main():
    p, sock = start("rsp")
    try:
        c = Client(sock)
    except OSError as e:
        result("connect", False, f"{e}; skiff said: {logtext('rsp')[-300:]}")
        p.kill()
        return
    result("listen-line", "gdb: waiting for a debugger on unix:" in logtext("rsp"), "no info line")

    sup = c.cmd("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386")
    result("qsupported", "PacketSize=4000" in sup and "qXfer:features:read+" in sup, sup)
    xml, off = "", 0
    while True:
        part = c.cmd(f"qXfer:features:read:target.xml:{off:x},200")
        xml += part[1:]
        off += len(part) - 1
        if part[0] == "l" or len(xml) > 20000:
            break
    result("target-xml", "<architecture>i386:x86-64</architecture>" in xml and
           'name="cr3"' in xml and 'name="fs_base"' in xml and xml.rstrip().endswith("</target>"),
           xml[:80])
    result("qxfer-unknown-annex", c.cmd("qXfer:features:read:nope.xml:0,100").startswith("E"), "")
    result("halt-reason", c.cmd("?") == "T05thread:1;", "")
    result("qattached", c.cmd("qAttached") == "1", "")
    result("threads", c.cmd("qfThreadInfo") == "m1" and c.cmd("qsThreadInfo") == "l", "")
    result("qc", c.cmd("qC") == "QC1", "")
    result("thread-alive", c.cmd("T1") == "OK" and c.cmd("T2").startswith("E"), "")

    # Before the first instruction: real mode at 0x1000.
    r = regs(c)
    result("first-instruction", r["rip"] == 0x1000 and r["cr0"] & 1 == 0, f"rip {r['rip']:#x}")
    result("regs-size", r["_len"] == 600, str(r["_len"]))
    first = open(BIN, "rb").read()[:16]
    result("read-mem-real-mode", c.cmd("m1000,10") == first.hex(), "")

    # Hostile input: each an error (or a resend request), the stub goes on.
    c.raw(b"$m1000,10#00")
    result("bad-checksum-nak", c.ack() == b"-", "")
    result("malformed-m", c.cmd("mzz,10").startswith("E"), "")
    result("malformed-Z", c.cmd("Z0,").startswith("E"), "")
    result("huge-length", c.cmd("m0,ffffffffffffffff").startswith("E"), "")
    result("number-overflow", c.cmd("m11112222333344445,1").startswith("E"), "")
    big = b"m" + b"0" * 20000
    c.raw(b"$" + big + b"#" + b"%02x" % csum(big))
    result("oversized-packet", c.packet().startswith("E"), "")
    result("unmapped-read", c.cmd("mffffff0000000000,10").startswith("E"), "")
    result("beyond-ram-read", c.cmd("m7fff0000,10").startswith("E"), "")
    result("garbage-breakpoint", c.cmd("Z0,fffffff000000000,1").startswith("E"), "")
    result("breakpoint-bad-kind", c.cmd("Z0,1000,7").startswith("E"), "")
    result("bad-register", c.cmd("p9999").startswith("E"), "")
    result("short-G", c.cmd("G0011").startswith("E"), "")
    result("bad-thread", c.cmd("Hg99").startswith("E"), "")
    result("unknown-packet", c.cmd("qSkiffNoSuchThing") == "", "")
    c.raw(b"garbage between packets\x7f")
    result("still-serving", c.cmd("?") == "T05thread:1;", "")

    # Not mapped yet (the guest has not built its page tables): refused.
    func = HIGH + SYM["func"]
    result("Z0-before-paging", c.cmd(f"Z0,{func:x},1").startswith("E"), "")
    # A hardware breakpoint (debug registers: a linear address) at the loop's head.
    loop = HIGH + SYM["loop"]
    result("Z1-insert", c.cmd(f"Z1,{loop:x},1") == "OK", "")
    stop = c.cmd("c")
    rip = regs(c)["rip"]
    result("continue-to-hw-bp", stop == "T05thread:1;" and rip == loop,
           f"{stop}, rip {rip:#x}, expected {loop:#x}")
    result("z1-remove", c.cmd(f"z1,{loop:x},1") == "OK", "")

    if os.path.exists("/sys/module/kvm_pvm"):
        # kvm_pvm emulates CPL0 code and its emulator fails on int3 (docs/debugging.md): the
        # nested scenario gdb-kernel covers software breakpoints on real KVM.
        print("# skip gdb-sw-bp: this host's KVM is kvm_pvm, which cannot run int3 at CPL0")
        func_sw = False  # real KVM only: software breakpoints and watchpoints firing
    else:
        func_sw = True
    # A software breakpoint at the guest-virtual address of func (without: a hardware one).
    func = HIGH + SYM["func"]
    code = open(BIN, "rb").read()
    kind = "0" if func_sw else "1"
    result(f"Z{kind}-insert-func", c.cmd(f"Z{kind},{func:x},1") == "OK", "")
    stop = c.cmd("c")
    r = regs(c)
    result("continue-to-func", stop == "T05thread:1;" and r["rip"] == func,
           f"{stop} rip {r['rip']:#x}, expected {func:#x}")
    result("long-mode-regs", r["efer"] & 0x400 and r["cr3"] == 0x10000 and r["cr0"] >> 31,
           f"efer {r['efer']:#x} cr3 {r['cr3']:#x}")
    # Memory at the guest-virtual address: the int3 gdb put there, and the code around it.
    virt = c.cmd(f"m{func:x},4")
    want = code[SYM["func"] - 0x1000:SYM["func"] - 0x1000 + 4].hex()
    if func_sw:
        want = "cc" + want[2:]
    result("read-virt", virt == want, f"{virt}, expected {want}")
    result(f"z{kind}-remove-func", c.cmd(f"z{kind},{func:x},1") == "OK", "")
    result("z-restored", c.cmd(f"m{func:x},1") == code[SYM["func"] - 0x1000:][:1].hex(), "")
    result("z-unknown", c.cmd(f"z{kind},{func:x},1").startswith("E"), "")

    # Single step: one nop.
    result("step", c.cmd("s") == "T05thread:1;", "")
    r2 = regs(c)
    result("step-rip", r2["rip"] == func + 1, f"rip {r2['rip']:#x}")
    result("vcont-query", c.cmd("vCont?").startswith("vCont;c"), "")
    result("vcont-step", c.cmd("vCont;s:1;c") == "T05thread:1;" and regs(c)["rip"] == func + 2, "")

    # Registers: P writes one, p reads it back; the counter (rbx) goes on from what was written.
    result("P-write", c.cmd("P1=" + struct.pack("<Q", 0x1000000).hex()) == "OK", "")
    result("p-read", c.cmd("p1") == struct.pack("<Q", 0x1000000).hex(), "")

    # A write watchpoint on the counter.
    counter = HIGH + SYM["counter"]
    result("Z2-insert", c.cmd(f"Z2,{counter:x},8") == "OK", "")
    if func_sw:
        stop = c.cmd("c")
        result("watchpoint", stop == f"T05thread:1;watch:{counter:x};", stop)
        val = struct.unpack("<Q", bytes.fromhex(c.cmd(f"m{counter:x},8")))[0]
        result("watched-value", val == 0x1000001, f"{val:#x}")
    else:
        print("# skip gdb-watchpoint: kvm_pvm's emulator does not honour data breakpoints")
    result("z2-remove", c.cmd(f"z2,{counter:x},8") == "OK", "")
    result("Z2-misaligned", c.cmd(f"Z2,{counter + 1:x},8").startswith("E"), "")
    result("Z3-unsupported", c.cmd(f"Z3,{counter:x},8") == "", "")
    for i in range(4):
        c.cmd(f"Z4,{counter + 8 * i + 64:x},8")
    result("hw-slots-full", c.cmd(f"Z4,{counter:x},8").startswith("E"), "")
    for i in range(4):
        c.cmd(f"z4,{counter + 8 * i + 64:x},8")

    # Ctrl-C while running.
    c.raw(b"$c#63")
    time.sleep(0.3)
    c.raw(b"\x03")
    stop = c.packet()
    result("ctrl-c", stop.startswith("T02thread:"), stop)
    n1 = struct.unpack("<Q", bytes.fromhex(c.cmd(f"m{counter:x},8")))[0]
    time.sleep(0.3)
    n2 = struct.unpack("<Q", bytes.fromhex(c.cmd(f"m{counter:x},8")))[0]
    result("paused-stays", n1 == n2 and n1 > 0x1000000, f"{n1:#x} {n2:#x}")

    # Memory write at a virtual address: the stop flag. Detach: the guest sees it and ends.
    flag = HIGH + SYM["stop_flag"]
    result("M-write", c.cmd(f"M{flag:x},1:01") == "OK" and c.cmd(f"m{flag:x},1") == "01", "")
    result("X-write", c.cmd(b"X%x,1:\x01" % flag) == "OK", "")
    result("detach", c.cmd("D") == "OK", "")
    try:
        status = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        status = None
    out = logtext("rsp")
    result("detach-runs-on", status == 0 and "done" in out, f"status {status}: {out[-300:]}")

    # A second debugger after a detach: its breakpoints and steps are in effect again (detach
    # once switched guest debugging off for good, and the guest met the next int3 itself).
    p, sock = start("reattach")
    c = Client(sock)
    c.cmd("?")
    result("reattach-first-detach", c.cmd("D") == "OK", "")
    c.s.close()
    c, stop = None, ""
    for _ in range(100):  # the stub takes the next connection once it has closed the first
        try:
            c = Client(sock)
            stop = c.cmd("?")
            break
        except (OSError, EOFError):
            time.sleep(0.05)
    result("reattach-stops", c is not None and stop.startswith("T02thread:"), f"{stop}")
    result("reattach-Z1", c.cmd(f"Z1,{loop:x},1") == "OK", "")
    try:
        stop = c.cmd("c")
    except socket.timeout:
        result("reattach-hw-bp", False, "the guest did not stop at the breakpoint in 10 s")
        raise
    rip = regs(c)["rip"]
    result("reattach-hw-bp", stop == "T05thread:1;" and rip == loop,
           f"{stop}, rip {rip:#x}, expected {loop:#x}")
    result("reattach-z1", c.cmd(f"z1,{loop:x},1") == "OK", "")
    result("reattach-step", c.cmd("s") == "T05thread:1;" and regs(c)["rip"] != loop, "")
    c.cmd(f"M{flag:x},1:01")
    result("reattach-detach", c.cmd("D") == "OK", "")
    try:
        status = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        status = None
    result("reattach-runs-on", status == 0 and "done" in logtext("reattach"),
           f"status {status}: {logtext('reattach')[-300:]}")

    # k ends the VM.
    p, sock = start("kill")
    c = Client(sock)
    c.cmd("?")
    c.raw(b"$k#6b")
    try:
        status = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        status = None
    result("kill", status is not None and "killed by the debugger" in logtext("kill"),
           f"status {status}")

    # A client that just goes away: the guest runs on.
    p, sock = start("drop")
    c = Client(sock)
    c.cmd("?")
    # Before the guest's first instruction there is no paging: the flag's physical address.
    c.cmd(f"M{SYM['stop_flag']:x},1:01")
    c.s.close()
    try:
        status = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        status = None
    result("disconnect-runs-on", status == 0 and "done" in logtext("drop"), f"status {status}")


try:
    main()
except Exception as e:  # a stub that stops answering, or answers garbage
    result("protocol", False, f"{type(e).__name__}: {e}")
finally:
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
sys.exit(1 if failed else 0)
