/* Firmware boot (--firmware, x86_64): a BIOS image such as SeaBIOS's bios.bin, mapped read-only
 * so that it ends at 4 GiB (where the reset vector, 0xfffffff0, falls in its last 16 bytes), and
 * its top 128 KiB (all of a 64 KiB image) copied into RAM ending at 1 MiB (0xe0000-0xfffff, or
 * 0xf0000-0xfffff), where a PC's chipset aliases it: as RAM, the shadow copy a BIOS makes
 * writable on a PC (SeaBIOS keeps its variables in that segment). The boot vCPU starts in KVM's reset state: real mode, CS base 0xffff0000,
 * IP 0xfff0.
 *
 * The image is untrusted input only as far as its size goes: a multiple of 64 KiB, at most
 * X86_FIRMWARE_MAX_SIZE (it must end at 4 GiB without reaching the LAPIC/IOAPIC pages). */
#ifndef SKIFF_X86_FIRMWARE_H
#define SKIFF_X86_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem;

#define X86_FIRMWARE_MAX_SIZE  (16ULL << 20)
#define X86_FIRMWARE_ALIGN     (64ULL << 10)
#define X86_FIRMWARE_LOW_ALIAS (128ULL << 10) /* the most that is aliased below 1 MiB */
#define X86_FIRMWARE_LOW_END   0x100000ULL

struct x86_firmware {
	void *image; /* host mapping of the guest's copy, size bytes */
	size_t size;
};

/* The file's checks: readable, a regular file, a non-zero multiple of 64 KiB, at most 16 MiB.
 * 0, or -errno with a one-line reason as the thread's last error (log_set_error). */
int x86_firmware_check(const char *path);

/* Reads the image and maps it below 4 GiB as KVM memory slot `slot` of VM `vm_fd` (read-only
 * when KVM can), and copies its top 128 KiB to 0xe0000 in `mem`. 0, or -errno after one logged
 * line (nothing stays mapped). */
int x86_firmware_load(struct x86_firmware *fw, int kvm_fd, int vm_fd, uint32_t slot,
		      const struct guest_mem *mem, const char *path);
void x86_firmware_unload(struct x86_firmware *fw);

#endif
