/* The GDB stub: `skiff run --gdb tcp:HOST:PORT|unix:PATH` serves gdb's remote protocol
 * (gdb/rsp.h) on its own thread (role THREAD_GDB). Each vCPU is a gdb thread (ids 1, 2, ...);
 * a stop (breakpoint, watchpoint, step, Ctrl-C, a new connection) pauses every vCPU at the VM's
 * gate (vmm/vcpu.h); continue and step resume them all. Registers, the page walk and
 * KVM_SET_GUEST_DEBUG are the architecture's (arch/gdb.h). docs/debugging.md says how to use it.
 *
 * gdb_stub_start() runs on the thread that runs the VM, before the vCPUs start: it pauses them
 * (they park before their first instruction), starts the stub's thread and waits until it
 * listens; one info line says where. A client that goes away detaches (the guest runs on); `k`
 * ends the VM. gdb_stub_stop() tells a connected gdb that the VM ended (W packet with skiff's
 * exit status) and joins the thread. Errors: -errno after one logged line. */
#ifndef SKIFF_VMM_GDB_STUB_H
#define SKIFF_VMM_GDB_STUB_H

struct gdb_stub;
struct vm;

int gdb_stub_start(struct vm *vm, struct gdb_stub **out);
void gdb_stub_stop(struct gdb_stub *stub, int exit_status);

#endif
