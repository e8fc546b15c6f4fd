/* A 16550A UART, as Linux's 8250 driver probes and drives it: eight byte-wide registers at
 * offsets 0..7 of whatever base the arch places it at (port 0x3f8 on x86, MMIO elsewhere).
 * Bytes the guest transmits are written straight to `out_fd`, so the transmitter is always
 * empty; bytes from the host are queued with serial_8250_receive() into a receive FIFO larger
 * than the 16 bytes the guest is told about. The interrupt line follows the 16550's priority
 * rules and is driven as a level, sent only when it changes. One mutex per device: vCPU
 * threads and the console input thread may call in concurrently.
 *
 * On the VM's device list (serial_8250_device) it resets to its power-on state and saves and
 * restores its registers and received bytes (layout: serial_8250.c), the pattern for the other
 * devices' state. */
#ifndef SKIFF_DEVICES_SERIAL_8250_H
#define SKIFF_DEVICES_SERIAL_8250_H

#include "bus/bus.h"
#include "base/irq.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Host input the device holds before the guest reads it. */
#define SERIAL_8250_RX_CAPACITY 1024

struct serial_8250;

/* `irq` is copied (NULL: no interrupt line). Transmitted bytes go to `out_fd` (-1: discarded);
 * the fd stays the caller's. Returns NULL when out of memory. */
struct serial_8250 *serial_8250_create(const struct irq_line *irq, int out_fd);
void serial_8250_destroy(struct serial_8250 *s);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *serial_8250_device(struct serial_8250 *s);

/* Queue host input for the guest. Returns how many leading bytes of `buf` were taken; the
 * caller keeps the rest and offers it again later. Nothing is taken while the guest has the
 * UART in loopback mode, where the receiver is disconnected from the outside. */
size_t serial_8250_receive(struct serial_8250 *s, const uint8_t *buf, size_t len);
/* How many bytes serial_8250_receive() would take now. */
size_t serial_8250_rx_space(struct serial_8250 *s);

/* Lets the transmit register's writes be batched while the guest polls for an empty
 * transmitter (IER's THRE interrupt off, no loopback): that is how Linux's console and earlycon
 * write, two exits a byte otherwise. Batching starts once the guest has written 512 bytes, so a
 * guest that says little and stops soon never pays for the zone (serial_8250.c says why).
 * set(ctx, on) turns batching of writes to offset 0 on or off
 * (vmm/coalesced.h's coalesced_zone_set); the device calls it now and whenever IER or MCR changes
 * the answer, under its lock, from the thread that wrote them. A set() that fails leaves
 * batching off, and -ENOTSUP means for good. Batched writes reach serial_8250_ops.write later, in
 * order, at the guest's next exit. */
void serial_8250_batch_tx(struct serial_8250 *s, int (*set)(void *ctx, bool on), void *ctx);

/* Register access; opaque is the device, offset 0..7 from the base. */
extern const struct bus_device_ops serial_8250_ops;

#endif
