/* Ctrl-Alt-Del on x86: vm_send_ctrl_alt_del() types Ctrl, Alt, Del and their releases into the
 * VM's i8042, in scancode set 1 (what the guest reads with translation on), and the guest's
 * keyboard interrupt is raised; a stopping VM refuses. Reads the data port as the guest would,
 * through the VM's port bus, without running a vCPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/arch.h"
#include "bus/bus.h"
#include "config/vm_config.h"
#include "vmm/vm.h"

#include <errno.h>
#include <string.h>
#include "base/log.h"

/* The reason a call failed: the thread's last error (base/log.h). */
#define err log_last_error()

static uint8_t read_port(struct vm *vm, uint16_t port)
{
	uint8_t v = 0;

	bus_access(&vm->pio, port, &v, 1, false);
	return v;
}

static void test_ctrl_alt_del_scancodes(void **state)
{
	static const uint8_t expected[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	struct vm_config cfg;
	struct vm vm;

	vm_config_init_defaults(&cfg);
	arch_demo_guest(&cfg.raw_image, &cfg.raw_size);
	assert_int_equal(vm_create(&vm, &cfg), 0);
	assert_int_equal(read_port(&vm, 0x64) & 1, 0); /* nothing to read yet */
	assert_int_equal(vm_send_ctrl_alt_del(&vm), 0);
	for (size_t i = 0; i < sizeof(expected); i++) {
		assert_int_equal(read_port(&vm, 0x64) & 1, 1);
		assert_int_equal(read_port(&vm, 0x60), expected[i]);
	}
	assert_int_equal(read_port(&vm, 0x64) & 1, 0);

	/* Twice, to fill the controller's 16-byte buffer: a third press does not fit. */
	assert_int_equal(vm_send_ctrl_alt_del(&vm), 0);
	assert_int_equal(vm_send_ctrl_alt_del(&vm), 0);
	assert_int_equal(vm_send_ctrl_alt_del(&vm), -ENOSPC);
	assert_non_null(strstr(err, "buffer is full"));

	vm_request_stop(&vm, VM_STOP_SIGNAL, "test");
	assert_int_equal(vm_send_ctrl_alt_del(&vm), -ESHUTDOWN);
	assert_string_equal(err, "the VM is stopping");
	vm_destroy(&vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctrl_alt_del_scancodes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
