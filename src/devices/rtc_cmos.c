#include "devices/rtc_cmos.h"
#include "base/device.h"
#include "base/state.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PORT_INDEX 0
#define PORT_DATA  1
#define NR_PORTS   2

#define CMOS_SIZE  128
#define INDEX_MASK 0x7f /* bit 7 masks NMIs on a PC: nothing to do with the clock */

/* Register numbers (MC146818 datasheet, plus the PC's century byte). */
#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS   0x04
#define REG_WEEKDAY 0x06
#define REG_DAY	    0x07
#define REG_MONTH   0x08
#define REG_YEAR    0x09
#define REG_A	    0x0a
#define REG_B	    0x0b
#define REG_C	    0x0c
#define REG_D	    0x0d
#define REG_CENTURY 0x32

#define A_UIP	      0x80
#define A_DEFAULT     0x26 /* 32.768 kHz time base, 1024 Hz rate */
#define B_24H	      0x02
#define B_BINARY      0x04
#define B_DEFAULT     B_24H
#define D_VALID	      0x80 /* RAM and time valid: the "battery" is fine */
#define HOURS_PM      0x80
#define INDEX_READ_AS 0xff /* the index register is write-only */

struct rtc_cmos {
	struct vm_device dev; /* its entry in the VM's device list */
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t ram[CMOS_SIZE]; /* the time registers in here are unused */
	time_t (*now)(void);
};

static time_t host_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts))
		return 0;
	return ts.tv_sec;
}

static uint8_t encode(const struct rtc_cmos *rtc, int value)
{
	if (rtc->ram[REG_B] & B_BINARY)
		return (uint8_t)value;
	return (uint8_t)(((value / 10) % 10) << 4 | (value % 10));
}

static uint8_t encode_hours(const struct rtc_cmos *rtc, int hour)
{
	int hour12 = hour % 12;

	if (rtc->ram[REG_B] & B_24H)
		return encode(rtc, hour);
	return encode(rtc, hour12 ? hour12 : 12) | (hour >= 12 ? HOURS_PM : 0);
}

static bool is_time_register(uint8_t reg)
{
	switch (reg) {
	case REG_SECONDS:
	case REG_MINUTES:
	case REG_HOURS:
	case REG_WEEKDAY:
	case REG_DAY:
	case REG_MONTH:
	case REG_YEAR:
	case REG_CENTURY:
		return true;
	default:
		return false;
	}
}

static uint8_t read_time_register(const struct rtc_cmos *rtc, uint8_t reg)
{
	time_t now = (rtc->now ? rtc->now : host_now)();
	struct tm tm;
	int year;

	if (!gmtime_r(&now, &tm))
		memset(&tm, 0, sizeof(tm));
	year = tm.tm_year + 1900;
	if (year < 0)
		year = 0;
	switch (reg) {
	case REG_SECONDS:
		return encode(rtc, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case REG_MINUTES:
		return encode(rtc, tm.tm_min);
	case REG_HOURS:
		return encode_hours(rtc, tm.tm_hour);
	case REG_WEEKDAY:
		return encode(rtc, tm.tm_wday + 1); /* 1 = Sunday */
	case REG_DAY:
		return encode(rtc, tm.tm_mday);
	case REG_MONTH:
		return encode(rtc, tm.tm_mon + 1);
	case REG_YEAR:
		return encode(rtc, year % 100);
	default: /* REG_CENTURY */
		return encode(rtc, year / 100);
	}
}

static uint8_t read_register(const struct rtc_cmos *rtc, uint8_t reg)
{
	if (is_time_register(reg))
		return read_time_register(rtc, reg);
	switch (reg) {
	case REG_A:
		return rtc->ram[REG_A] & ~A_UIP;
	case REG_C:
		return 0;
	case REG_D:
		return D_VALID;
	default:
		return rtc->ram[reg];
	}
}

static void write_register(struct rtc_cmos *rtc, uint8_t reg, uint8_t value)
{
	if (is_time_register(reg))
		return;
	switch (reg) {
	case REG_A:
		rtc->ram[REG_A] = value & ~A_UIP;
		break;
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		rtc->ram[reg] = value;
		break;
	}
}

static uint8_t port_read(struct rtc_cmos *rtc, uint64_t port)
{
	if (port == PORT_DATA)
		return read_register(rtc, rtc->index);
	return INDEX_READ_AS;
}

static void port_write(struct rtc_cmos *rtc, uint64_t port, uint8_t value)
{
	if (port == PORT_INDEX)
		rtc->index = value & INDEX_MASK;
	else
		write_register(rtc, rtc->index, value);
}

/* A wider access is the byte accesses it covers: `outw` to the index port sets the index and
 * writes the data port, as on a PC. Bytes beyond the two ports read as 0. */
static void rtc_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct rtc_cmos *rtc = opaque;
	uint8_t *bytes = data;

	memset(data, 0, len);
	pthread_mutex_lock(&rtc->lock);
	for (uint32_t i = 0; i < len && offset < NR_PORTS && i < NR_PORTS - offset; i++)
		bytes[i] = port_read(rtc, offset + i);
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct rtc_cmos *rtc = opaque;
	const uint8_t *bytes = data;

	pthread_mutex_lock(&rtc->lock);
	for (uint32_t i = 0; i < len && offset < NR_PORTS && i < NR_PORTS - offset; i++)
		port_write(rtc, offset + i, bytes[i]);
	pthread_mutex_unlock(&rtc->lock);
}

const struct bus_device_ops rtc_cmos_ops = {.read = rtc_read, .write = rtc_write};

static void rtc_cmos_device_destroy(struct vm_device *dev)
{
	rtc_cmos_destroy((struct rtc_cmos *)dev);
}

#define RTC_CMOS_STATE_VERSION 1

/* The index register and the CMOS RAM (the clock's registers are read from the host's time,
 * so a restored guest reads the time of day it is now, as on a PC that was switched off). */
static int rtc_cmos_device_save(struct vm_device *dev, struct state_writer *w)
{
	struct rtc_cmos *rtc = (struct rtc_cmos *)dev;

	pthread_mutex_lock(&rtc->lock);
	state_begin(w, VM_DEVICE_RTC_CMOS, RTC_CMOS_STATE_VERSION);
	state_put_u8(w, rtc->index);
	state_put_bytes(w, rtc->ram, CMOS_SIZE);
	state_end(w);
	pthread_mutex_unlock(&rtc->lock);
	return state_writer_status(w);
}

static int rtc_cmos_device_restore(struct vm_device *dev, struct state_reader *r)
{
	struct rtc_cmos *rtc = (struct rtc_cmos *)dev;
	uint8_t index = 0, ram[CMOS_SIZE];
	uint16_t version;

	if (state_open(r, VM_DEVICE_RTC_CMOS, RTC_CMOS_STATE_VERSION, &version))
		return state_reader_status(r);
	state_get_u8(r, &index);
	state_get_bytes(r, ram, CMOS_SIZE);
	if (!state_reader_status(r) && index & ~INDEX_MASK)
		state_refuse(r, "rtc-cmos: index register 0x%x", index);
	if (state_close(r))
		return state_reader_status(r);
	pthread_mutex_lock(&rtc->lock);
	rtc->index = index;
	memcpy(rtc->ram, ram, CMOS_SIZE);
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

static const struct vm_device_ops rtc_cmos_device_ops = {
	.name = "rtc-cmos",
	.destroy = rtc_cmos_device_destroy,
	.save = rtc_cmos_device_save,
	.restore = rtc_cmos_device_restore,
};

struct rtc_cmos *rtc_cmos_create(void)
{
	struct rtc_cmos *rtc = calloc(1, sizeof(*rtc));

	if (!rtc)
		return NULL;
	if (pthread_mutex_init(&rtc->lock, NULL)) {
		free(rtc);
		return NULL;
	}
	rtc->ram[REG_A] = A_DEFAULT;
	rtc->ram[REG_B] = B_DEFAULT;
	vm_device_init(&rtc->dev, VM_DEVICE_RTC_CMOS, &rtc_cmos_device_ops, NULL);
	return rtc;
}

struct vm_device *rtc_cmos_device(struct rtc_cmos *rtc)
{
	return rtc ? &rtc->dev : NULL;
}

void rtc_cmos_destroy(struct rtc_cmos *rtc)
{
	if (!rtc)
		return;
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

int rtc_cmos_set_ram(struct rtc_cmos *rtc, uint8_t index, uint8_t value)
{
	if (index >= CMOS_SIZE || is_time_register(index) || index <= REG_D)
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	rtc->ram[index] = value;
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

void rtc_cmos_set_clock(struct rtc_cmos *rtc, time_t (*now)(void))
{
	pthread_mutex_lock(&rtc->lock);
	rtc->now = now;
	pthread_mutex_unlock(&rtc->lock);
}
