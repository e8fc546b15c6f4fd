#include "io.h"

#define COM1	 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_DATA 0x01
#define LSR_THRE 0x20

#define ACPI_SLEEP_CTL 0x600
#define ACPI_S5_SLEEP  ((5 << 2) | 0x20) /* SLP_TYP 5, SLP_EN */

uint64_t deadline_ms(uint32_t ms)
{
	return rdtsc() + (uint64_t)ms * 4000000; /* 4 GHz: at most 4x too long on slower TSCs */
}

bool expired(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) > 0;
}

static void put_char(char c)
{
	while (!(inb(COM1_LSR) & LSR_THRE))
		;
	outb(COM1, (uint8_t)c);
}

void put_str(const char *s)
{
	while (*s)
		put_char(*s++);
}

void put_hex(uint64_t v)
{
	char buf[19];
	int i = 18;

	buf[i] = '\0';
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	put_str(&buf[i]);
}

void put_dec(uint64_t v)
{
	char buf[21];
	int i = 20;

	buf[i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put_str(&buf[i]);
}

bool get_line(char *buf, size_t size)
{
	size_t n = 0;

	for (;;) {
		char c;

		while (!(inb(COM1_LSR) & LSR_DATA))
			;
		c = (char)inb(COM1);
		if (c == '\n' || c == '\r') {
			if (n == 0)
				continue;
			buf[n] = '\0';
			return true;
		}
		if (n + 1 >= size)
			return false;
		buf[n++] = c;
	}
}

void power_off(void)
{
	for (;;)
		outb(ACPI_SLEEP_CTL, ACPI_S5_SLEEP);
}

void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}
