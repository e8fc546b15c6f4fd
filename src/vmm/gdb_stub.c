#include "vmm/gdb_stub.h"
#include "arch/gdb.h"
#include "base/log.h"
#include "base/thread.h"
#include "gdb/rsp.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SW_BP      64
#define MAX_BP_INSN    4
#define SEND_TIMEOUT_S 5

struct sw_bp {
	uint64_t addr, gpa;
	uint8_t saved[MAX_BP_INSN];
	size_t len;
};

struct vcpu_stop {
	bool pending;
	enum arch_gdb_stop_kind kind;
	int hw_slot;
	uint64_t addr;
};

struct gdb_stub {
	struct vm *vm;
	pthread_t thread;
	int listen_fd, client_fd, wake_fd;

	/* Shared with the vCPU threads (debug exits) and gdb_stub_stop: under `lock`. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vcpu_stop *stops;
	bool stopping;
	int listen_result; /* 1 until the thread listens (0) or failed (-errno) */
	int exit_status;

	/* The stub's thread only. */
	bool running;	  /* the vCPUs were resumed */
	bool noack;
	int g_vcpu;	  /* the vCPU 'g', 'm', 'Z0' ... act on */
	char last_stop[64];
	struct arch_gdb_debug debug;
	struct sw_bp sw[MAX_SW_BP];
	int nr_sw;
	struct rsp_reader reader;
	uint8_t scratch[RSP_MAX_PACKET];
	uint8_t regs[RSP_MAX_PACKET / 2]; /* p and P: the whole block around one register */
	char reply[RSP_MAX_PACKET + 1];
	char framed[2 * RSP_MAX_PACKET + 8];
	int framed_len;
};

/* ---- Talking to the client ---- */

static void send_raw(struct gdb_stub *s, const void *buf, size_t len)
{
	const char *p = buf;

	while (len && s->client_fd >= 0) {
		ssize_t n = send(s->client_fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Gone or not reading for SEND_TIMEOUT_S: the reader sees the end next. */
			shutdown(s->client_fd, SHUT_RDWR);
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

static void send_packet(struct gdb_stub *s, const char *data, size_t len)
{
	int n = rsp_frame(data, len, s->framed, sizeof(s->framed));

	if (n < 0)
		n = rsp_frame("E01", 3, s->framed, sizeof(s->framed));
	s->framed_len = n;
	send_raw(s, s->framed, (size_t)n);
}

static void reply(struct gdb_stub *s, const char *text)
{
	send_packet(s, text, strlen(text));
}

static void reply_error(struct gdb_stub *s, int err)
{
	char e[8];

	snprintf(e, sizeof(e), "E%02x", (unsigned)(err < 0 ? -err : err) & 0xff);
	reply(s, e);
}

/* ---- The vCPUs ---- */

static void debug_exit(void *ctx, struct vcpu *vcpu)
{
	struct gdb_stub *s = ctx;
	struct vcpu_stop st = { .pending = true, .hw_slot = -1 };

	st.kind = arch_gdb_debug_exit(vcpu, &st.hw_slot, &st.addr);
	log_debug("gdb: vCPU %d: debug exit (%s)", vcpu->id,
		  st.kind == ARCH_GDB_STOP_SW_BP    ? "software breakpoint"
		  : st.kind == ARCH_GDB_STOP_HW_BP  ? "hardware breakpoint"
		  : st.kind == ARCH_GDB_STOP_WATCH  ? "debug register"
		  : st.kind == ARCH_GDB_STOP_STEP   ? "single step"
						    : "other");
	pthread_mutex_lock(&s->lock);
	s->stops[vcpu->id] = st;
	pthread_mutex_unlock(&s->lock);
	if (eventfd_write(s->wake_fd, 1) < 0)
		log_warn("gdb: cannot wake the stub: %s", strerror(errno));
}

static int pause_all(struct gdb_stub *s)
{
	int err = vcpus_pause(&s->vm->gate, s->vm->vcpus, s->vm->nr_vcpus);

	s->running = false;
	return err;
}

/* The first vCPU with a stop the client has not heard of; -1 when none. Takes it. */
static int take_stop(struct gdb_stub *s, struct vcpu_stop *out)
{
	int found = -1;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->vm->nr_vcpus && found < 0; i++) {
		if (s->stops[i].pending) {
			*out = s->stops[i];
			s->stops[i].pending = false;
			found = i;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

/* T05 for a debug stop, T02 for an interrupt; thread: names the vCPU. */
static void report_stop(struct gdb_stub *s, int vcpu, const struct vcpu_stop *st)
{
	char *r = s->last_stop;
	size_t cap = sizeof(s->last_stop);

	s->g_vcpu = vcpu;
	if (!st) {
		snprintf(r, cap, "T02thread:%x;", vcpu + 1);
	} else if (st->kind == ARCH_GDB_STOP_WATCH && !(st->hw_slot >= 0 &&
							st->hw_slot < s->debug.nr_hw &&
							s->debug.hw[st->hw_slot].type == RSP_BP_HW)) {
		uint64_t addr = st->addr;
		const char *what = "awatch";

		if (st->hw_slot >= 0 && st->hw_slot < s->debug.nr_hw) {
			addr = s->debug.hw[st->hw_slot].addr;
			what = s->debug.hw[st->hw_slot].type == RSP_WP_WRITE	? "watch"
			       : s->debug.hw[st->hw_slot].type == RSP_WP_READ ? "rwatch"
									: "awatch";
		}
		snprintf(r, cap, "T05thread:%x;%s:%llx;", vcpu + 1, what, (unsigned long long)addr);
	} else {
		snprintf(r, cap, "T05thread:%x;", vcpu + 1);
	}
	reply(s, r);
}

static int apply_debug(struct gdb_stub *s, int step_vcpu)
{
	for (int i = 0; i < s->vm->nr_vcpus; i++) {
		int err;

		s->debug.single_step = i == step_vcpu;
		log_debug("gdb: vCPU %d resumes with guest debugging %s: %d software and %d hardware "
			  "breakpoints/watchpoints%s",
			  i, s->debug.enable ? "on" : "off", s->nr_sw, s->debug.nr_hw,
			  s->debug.single_step ? ", single step" : "");
		err = arch_gdb_set_debug(&s->vm->vcpus[i], &s->debug);
		if (err) {
			log_warn("gdb: KVM_SET_GUEST_DEBUG on vCPU %d: %s", i, strerror(-err));
			return err;
		}
	}
	s->debug.single_step = false;
	return 0;
}

/* Continue (step_vcpu -1) or step one vCPU with the others running. A stop the client has not
 * heard of yet (two vCPUs hit breakpoints at once) is reported at once instead. */
static void resume(struct gdb_stub *s, int step_vcpu)
{
	struct vcpu_stop st;
	int v = take_stop(s, &st);
	int err;

	if (v >= 0) {
		report_stop(s, v, &st);
		return;
	}
	err = apply_debug(s, step_vcpu);
	if (err) {
		reply_error(s, err);
		return;
	}
	s->running = true;
	vcpus_resume(&s->vm->gate);
}

/* ---- Memory at guest-virtual addresses ---- */

/* Copies between buf and guest-virtual [addr, addr + len), page by page. Returns the bytes
 * done (a read may stop short at an unmapped page), or -EFAULT when not even the first one. */
static long access_virt(struct gdb_stub *s, uint64_t addr, uint8_t *buf, size_t len, bool write)
{
	struct vcpu *vcpu = &s->vm->vcpus[s->g_vcpu];
	size_t done = 0;

	while (done < len) {
		uint64_t gpa, contiguous, chunk;
		int err = arch_gdb_translate(vcpu, &s->vm->mem, addr + done, &gpa, &contiguous);

		if (!err) {
			chunk = len - done < contiguous ? len - done : contiguous;
			err = write ? guest_mem_write(&s->vm->mem, gpa, buf + done, chunk)
				    : guest_mem_read(&s->vm->mem, gpa, buf + done, chunk);
		}
		if (err)
			return done ? (long)done : -EFAULT;
		done += chunk;
	}
	return (long)done;
}

static void cmd_read_mem(struct gdb_stub *s, const struct rsp_cmd *c)
{
	long n;

	if (c->len == 0) {
		reply(s, "");
		return;
	}
	n = access_virt(s, c->addr, s->scratch, c->len, false);
	if (n < 0) {
		reply_error(s, EFAULT);
		return;
	}
	rsp_hex_encode(s->scratch, (size_t)n, s->reply);
	send_packet(s, s->reply, (size_t)n * 2);
}

static void cmd_write_mem(struct gdb_stub *s, const struct rsp_cmd *c)
{
	/* c->data is in s->scratch: a write either completes or fails. */
	if (c->len && access_virt(s, c->addr, (uint8_t *)c->data, c->len, true) != (long)c->len)
		reply_error(s, EFAULT);
	else
		reply(s, "OK");
}

/* ---- Breakpoints ---- */

static int find_sw(struct gdb_stub *s, uint64_t addr)
{
	for (int i = 0; i < s->nr_sw; i++)
		if (s->sw[i].addr == addr)
			return i;
	return -1;
}

/* A breakpoint instruction in or out. The vCPU fetches it: on arm64 the instruction cache is not
 * coherent with the data writes made here, so those bytes are cleaned to the point of
 * unification and the instruction cache is invalidated for them (IC IVAU acts on the physical
 * line, whichever mapping names it). Nothing to do on x86. */
static int write_code(struct gdb_stub *s, uint64_t gpa, const void *insn, size_t len)
{
	int err = guest_mem_write(&s->vm->mem, gpa, insn, len);
	char *p = guest_mem_ptr(&s->vm->mem, gpa, len);

	if (!err && p)
		__builtin___clear_cache(p, p + len);
	return err;
}

static int insert_sw(struct gdb_stub *s, uint64_t addr, uint64_t kind)
{
	struct vcpu *vcpu = &s->vm->vcpus[s->g_vcpu];
	const uint8_t *insn;
	struct sw_bp *bp;
	uint64_t contiguous;
	size_t len;

	arch_gdb_sw_bp(&insn, &len);
	if (kind != len)
		return -EINVAL;
	if (find_sw(s, addr) >= 0)
		return 0;
	if (s->nr_sw == MAX_SW_BP)
		return -ENOSPC;
	bp = &s->sw[s->nr_sw];
	bp->addr = addr;
	bp->len = len;
	/* Kept by its physical address: removing it must restore that byte even if the guest's
	 * page tables changed meanwhile. */
	if (arch_gdb_translate(vcpu, &s->vm->mem, addr, &bp->gpa, &contiguous) ||
	    contiguous < len || guest_mem_read(&s->vm->mem, bp->gpa, bp->saved, len) ||
	    write_code(s, bp->gpa, insn, len))
		return -EFAULT;
	log_debug("gdb: software breakpoint at 0x%llx (guest-physical 0x%llx)",
		  (unsigned long long)addr, (unsigned long long)bp->gpa);
	s->nr_sw++;
	return 0;
}

static int remove_sw(struct gdb_stub *s, uint64_t addr)
{
	int i = find_sw(s, addr);

	if (i < 0)
		return -ENOENT;
	write_code(s, s->sw[i].gpa, s->sw[i].saved, s->sw[i].len);
	s->sw[i] = s->sw[--s->nr_sw];
	return 0;
}

static int insert_hw(struct gdb_stub *s, const struct rsp_cmd *c)
{
	struct arch_gdb_hw hw = { .type = c->bp_type, .addr = c->addr, .len = c->len };
	int err;

	for (int i = 0; i < s->debug.nr_hw; i++)
		if (s->debug.hw[i].type == hw.type && s->debug.hw[i].addr == hw.addr &&
		    s->debug.hw[i].len == hw.len)
			return 0;
	if (s->debug.nr_hw == ARCH_GDB_MAX_HW)
		return -ENOSPC;
	err = arch_gdb_check_hw(&s->debug, &hw);
	if (err)
		return err;
	s->debug.hw[s->debug.nr_hw++] = hw;
	return 0;
}

static int remove_hw(struct gdb_stub *s, const struct rsp_cmd *c)
{
	for (int i = 0; i < s->debug.nr_hw; i++) {
		struct arch_gdb_hw *hw = &s->debug.hw[i];

		if (hw->type == c->bp_type && hw->addr == c->addr && hw->len == c->len) {
			/* Kept in order: x86 reports a watchpoint by its slot. */
			memmove(hw, hw + 1, (size_t)(s->debug.nr_hw - i - 1) * sizeof(*hw));
			s->debug.nr_hw--;
			return 0;
		}
	}
	return -ENOENT;
}

static void cmd_breakpoint(struct gdb_stub *s, const struct rsp_cmd *c)
{
	bool insert = c->kind == RSP_CMD_INSERT_BP;
	int err;

	if (c->bp_type == RSP_BP_SW)
		err = insert ? insert_sw(s, c->addr, c->len) : remove_sw(s, c->addr);
	else
		err = insert ? insert_hw(s, c) : remove_hw(s, c);
	if (err == -EOPNOTSUPP)
		reply(s, ""); /* gdb then knows this kind is not offered */
	else if (err)
		reply_error(s, err);
	else
		reply(s, "OK");
}

/* Every breakpoint out, single-step and debug registers off: the guest runs as if never
 * debugged (its own int3 / brk, e.g. kprobes, go to the guest again). The next debugger starts
 * from an empty set that is enabled again: the vCPUs get it when it resumes them. */
static void clear_debug(struct gdb_stub *s)
{
	while (s->nr_sw)
		remove_sw(s, s->sw[s->nr_sw - 1].addr);
	memset(&s->debug, 0, sizeof(s->debug));
	for (int i = 0; i < s->vm->nr_vcpus; i++) {
		int err = arch_gdb_set_debug(&s->vm->vcpus[i], &s->debug);

		if (err)
			log_warn("gdb: KVM_SET_GUEST_DEBUG (off) on vCPU %d: %s", i, strerror(-err));
	}
	s->debug.enable = true;
}

static void detach(struct gdb_stub *s)
{
	struct vcpu_stop st;

	clear_debug(s);
	while (take_stop(s, &st) >= 0)
		;
	if (s->client_fd >= 0) {
		close(s->client_fd);
		s->client_fd = -1;
	}
	if (!s->running) {
		s->running = true;
		vcpus_resume(&s->vm->gate);
	}
	log_info("gdb: the debugger detached, the guest runs on");
}

/* ---- Registers ---- */

static void cmd_read_regs(struct gdb_stub *s)
{
	size_t size = arch_gdb_regs_size();
	int err = arch_gdb_read_regs(&s->vm->vcpus[s->g_vcpu], s->scratch);

	if (err) {
		reply_error(s, err);
		return;
	}
	rsp_hex_encode(s->scratch, size, s->reply);
	send_packet(s, s->reply, size * 2);
}

static void cmd_write_regs(struct gdb_stub *s, const struct rsp_cmd *c)
{
	int err;

	if (c->data_len != arch_gdb_regs_size()) {
		reply_error(s, EINVAL);
		return;
	}
	/* c->data is s->scratch */
	err = arch_gdb_write_regs(&s->vm->vcpus[s->g_vcpu], c->data);
	if (err)
		reply_error(s, err);
	else
		reply(s, "OK");
}

static void cmd_reg(struct gdb_stub *s, const struct rsp_cmd *c)
{
	uint8_t *block = s->regs;
	struct vcpu *vcpu = &s->vm->vcpus[s->g_vcpu];
	size_t off, size;
	int err;

	if (arch_gdb_reg_span(c->addr, &off, &size)) {
		reply_error(s, EINVAL);
		return;
	}
	err = arch_gdb_read_regs(vcpu, block);
	if (!err && c->kind == RSP_CMD_WRITE_REG) {
		if (c->data_len != size) {
			reply_error(s, EINVAL);
			return;
		}
		memcpy(block + off, c->data, size);
		err = arch_gdb_write_regs(vcpu, block);
		if (!err) {
			reply(s, "OK");
			return;
		}
	}
	if (err) {
		reply_error(s, err);
		return;
	}
	rsp_hex_encode(block + off, size, s->reply);
	send_packet(s, s->reply, size * 2);
}

/* ---- Commands ---- */

/* A thread id as a vCPU index: -1 for 0 (any) and -1 (all), -2 when no such vCPU. */
static int thread_vcpu(struct gdb_stub *s, int64_t tid)
{
	if (tid <= 0)
		return -1;
	return tid <= s->vm->nr_vcpus ? (int)tid - 1 : -2;
}

static void cmd_xfer(struct gdb_stub *s, const struct rsp_cmd *c)
{
	const char *xml = arch_gdb_target_xml();
	size_t total = strlen(xml), n = c->len;

	if (strcmp(c->annex, "target.xml") != 0) {
		reply_error(s, ENOENT);
		return;
	}
	if (c->addr >= total) {
		reply(s, "l");
		return;
	}
	if (n > sizeof(s->reply) - 2)
		n = sizeof(s->reply) - 2;
	if (n > total - c->addr)
		n = total - c->addr;
	s->reply[0] = c->addr + n < total ? 'm' : 'l';
	memcpy(s->reply + 1, xml + c->addr, n);
	send_packet(s, s->reply, n + 1);
}

static void cmd_vcont(struct gdb_stub *s, const struct rsp_cmd *c)
{
	int step = -1;

	/* Every vCPU runs (skiff resumes all of them); one of them may step. */
	for (int i = 0; i < c->nr_vcont; i++) {
		if (c->vcont[i].action != 's')
			continue;
		step = c->vcont[i].thread < 0 ? s->g_vcpu : thread_vcpu(s, c->vcont[i].thread);
		if (step < 0) {
			reply_error(s, EINVAL);
			return;
		}
		break;
	}
	resume(s, step);
}

/* Returns false when the client is to be dropped (detach, kill). */
static bool handle_packet(struct gdb_stub *s, const uint8_t *pkt, size_t len)
{
	struct rsp_cmd c;
	int v;

	if (rsp_parse_command(pkt, len, &c, s->scratch, sizeof(s->scratch))) {
		reply_error(s, EINVAL);
		return true;
	}
	/* While the guest runs only an interrupt (0x03) is expected; anything else is answered
	 * as an error rather than acted on with the vCPUs moving. */
	if (s->running && c.kind != RSP_CMD_DETACH && c.kind != RSP_CMD_KILL &&
	    c.kind != RSP_CMD_UNKNOWN) {
		reply_error(s, EBUSY);
		return true;
	}
	switch (c.kind) {
	case RSP_CMD_UNKNOWN:
		reply(s, "");
		break;
	case RSP_CMD_HALT_REASON:
		reply(s, s->last_stop);
		break;
	case RSP_CMD_QSUPPORTED: {
		char r[128];

		snprintf(r, sizeof(r),
			 "PacketSize=%x;qXfer:features:read+;vContSupported+;QStartNoAckMode+",
			 RSP_MAX_PACKET);
		reply(s, r);
		break;
	}
	case RSP_CMD_START_NOACK:
		reply(s, "OK");
		s->noack = true;
		break;
	case RSP_CMD_QXFER_FEATURES:
		cmd_xfer(s, &c);
		break;
	case RSP_CMD_QATTACHED:
		reply(s, "1");
		break;
	case RSP_CMD_QC: {
		char r[24];

		snprintf(r, sizeof(r), "QC%x", s->g_vcpu + 1);
		reply(s, r);
		break;
	}
	case RSP_CMD_QFTHREADINFO: {
		size_t n = 0;

		s->reply[n++] = 'm';
		for (int i = 0; i < s->vm->nr_vcpus; i++)
			n += (size_t)snprintf(s->reply + n, sizeof(s->reply) - n, "%s%x",
					      i ? "," : "", i + 1);
		send_packet(s, s->reply, n);
		break;
	}
	case RSP_CMD_QSTHREADINFO:
		reply(s, "l");
		break;
	case RSP_CMD_QTHREAD_EXTRA: {
		char name[32];

		v = thread_vcpu(s, c.thread);
		if (v < 0) {
			reply_error(s, EINVAL);
			break;
		}
		snprintf(name, sizeof(name), "vCPU %d", v);
		rsp_hex_encode(name, strlen(name), s->reply);
		send_packet(s, s->reply, strlen(name) * 2);
		break;
	}
	case RSP_CMD_SET_THREAD:
		v = thread_vcpu(s, c.thread);
		if (v == -2) {
			reply_error(s, EINVAL);
			break;
		}
		if (v >= 0 && c.op == 'g')
			s->g_vcpu = v;
		reply(s, "OK");
		break;
	case RSP_CMD_THREAD_ALIVE:
		if (thread_vcpu(s, c.thread) >= 0)
			reply(s, "OK");
		else
			reply_error(s, EINVAL);
		break;
	case RSP_CMD_READ_REGS:
		cmd_read_regs(s);
		break;
	case RSP_CMD_WRITE_REGS:
		cmd_write_regs(s, &c);
		break;
	case RSP_CMD_READ_REG:
	case RSP_CMD_WRITE_REG:
		cmd_reg(s, &c);
		break;
	case RSP_CMD_READ_MEM:
		cmd_read_mem(s, &c);
		break;
	case RSP_CMD_WRITE_MEM:
		cmd_write_mem(s, &c);
		break;
	case RSP_CMD_INSERT_BP:
	case RSP_CMD_REMOVE_BP:
		cmd_breakpoint(s, &c);
		break;
	case RSP_CMD_VCONT_QUERY:
		reply(s, "vCont;c;C;s;S");
		break;
	case RSP_CMD_CONTINUE:
	case RSP_CMD_STEP:
		if (c.has_addr) /* resuming elsewhere: set the pc with P instead */
			reply_error(s, EINVAL);
		else
			resume(s, c.kind == RSP_CMD_STEP ? s->g_vcpu : -1);
		break;
	case RSP_CMD_VCONT:
		cmd_vcont(s, &c);
		break;
	case RSP_CMD_DETACH:
		reply(s, "OK");
		detach(s);
		return false;
	case RSP_CMD_KILL:
		log_info("gdb: the debugger killed the VM");
		vm_request_stop(s->vm, VM_STOP_SIGNAL, "killed by the debugger");
		return false;
	}
	return true;
}

/* ---- The thread ---- */

static void feed(struct gdb_stub *s, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n && s->client_fd >= 0; i++) {
		switch (rsp_reader_feed(&s->reader, buf[i])) {
		case RSP_EV_PACKET:
			if (!s->noack)
				send_raw(s, "+", 1);
			if (!handle_packet(s, s->reader.buf, s->reader.len)) {
				if (s->client_fd >= 0) {
					close(s->client_fd);
					s->client_fd = -1;
				}
				return;
			}
			break;
		case RSP_EV_BAD_CHECKSUM:
			if (!s->noack)
				send_raw(s, "-", 1);
			break;
		case RSP_EV_TOO_LONG:
			if (!s->noack)
				send_raw(s, "+", 1);
			reply_error(s, E2BIG);
			break;
		case RSP_EV_INTERRUPT:
			if (s->running) {
				struct vcpu_stop st;
				int v;

				if (pause_all(s))
					break;
				/* A breakpoint hit meanwhile wins over the interrupt. */
				v = take_stop(s, &st);
				if (v >= 0)
					report_stop(s, v, &st);
				else
					report_stop(s, s->g_vcpu, NULL);
			}
			break;
		case RSP_EV_NAK:
			if (!s->noack && s->framed_len > 0)
				send_raw(s, s->framed, (size_t)s->framed_len);
			break;
		case RSP_EV_ACK:
		case RSP_EV_NONE:
			break;
		}
	}
}

static void accept_client(struct gdb_stub *s)
{
	struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };
	int one = 1;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (s->client_fd >= 0) { /* one debugger at a time */
		close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!s->vm->cfg->gdb.is_unix)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->client_fd = fd;
	s->noack = false;
	s->framed_len = 0;
	rsp_reader_init(&s->reader);
	/* A debugger that attaches finds the guest stopped. */
	if (s->running && pause_all(s) == 0) {
		struct vcpu_stop st;
		int v = take_stop(s, &st);

		if (v >= 0)
			s->g_vcpu = v;
		snprintf(s->last_stop, sizeof(s->last_stop), "T02thread:%x;", s->g_vcpu + 1);
	}
	log_info("gdb: a debugger connected");
}

static void on_wake(struct gdb_stub *s)
{
	struct vcpu_stop st;
	uint64_t v;
	int i;

	if (read(s->wake_fd, &v, sizeof(v)) < 0 || !s->running)
		return; /* stopped already: the stop is reported at the next resume */
	i = take_stop(s, &st);
	if (i < 0)
		return;
	if (s->client_fd < 0) {
		/* A breakpoint hit as the debugger left: nobody to tell, the vCPU goes on. */
		vcpus_resume(&s->vm->gate);
		return;
	}
	if (pause_all(s))
		return;
	report_stop(s, i, &st);
}

static int listen_socket(struct gdb_stub *s)
{
	const struct gdb_config *g = &s->vm->cfg->gdb;
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	memset(&ss, 0, sizeof(ss));
	if (g->is_unix) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		struct stat st;

		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, g->path, strlen(g->path) + 1);
		sl = sizeof(*un);
		/* A socket left by an earlier run is replaced; any other file is not touched. */
		if (lstat(g->path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(g->path);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		if (inet_pton(AF_INET, g->host, &in->sin_addr) == 1) {
			in->sin_family = AF_INET;
			in->sin_port = htons(g->port);
			sl = sizeof(*in);
		} else {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(g->port);
			inet_pton(AF_INET6, g->host, &in6->sin6_addr);
			sl = sizeof(*in6);
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!g->is_unix)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	s->listen_fd = fd;
	return 0;
}

static void *stub_thread(void *arg)
{
	struct gdb_stub *s = arg;
	uint8_t buf[4096];
	int err = listen_socket(s);

	pthread_mutex_lock(&s->lock);
	s->listen_result = err;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (err)
		return NULL;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = s->wake_fd, .events = POLLIN },
			{ .fd = s->client_fd >= 0 ? s->client_fd : s->listen_fd, .events = POLLIN },
		};
		bool stopping;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&s->lock);
		stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stopping)
			break;
		if (p[0].revents & POLLIN)
			on_wake(s);
		if (!(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (s->client_fd < 0) {
			accept_client(s);
			continue;
		}
		ssize_t n = recv(s->client_fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_info("gdb: the debugger went away");
			detach(s);
			continue;
		}
		feed(s, buf, (size_t)n);
		if (s->client_fd < 0 && !s->running && !vcpu_gate_stopping(&s->vm->gate))
			detach(s); /* a D or k closed it: D already resumed */
	}
	if (s->client_fd >= 0) {
		char w[8];

		snprintf(w, sizeof(w), "W%02x", (unsigned)s->exit_status & 0xff);
		reply(s, w);
		close(s->client_fd);
		s->client_fd = -1;
	}
	return NULL;
}

static void where(const struct gdb_config *g, char *buf, size_t len)
{
	if (g->is_unix)
		snprintf(buf, len, "unix:%s", g->path);
	else if (strchr(g->host, ':'))
		snprintf(buf, len, "tcp:[%s]:%u", g->host, g->port);
	else
		snprintf(buf, len, "tcp:%s:%u", g->host, g->port);
}

int gdb_stub_start(struct vm *vm, struct gdb_stub **out)
{
	struct gdb_stub *s = calloc(1, sizeof(*s));
	char at[160];
	int err;

	where(&vm->cfg->gdb, at, sizeof(at));
	if (!s || !(s->stops = calloc((size_t)vm->nr_vcpus, sizeof(*s->stops)))) {
		free(s);
		log_error("gdb: out of memory");
		return -ENOMEM;
	}
	s->vm = vm;
	s->listen_fd = s->client_fd = -1;
	s->listen_result = 1;
	s->debug.enable = true;
	snprintf(s->last_stop, sizeof(s->last_stop), "T05thread:1;");
	rsp_reader_init(&s->reader);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0) {
		err = -errno;
		log_error("gdb: eventfd: %s", strerror(-err));
		goto fail;
	}
	for (int i = 0; i < vm->nr_vcpus; i++) {
		vm->vcpus[i].debug_exit = debug_exit;
		vm->vcpus[i].debug_ctx = s;
	}
	/* No vCPU runs yet: they all park before their first instruction. */
	vcpus_pause(&vm->gate, vm->vcpus, vm->nr_vcpus);
	err = thread_start(THREAD_GDB, "skiff-gdb", stub_thread, s, &s->thread);
	if (err) {
		log_error("gdb: cannot start the stub's thread: %s", strerror(-err));
		goto fail;
	}
	pthread_mutex_lock(&s->lock);
	while (s->listen_result == 1)
		pthread_cond_wait(&s->cond, &s->lock);
	err = s->listen_result;
	pthread_mutex_unlock(&s->lock);
	if (err) {
		pthread_join(s->thread, NULL);
		log_error("gdb: cannot listen on %s: %s", at, strerror(-err));
		goto fail;
	}
	log_info("gdb: waiting for a debugger on %s (gdb: target remote %s)", at,
		 vm->cfg->gdb.is_unix ? vm->cfg->gdb.path : at + 4);
	*out = s;
	return 0;
fail:
	for (int i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].debug_exit = NULL;
	vcpus_resume(&vm->gate);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->stops);
	free(s);
	return err;
}

void gdb_stub_stop(struct gdb_stub *s, int exit_status)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	s->exit_status = exit_status;
	pthread_mutex_unlock(&s->lock);
	if (eventfd_write(s->wake_fd, 1) < 0)
		log_warn("gdb: cannot wake the stub: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->vm->cfg->gdb.is_unix)
		unlink(s->vm->cfg->gdb.path);
	close(s->wake_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->stops);
	free(s);
}
