#include "devices/acpi_pm.h"
#include "base/device.h"
#include "base/log.h"
#include "base/state.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(ACPI_PM_SLEEP_CTL_OFFSET < ACPI_PM_LEN && ACPI_PM_SLEEP_STS_OFFSET < ACPI_PM_LEN &&
		   ACPI_PM_RESET_OFFSET < ACPI_PM_LEN,
	       "the ACPI PM registers lie outside X86_ACPI_PM_PORT + X86_ACPI_PM_LEN");
_Static_assert(X86_ACPI_S5_SLP_TYP <= ACPI_SLEEP_CTL_SLP_TYP_MASK,
	       "X86_ACPI_S5_SLP_TYP does not fit the SLP_TYP field");

struct acpi_pm {
	struct vm_device dev; /* its entry in the VM's device list */
	struct power_ctl power;
	atomic_uint logged_sleep_types; /* bit n: sleep type n was reported already */
};

static void write_sleep_control(struct acpi_pm *pm, uint8_t value)
{
	unsigned type = (value >> ACPI_SLEEP_CTL_SLP_TYP_SHIFT) & ACPI_SLEEP_CTL_SLP_TYP_MASK;
	unsigned bit = 1u << type;

	/* Without SLP_EN the guest only stages the type. */
	if (!(value & ACPI_SLEEP_CTL_SLP_EN))
		return;
	if (type == X86_ACPI_S5_SLP_TYP) {
		power_request_stop(&pm->power, VM_STOP_POWEROFF, "ACPI S5 (poweroff)");
		return;
	}
	if (!(atomic_fetch_or(&pm->logged_sleep_types, bit) & bit))
		log_warn("acpi-pm: the guest asked for sleep type %u; only S5 (type %u) is "
			 "supported, ignoring it",
			 type, X86_ACPI_S5_SLP_TYP);
}

static void write_register(struct acpi_pm *pm, uint64_t offset, uint8_t value)
{
	switch (offset) {
	case ACPI_PM_SLEEP_CTL_OFFSET:
		write_sleep_control(pm, value);
		break;
	case ACPI_PM_RESET_OFFSET:
		if (value == X86_ACPI_RESET_VALUE)
			power_request_stop(&pm->power, VM_STOP_RESET, "ACPI reset register");
		break;
	default:
		/* Sleep status: clearing WAK_STS means nothing when the guest never wakes. */
		break;
	}
}

/* Every register is a byte (the FADT describes them so). A wider access is the byte accesses
 * it covers; bytes past the range go nowhere. */
static void pm_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	memset(data, 0, len);
}

static void pm_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	const uint8_t *bytes = data;

	for (uint32_t i = 0; i < len && offset < ACPI_PM_LEN && i < ACPI_PM_LEN - offset; i++)
		write_register(opaque, offset + i, bytes[i]);
}

const struct bus_device_ops acpi_pm_ops = {.read = pm_read, .write = pm_write};

static void acpi_pm_device_destroy(struct vm_device *dev)
{
	acpi_pm_destroy((struct acpi_pm *)dev);
}

#define ACPI_PM_STATE_VERSION 1

/* The device keeps no register the guest can read back: its section is empty, and is there so
 * that a restore checks the device list matches. */
static int acpi_pm_device_save(struct vm_device *dev, struct state_writer *w)
{
	state_begin(w, VM_DEVICE_ACPI_PM, ACPI_PM_STATE_VERSION);
	state_end(w);
	return state_writer_status(w);
}

static int acpi_pm_device_restore(struct vm_device *dev, struct state_reader *r)
{
	uint16_t version;

	if (state_open(r, VM_DEVICE_ACPI_PM, ACPI_PM_STATE_VERSION, &version))
		return state_reader_status(r);
	return state_close(r);
}

static const struct vm_device_ops acpi_pm_device_ops = {
	.name = "acpi-pm",
	.destroy = acpi_pm_device_destroy,
	.save = acpi_pm_device_save,
	.restore = acpi_pm_device_restore,
};

struct acpi_pm *acpi_pm_create(const struct power_ctl *power)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	if (power)
		pm->power = *power;
	atomic_init(&pm->logged_sleep_types, 0);
	vm_device_init(&pm->dev, VM_DEVICE_ACPI_PM, &acpi_pm_device_ops, NULL);
	return pm;
}

struct vm_device *acpi_pm_device(struct acpi_pm *pm)
{
	return pm ? &pm->dev : NULL;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	free(pm);
}
