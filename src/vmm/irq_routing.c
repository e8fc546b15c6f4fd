#include "vmm/irq_routing.h"

#include "arch/arch.h"
#include "base/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static int fill_table(struct irq_routing *r, struct kvm_irq_routing_entry *out, int max)
{
	int n = 0;

	for (int i = 0; i < r->nr_defaults; i++, n++)
		if (n < max)
			out[n] = r->defaults[i];
	for (int i = 0; i < IRQ_ROUTING_MAX_MSI; i++) {
		if (!r->msi[i].used || !r->msi[i].set)
			continue;
		if (n < max)
			out[n] = r->msi[i].entry;
		n++;
	}
	return n;
}

int irq_routing_table(struct irq_routing *r, struct kvm_irq_routing_entry *out, int max)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = fill_table(r, out, max);
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Lock held. */
static int send_table(struct irq_routing *r)
{
	int max = r->nr_defaults + IRQ_ROUTING_MAX_MSI, n, err = 0;
	struct kvm_irq_routing *table;

	if (r->vm_fd < 0)
		return 0;
	table = calloc(1, sizeof(*table) + (size_t)max * sizeof(table->entries[0]));
	if (!table)
		return -ENOMEM;
	n = fill_table(r, table->entries, max);
	table->nr = (uint32_t)n;
	if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, table) < 0)
		err = -errno;
	free(table);
	return err;
}

static int assign_irqfd(struct irq_routing *r, struct irq_msi_route *m, bool assign)
{
	struct kvm_irqfd irqfd = {
	    .fd = (uint32_t)m->fd,
	    .gsi = m->entry.gsi,
	    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (r->vm_fd < 0)
		return 0;
	return ioctl(r->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

static int msi_add(void *ctx, int fd)
{
	struct irq_routing *r = ctx;
	int id = -ENOSPC;

	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < IRQ_ROUTING_MAX_MSI; i++) {
		if (r->msi[i].used)
			continue;
		r->msi[i] = (struct irq_msi_route){.used = true, .fd = fd};
		r->msi[i].entry.gsi = r->first_msi_gsi + (uint32_t)i;
		id = i;
		break;
	}
	pthread_mutex_unlock(&r->lock);
	if (id < 0)
		log_error("irq routing: all %d MSI routes are taken", IRQ_ROUTING_MAX_MSI);
	return id;
}

static int msi_set(void *ctx, int id, uint64_t addr, uint32_t data, uint32_t requester_id)
{
	struct irq_routing *r = ctx;
	struct irq_msi_route *m;
	struct kvm_irq_routing_entry old;
	bool was_set;
	int err;

	if (id < 0 || id >= IRQ_ROUTING_MAX_MSI)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	m = &r->msi[id];
	if (!m->used) {
		pthread_mutex_unlock(&r->lock);
		return -EINVAL;
	}
	old = m->entry;
	was_set = m->set;
	err = arch_msi_route(&m->entry, addr, data, requester_id);
	if (err) {
		m->entry = old;
		goto out;
	}
	if (was_set && memcmp(&old, &m->entry, sizeof(old)) == 0)
		goto out; /* nothing changed: no need to bother KVM */
	m->set = true;
	err = send_table(r);
	if (err) {
		log_error("irq routing: KVM_SET_GSI_ROUTING for GSI %u: %s", m->entry.gsi,
			  strerror(-err));
		m->entry = old;
		m->set = was_set;
		goto out;
	}
	if (!m->irqfd && !m->detached) {
		err = assign_irqfd(r, m, true);
		if (err)
			log_error("irq routing: KVM_IRQFD on GSI %u: %s", m->entry.gsi,
				  strerror(-err));
		else
			m->irqfd = true;
	}
out:
	pthread_mutex_unlock(&r->lock);
	return err;
}

static void msi_remove(void *ctx, int id)
{
	struct irq_routing *r = ctx;
	struct irq_msi_route *m;

	if (id < 0 || id >= IRQ_ROUTING_MAX_MSI)
		return;
	pthread_mutex_lock(&r->lock);
	m = &r->msi[id];
	if (m->used && m->irqfd) {
		int err = assign_irqfd(r, m, false);

		if (err)
			log_warn("irq routing: KVM_IRQFD deassign on GSI %u: %s", m->entry.gsi,
				 strerror(-err));
	}
	*m = (struct irq_msi_route){0};
	pthread_mutex_unlock(&r->lock);
}

/* KVM's deassign unhooks the irqfd from the eventfd's wait queue before it returns, and its
 * assign injects at once when the counter is not zero: a signal is delivered while attached,
 * kept while detached, never lost between the two. */
static int msi_detach(void *ctx, int id, bool detach)
{
	struct irq_routing *r = ctx;
	struct irq_msi_route *m;
	int err = 0;

	if (id < 0 || id >= IRQ_ROUTING_MAX_MSI)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	m = &r->msi[id];
	if (!m->used) {
		err = -EINVAL;
		goto out;
	}
	m->detached = detach;
	if (m->irqfd == !detach || (!detach && !m->set))
		goto out; /* as asked already, or attached by its first set */
	err = assign_irqfd(r, m, !detach);
	if (err)
		log_error("irq routing: KVM_IRQFD %s on GSI %u: %s", detach ? "deassign" : "assign",
			  m->entry.gsi, strerror(-err));
	else
		m->irqfd = !detach;
out:
	pthread_mutex_unlock(&r->lock);
	return err;
}

static const struct msi_routes_ops msi_ops = {
    .add = msi_add,
    .set = msi_set,
    .remove = msi_remove,
    .detach = msi_detach,
};

int irq_routing_init(struct irq_routing *r, int vm_fd)
{
	int n;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->vm_fd = vm_fd;
	n = arch_irq_routing_defaults(r->defaults, IRQ_ROUTING_MAX_DEFAULTS, &r->first_msi_gsi);
	if (n < 0) {
		log_error("irq routing: %s",
			  n == -ENODEV ? "no MSI routing on this architecture yet" : strerror(-n));
		return n;
	}
	r->nr_defaults = n;
	r->iface = (struct msi_routes){.ops = &msi_ops, .ctx = r};
	r->ready = true;
	return 0;
}

void irq_routing_destroy(struct irq_routing *r)
{
	if (!r->ready)
		return;
	for (int i = 0; i < IRQ_ROUTING_MAX_MSI; i++)
		if (r->msi[i].used)
			msi_remove(r, i);
	r->ready = false;
	pthread_mutex_destroy(&r->lock);
}

const struct msi_routes *irq_routing_msi(struct irq_routing *r)
{
	return r->ready ? &r->iface : NULL;
}
