#include "arch/x86/fw_cfg_linux.h"
#include "base/log.h"
#include "devices/fw_cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the parts go (QEMU's choice for protocol 2.02 and later, which SeaBIOS's option ROM and
 * kernels expect from it). */
#define REAL_ADDR    0x10000u
#define CMDLINE_ADDR 0x20000u
#define PROT_ADDR    0x100000u

/* Setup header offsets (Documentation/arch/x86/boot.rst). */
#define HDR_SETUP_SECTS	    0x1f1
#define HDR_BOOT_FLAG	    0x1fe
#define HDR_MAGIC	    0x202
#define HDR_VERSION	    0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS	    0x211
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_END		    0x268

#define LOADED_HIGH    0x01
#define CAN_USE_HEAP   0x80
#define LOADER_UNKNOWN 0xff /* type_of_loader: "undefined", no version */
#define MAX_FILE       (1u << 30)

static uint32_t get_le(const uint8_t *p, int n)
{
	uint32_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le(uint8_t *p, uint32_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The whole file in a malloc'ed buffer. */
static int read_file(const char *what, const char *path, uint8_t **out, uint32_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		log_error("%s %s: %s", what, path, strerror(errno));
		goto out;
	}
	if (st.st_size > MAX_FILE) {
		ret = -EFBIG;
		log_error("%s %s: %lld bytes is too large", what, path, (long long)st.st_size);
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		ret = -ENOMEM;
		log_error("%s %s: out of memory", what, path);
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			log_error("%s %s: cannot read it: %s", what, path,
				  n < 0 ? strerror(errno) : "it got shorter");
			goto out;
		}
		done += (size_t)n;
	}
	*out = buf;
	*len = (uint32_t)st.st_size;
	buf = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

static int add(struct fw_cfg *f, uint16_t key, uint32_t v)
{
	return fw_cfg_add_u32(f, key, v);
}

int x86_fw_cfg_add_linux(struct fw_cfg *f, const struct x86_fw_cfg_linux *k)
{
	static const char bootorder[] = "/rom@genroms/linuxboot_dma.bin\n";
	uint8_t *kernel = NULL, *initrd = NULL, *rom = NULL, *setup = NULL, *prot = NULL;
	uint32_t kernel_len, initrd_len = 0, rom_len, setup_len, initrd_max, initrd_addr = 0;
	uint32_t cmdline_len = (uint32_t)strlen(k->cmdline) + 1;
	uint16_t version;
	int ret;

	ret = read_file("kernel", k->kernel_path, &kernel, &kernel_len);
	if (ret)
		goto out;
	if (kernel_len < HDR_END || get_le(kernel + HDR_BOOT_FLAG, 2) != 0xaa55 ||
	    memcmp(kernel + HDR_MAGIC, "HdrS", 4) != 0) {
		ret = -EINVAL;
		log_error("kernel %s: with --firmware the kernel must be a bzImage (no setup "
			  "header found)",
			  k->kernel_path);
		goto out;
	}
	version = (uint16_t)get_le(kernel + HDR_VERSION, 2);
	if (version < 0x202 || !(kernel[HDR_LOADFLAGS] & LOADED_HIGH)) {
		ret = -EINVAL;
		log_error(
		    "kernel %s: boot protocol %u.%02u without a high load; firmware boot needs "
		    "2.02 or later",
		    k->kernel_path, version >> 8, version & 0xff);
		goto out;
	}
	setup_len = ((uint32_t)(kernel[HDR_SETUP_SECTS] ? kernel[HDR_SETUP_SECTS] : 4) + 1) * 512;
	if (setup_len >= kernel_len || setup_len > CMDLINE_ADDR - REAL_ADDR) {
		ret = -EINVAL;
		log_error("kernel %s: a setup part of %u bytes does not fit (the file has %u)",
			  k->kernel_path, setup_len, kernel_len);
		goto out;
	}
	if (cmdline_len > 0x10000) {
		ret = -E2BIG;
		log_error("the kernel command line is too long for firmware boot");
		goto out;
	}
	if (k->initrd_path) {
		ret = read_file("initrd", k->initrd_path, &initrd, &initrd_len);
		if (ret)
			goto out;
		initrd_max =
		    version >= 0x203 ? get_le(kernel + HDR_INITRD_ADDR_MAX, 4) : 0x37ffffff;
		/* Below the end of low RAM, leaving the top 128 KiB to the firmware's tables. */
		if (initrd_max > k->low_ram_end - (128u << 10) - 1)
			initrd_max = (uint32_t)(k->low_ram_end - (128u << 10) - 1);
		if (initrd_len > initrd_max || initrd_max - initrd_len < PROT_ADDR + kernel_len) {
			ret = -E2BIG;
			log_error("initrd %s: %u bytes do not fit below 0x%x with the kernel",
				  k->initrd_path, initrd_len, initrd_max);
			goto out;
		}
		initrd_addr = (initrd_max - initrd_len) & ~4095u;
	}

	/* The header as a boot loader leaves it. */
	setup = malloc(setup_len);
	prot = malloc(kernel_len - setup_len);
	if (!setup || !prot) {
		ret = -ENOMEM;
		log_error("kernel %s: out of memory", k->kernel_path);
		goto out;
	}
	memcpy(setup, kernel, setup_len);
	memcpy(prot, kernel + setup_len, kernel_len - setup_len);
	setup[HDR_TYPE_OF_LOADER] = LOADER_UNKNOWN;
	setup[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	put_le(setup + HDR_HEAP_END_PTR, CMDLINE_ADDR - REAL_ADDR - 0x200, 2);
	put_le(setup + HDR_CMD_LINE_PTR, CMDLINE_ADDR, 4);
	put_le(setup + HDR_RAMDISK_IMAGE, initrd_addr, 4);
	put_le(setup + HDR_RAMDISK_SIZE, initrd_len, 4);

	ret = read_file("option ROM", k->rom_path, &rom, &rom_len);
	if (ret) {
		log_error("--firmware with --kernel needs QEMU's option ROM %s (Debian's "
			  "qemu-system-data)",
			  k->rom_path);
		goto out;
	}
	/* fw_cfg_add_bytes_owned takes the buffer whatever it returns. */
	if ((ret = add(f, FW_CFG_SETUP_ADDR, REAL_ADDR)) ||
	    (ret = add(f, FW_CFG_SETUP_SIZE, setup_len)))
		goto fail;
	ret = fw_cfg_add_bytes_owned(f, FW_CFG_SETUP_DATA, setup, setup_len);
	setup = NULL;
	if (ret || (ret = add(f, FW_CFG_KERNEL_ADDR, PROT_ADDR)) ||
	    (ret = add(f, FW_CFG_KERNEL_SIZE, kernel_len - setup_len)))
		goto fail;
	ret = fw_cfg_add_bytes_owned(f, FW_CFG_KERNEL_DATA, prot, kernel_len - setup_len);
	prot = NULL;
	if (ret)
		goto fail;
	if ((ret = add(f, FW_CFG_CMDLINE_ADDR, CMDLINE_ADDR)) ||
	    (ret = add(f, FW_CFG_CMDLINE_SIZE, cmdline_len)) ||
	    (ret = fw_cfg_add_bytes(f, FW_CFG_CMDLINE_DATA, k->cmdline, cmdline_len)))
		goto fail;
	if ((ret = add(f, FW_CFG_INITRD_ADDR, initrd_addr)) ||
	    (ret = add(f, FW_CFG_INITRD_SIZE, initrd_len)))
		goto fail;
	if (initrd) {
		ret = fw_cfg_add_bytes_owned(f, FW_CFG_INITRD_DATA, initrd, initrd_len);
		initrd = NULL;
		if (ret)
			goto fail;
	}
	ret = fw_cfg_add_file(f, "genroms/linuxboot_dma.bin", rom, rom_len);
	if (ret >= 0)
		ret = fw_cfg_add_file(f, "bootorder", bootorder, sizeof(bootorder) - 1);
	if (ret >= 0) {
		ret = 0;
		goto out;
	}
fail:
	log_error("fw-cfg: cannot add the kernel's items: %s", strerror(-ret));
out:
	free(kernel);
	free(initrd);
	free(rom);
	free(setup);
	free(prot);
	return ret;
}
