#include "vmm/uffd.h"
#include "vmm/vm.h"
#include "arch/arch.h"
#include "devices/boot_timer.h"
#include "pci/host.h"
#include "vmm/irq_routing.h"
#include "vmm/virtio_devices.h"
#include "base/log.h"
#include "base/output_file.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

const char *vm_stop_reason_name(enum vm_stop_reason reason)
{
	switch (reason) {
	case VM_STOP_NONE:
		return "running";
	case VM_STOP_POWEROFF:
		return "powered off";
	case VM_STOP_RESET:
		return "reset";
	case VM_STOP_HALT:
		return "halted";
	case VM_STOP_SIGNAL:
		return "stopped by the user";
	case VM_STOP_ERROR:
		return "failed";
	case VM_STOP_EXIT:
		return "exited with a status of its choosing";
	case VM_STOP_MIGRATED:
		return "migrated";
	}
	return "unknown";
}

static void power_request(void *ctx, enum vm_stop_reason reason, const char *why)
{
	vm_request_stop(ctx, reason, why);
}

static void power_exit(void *ctx, int status, const char *why)
{
	vm_request_exit(ctx, status, why);
}

int vm_check_config(const struct vm_config *cfg, int max_cpus, uint64_t host_memory_mib)
{
	int ret = vm_config_validate(cfg, max_cpus, host_memory_mib);

	return ret ? ret : arch_validate_config(cfg);
}

static void request_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *why)
{
	bool first = false;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stop_reason == VM_STOP_NONE) {
		vm->stop_reason = reason;
		vm->stop_status = status;
		snprintf(vm->stop_why, sizeof(vm->stop_why), "%s", why ? why : "");
		first = true;
	}
	pthread_mutex_unlock(&vm->stop_lock);
	if (!first)
		return;
	/* Before the run loop learns of the stop and kicks the vCPUs: a vCPU that a kick sends
	 * out of KVM_RUN then sees the gate stopping, and parked vCPUs leave to end. */
	vcpu_gate_stop(&vm->gate);
	if (eventfd_write(vm->stop_eventfd, 1) < 0)
		log_warn("cannot signal the stop of the VM: %s", strerror(errno));
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *why)
{
	request_stop(vm, reason, 0, why);
}

void vm_request_exit(struct vm *vm, int status, const char *why)
{
	request_stop(vm, VM_STOP_EXIT, status & 0xff, why);
}

/* Whether the VM may become paused (`pause`) or running; with pause_api_lock held. */
static int pause_change_allowed(struct vm *vm, bool pause)
{
	if (vcpu_gate_stopping(&vm->gate))
		return log_set_error(-ESHUTDOWN, "the VM is stopping");
	if (vm->paused == pause)
		return log_set_error(-EALREADY, "the VM is already %s",
				     pause ? "paused" : "running");
	return 0;
}

int vm_pause(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->pause_api_lock);
	ret = pause_change_allowed(vm, true);
	if (!ret && (ret = vcpus_pause(&vm->gate, vm->vcpus, vm->nr_vcpus)))
		log_set_error(ret, "the VM stopped while it was being paused");
	if (!ret)
		__atomic_store_n(&vm->paused, true, __ATOMIC_SEQ_CST);
	/* Every vCPU is out of KVM_RUN and stays out until vm_resume(). A clock that cannot be
	 * saved leaves the pause in place: the guest sees the time jump, nothing worse. */
	if (!ret && arch_vm_clock_save(vm) == 0)
		vm->clock_saved = true;
	if (!ret)
		log_info("VM paused");
	pthread_mutex_unlock(&vm->pause_api_lock);
	return ret;
}

int vm_resume(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->pause_api_lock);
	ret = pause_change_allowed(vm, false);
	if (ret) {
		pthread_mutex_unlock(&vm->pause_api_lock);
		return ret;
	}
	if (vm->clock_saved)
		arch_vm_clock_restore(vm);
	vm->clock_saved = false;
	__atomic_store_n(&vm->paused, false, __ATOMIC_SEQ_CST);
	vcpus_resume(&vm->gate);
	log_info("VM resumed");
	pthread_mutex_unlock(&vm->pause_api_lock);
	return 0;
}

bool vm_is_paused(struct vm *vm)
{
	return __atomic_load_n(&vm->paused, __ATOMIC_SEQ_CST);
}

int vm_send_ctrl_alt_del(struct vm *vm)
{
	if (vm_stop_reason(vm) != VM_STOP_NONE)
		return log_set_error(-ESHUTDOWN, "the VM is stopping");
	return arch_send_ctrl_alt_del(vm);
}

enum vm_stop_reason vm_stop_reason(struct vm *vm)
{
	enum vm_stop_reason r;

	pthread_mutex_lock(&vm->stop_lock);
	r = vm->stop_reason;
	pthread_mutex_unlock(&vm->stop_lock);
	return r;
}

static void irq_line_kvm(void *ctx, uint32_t gsi, bool level)
{
	struct vm *vm = ctx;
	struct kvm_irq_level irq = { .irq = arch_kvm_irq_line(gsi), .level = level ? 1 : 0 };

	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE for GSI %u failed: %s", gsi, strerror(errno));
}

void vm_irq_line_init(struct vm *vm, struct irq_line *line, uint32_t gsi)
{
	line->set_level = vm->has_irqchip ? irq_line_kvm : NULL;
	line->ctx = vm;
	line->gsi = gsi;
}

uint64_t vm_guest_resident_bytes(struct vm *vm)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t resident = 0;
	unsigned char vec[4096];

	for (int i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];

		for (uint64_t off = 0; off < r->size; off += sizeof(vec) * (uint64_t)page) {
			uint64_t len = r->size - off;
			uint64_t pages;

			if (len > sizeof(vec) * (uint64_t)page)
				len = sizeof(vec) * (uint64_t)page;
			pages = (len + (uint64_t)page - 1) / (uint64_t)page;
			if (mincore(r->hva + off, len, vec) != 0)
				return 0;
			for (uint64_t p = 0; p < pages; p++)
				resident += (vec[p] & 1) ? (uint64_t)page : 0;
		}
	}
	return resident;
}

int vm_add_device(struct vm *vm, struct vm_device *dev, const char *what)
{
	if (!dev) {
		log_error("cannot create %s: out of memory", what);
		return -ENOMEM;
	}
	vm_device_add(&vm->devices, dev);
	return 0;
}

int vm_map_device(struct vm *vm, struct bus *bus, uint64_t base, uint64_t len,
		  const struct bus_device_ops *ops, void *opaque, const char *what)
{
	int ret = bus_register(bus, base, len, ops, opaque, what);

	if (ret)
		log_error("cannot place %s at %s 0x%llx: %s", what,
			  bus == &vm->pio ? "port" : "address", (unsigned long long)base,
			  strerror(-ret));
	return ret;
}

/* The boot breakdown, once the guest's userspace says it is up: the VMM's set-up (exec to the
 * boot vCPU's first KVM_RUN), the guest's boot (from there to the boot-timer write) and the exits
 * that boot cost, by kind, over every vCPU, and the writes KVM batched instead (vmm/coalesced.h:
 * the console's bytes). Runs on the writing vCPU's thread: the other vCPUs'
 * counters are read as they stand. */
static void log_boot_breakdown(void *opaque, uint64_t boot_us)
{
	struct vm *vm = opaque;
	uint64_t first_us = __atomic_load_n(&vm->first_run_us, __ATOMIC_ACQUIRE);
	uint64_t e[VCPU_EXIT_NR] = {0}, total = 0;

	if (!first_us || first_us > boot_us)
		return; /* not booted from this process's first KVM_RUN (a restored snapshot) */
	for (int i = 0; i < vm->nr_vcpus; i++)
		for (int k = 0; k < VCPU_EXIT_NR; k++)
			e[k] += __atomic_load_n(&vm->vcpus[i].exits[k], __ATOMIC_RELAXED);
	for (int k = 0; k < VCPU_EXIT_NR; k++)
		total += e[k];
	log_info("boot breakdown: VMM set-up %.1f ms (exec to the first KVM_RUN), guest %.1f ms "
		 "(to the boot timer), exits in the guest's boot: %llu (port I/O %llu, MMIO %llu, "
		 "HLT %llu, other %llu), writes batched without an exit: %llu",
		 (double)first_us / 1000.0, (double)(boot_us - first_us) / 1000.0,
		 (unsigned long long)total,
		 (unsigned long long)(e[VCPU_EXIT_IO_IN] + e[VCPU_EXIT_IO_OUT]),
		 (unsigned long long)(e[VCPU_EXIT_MMIO_READ] + e[VCPU_EXIT_MMIO_WRITE]),
		 (unsigned long long)e[VCPU_EXIT_HLT],
		 (unsigned long long)(total - e[VCPU_EXIT_IO_IN] - e[VCPU_EXIT_IO_OUT] -
				      e[VCPU_EXIT_MMIO_READ] - e[VCPU_EXIT_MMIO_WRITE] -
				      e[VCPU_EXIT_HLT]),
		 (unsigned long long)coalesced_replayed(&vm->coalesced));
}

/* The boot timer: where the guest's userspace says it is up (metrics' boot time), on every
 * architecture at the page the arch names. */
static int attach_boot_timer(struct vm *vm)
{
	struct boot_timer *bt = boot_timer_create();
	int ret = vm_add_device(vm, boot_timer_device(bt), "the boot timer");

	if (bt)
		boot_timer_on_boot(bt, log_boot_breakdown, vm);

	if (!ret)
		ret = vm_map_device(vm, &vm->mmio, arch_boot_timer_base(), BOOT_TIMER_SIZE,
				    &boot_timer_ops, bt, "the boot timer");
	return ret;
}

static int map_memory(struct vm *vm, int mem_fd, const char *uffd_socket)
{
	struct guest_region layout[GUEST_MEM_MAX_REGIONS];
	uint64_t bytes = vm->cfg->memory_mib << 20;
	int nr = arch_memory_layout(bytes, layout, GUEST_MEM_MAX_REGIONS);
	/* A vhost-user backend (virtio-fs) maps guest memory itself: then it is memfds, shared;
	 * a restored VM's is its snapshot's memory file. */
	int ret = mem_fd >= 0	 ? guest_mem_map_file(&vm->mem, layout, nr, mem_fd)
		  : vm->cfg->nr_fs ? guest_mem_map_shared(&vm->mem, layout, nr)
				   : guest_mem_map(&vm->mem, layout, nr);

	if (ret == -EINVAL && mem_fd >= 0) {
		log_error("the memory file is smaller than the guest's %llu MiB",
			  (unsigned long long)vm->cfg->memory_mib);
		return ret;
	}
	if (ret) {
		log_error("cannot %s %llu MiB of host memory for the guest: %s",
			  mem_fd < 0 ? "reserve" : "map the memory file as",
			  (unsigned long long)vm->cfg->memory_mib, strerror(-ret));
		return ret;
	}
	/* The Uffd backend: the memory is anonymous, and a handler fills it on first touch. */
	if (uffd_socket && (ret = uffd_hand_over(&vm->mem, uffd_socket))) {
		log_error("%s", log_last_error());
		return ret;
	}
	/* track_dirty_pages: KVM logs the guest's writes per slot, and guest_mem skiff's own. */
	if (vm->cfg->track_dirty_pages && (ret = guest_mem_track_dirty(&vm->mem))) {
		log_error("out of memory for the dirty-page bitmaps");
		return ret;
	}
	if (vm->cfg->mem_mergeable && (ret = guest_mem_mergeable(&vm->mem))) {
		log_error("cannot mark guest memory mergeable (KSM): %s%s", strerror(-ret),
			  ret == -EINVAL ? " (a kernel without CONFIG_KSM?)" : "");
		return ret;
	}
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i,
			.flags = vm->cfg->track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->hva,
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			ret = -errno;
			log_error("KVM_SET_USER_MEMORY_REGION for guest 0x%llx+0x%llx failed: %s",
				  (unsigned long long)r->gpa, (unsigned long long)r->size,
				  strerror(errno));
			return ret;
		}
	}
	return 0;
}

static const struct kvm_cap_need common_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
};

/* --enable-pci: the routing table for MSIs, and the host bridge in the arch's windows (on the
 * device list, before the virtio devices that go on its bus). */
static int create_pci(struct vm *vm)
{
	struct arch_pci_windows w;
	struct pci_host_params p;
	int ret;

	if (!vm->cfg->enable_pci)
		return 0;
	ret = arch_pci_windows(vm->cfg, &w);
	if (ret) {
		log_error("%s: this architecture has no PCI host bridge yet",
			  vm_config_setting_name(vm->cfg, VM_SETTING_PCI));
		return ret;
	}
	vm->irq_routing = calloc(1, sizeof(*vm->irq_routing));
	if (!vm->irq_routing) {
		log_error("cannot create the interrupt routing table: out of memory");
		return -ENOMEM;
	}
	ret = irq_routing_init(vm->irq_routing, vm->fd);
	if (ret) {
		free(vm->irq_routing);
		vm->irq_routing = NULL;
		return ret;
	}
	p = (struct pci_host_params){
	    .mmio = &vm->mmio,
	    .pio = w.cf8 ? &vm->pio : NULL,
	    .ecam_base = w.ecam_base,
	    .ecam_size = w.ecam_size,
	    .mmio_base = w.mmio_base,
	    .mmio_size = w.mmio_size,
	};
	vm->pci = pci_host_create(&p);
	if (!vm->pci)
		return -EIO;
	vm_device_add(&vm->devices, &vm->pci->entry);
	log_info("pci: host bridge, ECAM at %#llx, BARs in [%#llx, +%#llx)%s",
		 (unsigned long long)w.ecam_base, (unsigned long long)w.mmio_base,
		 (unsigned long long)w.mmio_size, w.cf8 ? ", ports 0xcf8-0xcff" : "");
	return 0;
}

/* After the device list (the host bridge and its functions) is gone. */
static void destroy_pci(struct vm *vm)
{
	vm->pci = NULL;
	if (vm->irq_routing) {
		irq_routing_destroy(vm->irq_routing);
		free(vm->irq_routing);
		vm->irq_routing = NULL;
	}
}

static int create(struct vm *vm, const struct vm_config *cfg, int mem_fd, const char *uffd_socket,
		  bool disks_unlocked)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->restoring = mem_fd >= 0 || uffd_socket;
	vm->disks_unlocked = disks_unlocked;
	vm->kvm.fd = vm->fd = vm->stop_eventfd = -1;
	vm->cfg = cfg;
	vm->console_out_fd = STDOUT_FILENO;
	vm->serial_out_fd = -1;
	vm->power = (struct power_ctl){ .request_stop = power_request, .request_exit = power_exit,
					.ctx = vm };
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_mutex_init(&vm->pause_api_lock, NULL);
	vcpu_gate_init(&vm->gate);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");

	ret = kvm_open(&vm->kvm);
	if (ret)
		goto fail;
	ret = kvm_require_caps(vm->kvm.fd, common_caps, sizeof(common_caps) / sizeof(common_caps[0]));
	if (ret)
		goto fail;
	if (cfg->nr_cpus > vm->kvm.max_vcpus) {
		char cpus[64];

		log_error("%s: this host's KVM allows at most %d vCPUs",
			  vm_config_describe(cfg, VM_SETTING_CPUS, cpus, sizeof(cpus)),
			  vm->kvm.max_vcpus);
		ret = -EINVAL;
		goto fail;
	}
	/* KVM_CREATE_VM fails with EINTR when the thread has a signal or task work pending while
	 * it registers with the process's memory (seen now and then by test_lifecycle's 100 VMs in
	 * one process): a failed call leaves nothing behind, so try again, as QEMU does. */
	for (int tries = 0; tries < 100; tries++) {
		vm->fd = ioctl(vm->kvm.fd, KVM_CREATE_VM, 0UL);
		if (vm->fd >= 0 || errno != EINTR)
			break;
	}
	if (vm->fd < 0) {
		ret = -errno;
		log_error("KVM_CREATE_VM failed: %s", strerror(errno));
		goto fail;
	}
	coalesced_init(&vm->coalesced, vm->fd, &vm->pio, &vm->mmio);
	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_eventfd < 0) {
		ret = -errno;
		log_error("eventfd: %s", strerror(errno));
		goto fail;
	}

	/* PUT /serial: the console's output goes to that file or FIFO instead of stdout. */
	if (cfg->serial_out_path[0]) {
		vm->serial_out_fd = output_file_open(cfg->serial_out_path, "the serial output ");
		if (vm->serial_out_fd < 0) {
			ret = vm->serial_out_fd;
			log_error("%s", log_last_error());
			goto fail;
		}
		vm->console_out_fd = vm->serial_out_fd;
	}

	ret = arch_vm_init(vm);
	if (ret)
		goto fail;
	ret = map_memory(vm, mem_fd, uffd_socket);
	if (ret)
		goto fail;
	ret = arch_devices_init(vm);
	if (ret)
		goto fail;
	ret = attach_boot_timer(vm);
	if (ret)
		goto fail;
	ret = create_pci(vm);
	if (ret)
		goto fail;
	ret = virtio_devices_create(vm);
	if (ret)
		goto fail;
	ret = vm->restoring ? 0 : arch_load_guest(vm);
	if (ret)
		goto fail;

	vm->vcpus = calloc((size_t)cfg->nr_cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		ret = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < cfg->nr_cpus; i++) {
		const struct vcpu_host host = {
			.vm_fd = vm->fd,
			.run_size = (size_t)vm->kvm.vcpu_mmap_size,
			.pio = &vm->pio,
			.mmio = &vm->mmio,
			.power = vm->power,
			.gate = &vm->gate,
			.coalesced = &vm->coalesced,
			.first_run_cpu_ns = &vm->first_run_cpu_ns,
			.first_run_us = &vm->first_run_us,
		};

		ret = vcpu_create(&vm->vcpus[i], &host, i);
		if (ret)
			goto fail;
		vm->nr_vcpus = i + 1;
		ret = arch_vcpu_init(vm, &vm->vcpus[i]);
		if (ret)
			goto fail;
	}
	ret = arch_vm_finalize(vm);
	if (ret)
		goto fail;
	ret = virtio_devices_connect_irqs(vm);
	if (ret)
		goto fail;
	return 0;
fail:
	vm_destroy(vm);
	return ret;
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	return create(vm, cfg, -1, NULL, false);
}

int vm_create_restored(struct vm *vm, const struct vm_config *cfg, int mem_fd)
{
	return create(vm, cfg, mem_fd, NULL, false);
}

int vm_create_incoming(struct vm *vm, const struct vm_config *cfg, int mem_fd)
{
	return create(vm, cfg, mem_fd, NULL, true);
}

int vm_create_restored_uffd(struct vm *vm, const struct vm_config *cfg, const char *socket_path)
{
	return create(vm, cfg, -1, socket_path, false);
}

void vm_destroy(struct vm *vm)
{
	for (int i = 0; i < vm->nr_vcpus; i++) {
		vcpu_kick(&vm->vcpus[i]);
		vcpu_join(&vm->vcpus[i]);
	}
	for (int i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->nr_vcpus = 0;
	/* The console's input goes to a device about to go. */
	vm->console = (struct console_input){0};
	vm_devices_destroy(&vm->devices);
	destroy_pci(vm);
	arch_vm_destroy(vm);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	coalesced_destroy(&vm->coalesced);
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
	guest_mem_unmap(&vm->mem);
	if (vm->serial_out_fd >= 0)
		close(vm->serial_out_fd);
	vm->serial_out_fd = -1;
	vm->console_out_fd = STDOUT_FILENO;
	if (vm->stop_eventfd >= 0)
		close(vm->stop_eventfd);
	vm->stop_eventfd = -1;
	kvm_close(&vm->kvm);
	pthread_mutex_destroy(&vm->stop_lock);
	pthread_mutex_destroy(&vm->pause_api_lock);
	vcpu_gate_destroy(&vm->gate);
}
