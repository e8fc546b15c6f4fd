/* The arm64 platform's answers that need no KVM: the KVM_IRQ_LINE encoding of an SPI, where
 * virtio-mmio devices go (distinct pages inside the window, distinct SPIs the vGIC has, none on
 * the UART's), the RAM layout, and the config checks only arm64 makes (--enable-pci needs a
 * GICv3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>

#include "arch/arch.h"
#include "arch/arm64/layout.h"
#include "config/vm_config.h"
#include "virtio/virtio.h"
#include "base/guest_mem.h"
#include "base/log.h"

/* The reason a call failed: the thread's last error (base/log.h). */
#define err log_last_error()

static void test_irq_line_is_spi(void **state)
{
	/* KVM_ARM_IRQ_TYPE_SPI in bits 24..27, the INTID (32 + SPI) in bits 0..15. */
	assert_int_equal(arch_kvm_irq_line(0), (1u << 24) | 32);
	assert_int_equal(arch_kvm_irq_line(ARM64_UART_SPI), (1u << 24) | 33);
	assert_int_equal(arch_kvm_irq_line(16),
			 (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | 48);
}

static void test_virtio_slots(void **state)
{
	uint64_t base[ARM64_VIRTIO_MMIO_MAX];
	uint32_t gsi[ARM64_VIRTIO_MMIO_MAX];
	int n = 0;

	while (n < ARM64_VIRTIO_MMIO_MAX && arch_virtio_mmio_slot(n, &base[n], &gsi[n]) == 0)
		n++;
	assert_true(n >= 16);
	for (int i = 0; i < n; i++) {
		assert_int_equal(base[i] % 0x1000, 0);
		assert_true(base[i] >= ARM64_VIRTIO_MMIO_START);
		assert_true(base[i] + VIRTIO_MMIO_SIZE <= ARM64_RAM_BASE);
		assert_true(base[i] >= ARM64_UART_BASE + ARM64_UART_SIZE);
		assert_true(gsi[i] + 32 < ARM64_GIC_NR_IRQS);
		assert_int_not_equal(gsi[i], ARM64_UART_SPI);
		for (int j = 0; j < i; j++) {
			assert_true(base[j] + VIRTIO_MMIO_SIZE <= base[i]);
			assert_int_not_equal(gsi[i], gsi[j]);
		}
	}
	assert_int_equal(arch_virtio_mmio_slot(n, &base[0], &gsi[0]), -ENOSPC);
	assert_int_equal(arch_virtio_mmio_slot(-1, &base[0], &gsi[0]), -ENOSPC);
}

static void test_memory_layout(void **state)
{
	struct guest_region r[GUEST_MEM_MAX_REGIONS];

	assert_int_equal(arch_memory_layout(256ULL << 20, r, GUEST_MEM_MAX_REGIONS), 1);
	assert_int_equal(r[0].gpa, ARM64_RAM_BASE);
	assert_int_equal(r[0].size, 256ULL << 20);
	/* The GICv3 redistributors of the most vCPUs skiff allows stay below the UART. */
	assert_true(ARM64_GIC_REDIST_BASE + ARM64_GIC_V3_MAX_CPUS * ARM64_GIC_REDIST_STRIDE <=
		    ARM64_UART_BASE);
}

static void test_config_checks(void **state)
{
	struct vm_config cfg;

	vm_config_init_defaults(&cfg);
	assert_int_equal(arch_validate_config(&cfg), 0);
	cfg.irqchip = IRQCHIP_GICV3;
	cfg.nr_cpus = 64;
	assert_int_equal(arch_validate_config(&cfg), 0);
	cfg.irqchip = IRQCHIP_GICV2;
	assert_int_equal(arch_validate_config(&cfg), -EINVAL);
	assert_non_null(strstr(err, "at most 8"));
	cfg.nr_cpus = 8;
	assert_int_equal(arch_validate_config(&cfg), 0);
	cfg.boot_protocol = BOOT_PROTOCOL_PVH;
	assert_int_equal(arch_validate_config(&cfg), -EINVAL);
	assert_non_null(strstr(err, "--boot-protocol"));
	cfg.boot_protocol = BOOT_PROTOCOL_AUTO;
	/* RAM from 2 GiB must end inside the 40-bit guest physical address space. */
	cfg.memory_mib = (1ULL << 20) - 2048;
	assert_int_equal(arch_validate_config(&cfg), 0);
	cfg.memory_mib++;
	cfg.origin[VM_SETTING_MEMORY] = VM_ORIGIN_CLI;
	assert_int_equal(arch_validate_config(&cfg), -EINVAL);
	assert_non_null(strstr(err, "--memory 1046529 MiB: guest RAM must end below 40 bits"));
	/* Set by JSON (machine-config): named by its field. */
	cfg.origin[VM_SETTING_MEMORY] = VM_ORIGIN_JSON;
	assert_int_equal(arch_validate_config(&cfg), -EINVAL);
	assert_non_null(strstr(err, "mem_size_mib 1046529: guest RAM must end below 40 bits"));
	cfg.memory_mib = 256;
	cfg.nr_cpus = 9;
	cfg.irqchip = IRQCHIP_GICV2;
	cfg.origin[VM_SETTING_CPUS] = VM_ORIGIN_JSON;
	assert_int_equal(arch_validate_config(&cfg), -EINVAL);
	assert_non_null(strstr(err, "vcpu_count 9: a GICv2 serves at most 8 vCPUs"));
}

/* --enable-pci: MSIs go through a GICv3 ITS, so a GICv2 is refused up front (auto and gicv3
 * are taken; auto falling back to a v2 is refused when the VM is made). */
static void test_pci_needs_gicv3(void **state)
{
	struct vm_config cfg;

	vm_config_init_defaults(&cfg);
	cfg.enable_pci = true;
	assert_int_equal(arch_validate_config(&cfg), 0);
	cfg.irqchip = IRQCHIP_GICV3;
	assert_int_equal(arch_validate_config(&cfg), 0);
	cfg.irqchip = IRQCHIP_GICV2;
	assert_int_equal(arch_validate_config(&cfg), -EINVAL);
	assert_non_null(strstr(err, "--enable-pci needs a GICv3"));
	assert_null(strchr(err, '\n'));
	cfg.origin[VM_SETTING_PCI] = VM_ORIGIN_JSON;
	assert_int_equal(arch_validate_config(&cfg), -EINVAL);
	assert_non_null(strstr(err, "enable_pci needs a GICv3"));
	assert_null(strstr(err, "--enable-pci"));
	cfg.enable_pci = false;
	assert_int_equal(arch_validate_config(&cfg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_irq_line_is_spi), cmocka_unit_test(test_virtio_slots),
	    cmocka_unit_test(test_memory_layout),   cmocka_unit_test(test_config_checks),
	    cmocka_unit_test(test_pci_needs_gicv3),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
