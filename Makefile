# skiff build.
#
#   make                 build/skiff for this host (x86_64)
#   make ARCH=arm64      build-arm64/skiff for arm64: cross-compiled with aarch64-linux-gnu-gcc
#                        on an x86_64 host (libfdt-dev:arm64, zlib1g-dev:arm64), natively on arm64
#   make STATIC=1        a static binary (what the nested harness puts inside its L1 VM)
#   make SANITIZE=1      ASan/UBSan build (tests use it for the unit suite)
#   make fuzz            the libFuzzer harnesses (tests/fuzz, clang, ASan/UBSan) in build/fuzz,
#                        each run for FUZZ_SECONDS (default 60) from its corpus
#   make test            the whole test suite: unit, direct /dev/kvm, nested (see tests/run)
#   make man             $(BUILD)/skiff.1 and skiff-jailer.1, the manual pages, from
#                        docs/man/*.1.scd (scdoc)
#   make install         skiff, skiff-jailer, their manual pages and bash completion under
#                        $(DESTDIR)$(PREFIX)
#                        (PREFIX=/usr/local); make uninstall removes them
#   make deb             the Debian package (debian/): $(BUILD)/deb/skiff_VERSION_ARCH.deb
#                        (make deb ARCH=arm64: build-arm64/deb/skiff_VERSION_arm64.deb)
#
# Sources are found by wildcard: a new file under src/ is built without editing this file.
# Everything but src/main.c and src/jailer/ (skiff-jailer, a program of its own) goes into
# libskiff.a, which the unit and kvm tests link against.
# Of src/arch/ only the target's directory is built, and a unit test that includes another
# architecture's headers (arch/x86/..., arch/arm64/...) is left out of that build.

ARCH     ?= x86_64
OPT      ?= -O2 -g
STATIC   ?= 0
SANITIZE ?= 0
HOST_ARCH := $(shell uname -m)

ifeq ($(ARCH),aarch64)
override ARCH := arm64
endif
ifeq ($(ARCH),x86_64)
ARCH_DIR       := x86
OTHER_ARCH_DIR := arm64
BUILD          ?= build
GUEST_LDFLAGS  := -m elf_x86_64 -Ttext=0x1000 -e 0x1000
else ifeq ($(ARCH),arm64)
ARCH_DIR       := arm64
OTHER_ARCH_DIR := x86
BUILD          ?= build-arm64
GUEST_LDFLAGS  := -Ttext=0x80000000 -e 0x80000000
ifneq ($(HOST_ARCH),aarch64)
CROSS_COMPILE  ?= aarch64-linux-gnu-
endif
# libfdt writes the device tree.
LDLIBS         += -lfdt
else
$(error unsupported ARCH=$(ARCH): skiff builds for x86_64 and arm64)
endif

# make's built-in defaults (cc, ar) give way to the cross tools; a CC given by the user stays.
ifeq ($(origin CC),default)
CC := $(if $(CROSS_COMPILE),$(CROSS_COMPILE)gcc,cc)
endif
ifeq ($(origin AR),default)
AR := $(CROSS_COMPILE)ar
endif
GUEST_LD ?= $(CROSS_COMPILE)ld
OBJCOPY  ?= $(CROSS_COMPILE)objcopy

CPPFLAGS += -Isrc -D_GNU_SOURCE -MMD -MP
CFLAGS   += -std=gnu11 $(OPT) -Wall -Wextra -Werror -Wno-unused-parameter \
	    -Wno-missing-field-initializers -Wshadow -Wstrict-prototypes -fno-strict-aliasing
# jansson parses the API's and --config-file's JSON (see README: Dependencies).
# libseccomp builds the per-thread-role filters (base/seccomp.h).
# zlib: the snapshot file's CRC-32 (vmm/snapshot.c); on arm64 it also inflates gzip-compressed
# kernel Images.
LDLIBS   += -ljansson -luring -lseccomp -lz -lpthread

ifeq ($(STATIC),1)
LDFLAGS  += -static
endif
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif
# The fuzzing build (make fuzz sets it, with CC=clang): every object instrumented for libFuzzer's
# coverage and under ASan/UBSan; only the harnesses link libFuzzer's main.
ifeq ($(FUZZ),1)
CFLAGS   += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=all -Wno-gnu-variable-sized-type-not-at-end
endif

LIB_SRCS := $(shell find src -name '*.c' -not -path 'src/arch/*' -not -path 'src/jailer/*' \
		-not -path src/main.c | sort) \
	    $(shell find src/arch/$(ARCH_DIR) -name '*.c' | sort)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

# skiff-jailer, the second program (src/jailer/): its own files only, none of skiff's layers.
JAILER_SRCS := $(wildcard src/jailer/*.c)
JAILER_OBJS := $(JAILER_SRCS:%.c=$(BUILD)/%.o)

# Tiny bare-metal guests: guests/<name>/$(ARCH).S -> $(BUILD)/guests/<name>.bin (flat binaries).
GUEST_SRCS := $(wildcard guests/*/$(ARCH).S)
GUEST_BINS := $(patsubst guests/%/$(ARCH).S,$(BUILD)/guests/%.bin,$(GUEST_SRCS))
# The /dev/kvm tests and their guests are x86 (real-mode guests, port I/O).
ifeq ($(ARCH),x86_64)
KVM_GUEST_SRCS := $(wildcard tests/kvm/guests/*.S)
KVM_SRCS       := $(wildcard tests/kvm/test_*.c)
endif
KVM_GUEST_BINS := $(patsubst tests/kvm/guests/%.S,$(BUILD)/tests/kvm/guests/%.bin,$(KVM_GUEST_SRCS))
# The malicious guest (tests/kvm/guests/hostile/): C, freestanding, 64-bit, one flat image.
ifeq ($(ARCH),x86_64)
HOSTILE_SRCS   := $(wildcard tests/kvm/guests/hostile/*.[cS])
KVM_GUEST_BINS += $(BUILD)/tests/kvm/guests/hostile.bin
# The multiboot test kernel (tests/kvm/guests/multiboot/): an ELF32 and an a.out-kludge image.
KVM_GUEST_BINS += $(BUILD)/tests/kvm/guests/multiboot.elf $(BUILD)/tests/kvm/guests/multiboot-aout.bin
endif
HOSTILE_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -ffreestanding -nostdlib -fno-pic -no-pie \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fno-tree-loop-distribute-patterns -fcf-protection=none -static

# The built-in demo guest is linked into skiff as data.
EMBED_OBJ := $(BUILD)/guests/embedded.o

# The seccomp filters compiled at build time, linked into skiff only (see below).
SECCOMP_PREBUILT_OBJ := $(BUILD)/gen/seccomp_prebuilt.o
ifeq ($(ARCH)-$(HOST_ARCH),arm64-aarch64)
SECCOMP_GEN_RUNNER :=
else ifeq ($(ARCH)-$(HOST_ARCH),x86_64-x86_64)
SECCOMP_GEN_RUNNER :=
else ifeq ($(ARCH),arm64)
SECCOMP_GEN_RUNNER := $(shell command -v qemu-aarch64-static || command -v qemu-aarch64)
SECCOMP_GEN_CANNOT_RUN := $(if $(SECCOMP_GEN_RUNNER),,no qemu-aarch64 to run tools/seccomp-bpf)
else
SECCOMP_GEN_CANNOT_RUN := tools/seccomp-bpf cannot run on a $(HOST_ARCH) host
endif

UNIT_SRCS  := $(shell grep -L 'arch/$(OTHER_ARCH_DIR)/' tests/unit/test_*.c | sort)
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
# Shared test code (tests/unit/*.c not named test_*) is linked into every unit test.
UNIT_HELPER_SRCS := $(filter-out tests/unit/test_%,$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJS := $(UNIT_HELPER_SRCS:%.c=$(BUILD)/%.o)
KVM_BINS   := $(KVM_SRCS:%.c=$(BUILD)/%)

.PHONY: all test unit-tests kvm-tests fuzz fuzz-build clean format man install uninstall deb
all: $(BUILD)/skiff $(BUILD)/skiff-jailer

$(BUILD)/skiff: $(BUILD)/src/main.o $(BUILD)/libskiff.a $(SECCOMP_PREBUILT_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The seccomp filters, compiled at build time (base/seccomp_prebuilt.h): tools/seccomp-bpf,
# built for the target, writes them. A cross build runs it under qemu-user; without one the
# file defines nothing and skiff compiles its filters at run time, as before.
$(BUILD)/tools/seccomp-bpf: tools/seccomp-bpf/main.c $(BUILD)/libskiff.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libskiff.a $(LDLIBS)

$(SECCOMP_PREBUILT_OBJ): $(BUILD)/gen/seccomp_prebuilt.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/seccomp_prebuilt.c: $(BUILD)/tools/seccomp-bpf
	@mkdir -p $(dir $@)
	$(if $(SECCOMP_GEN_CANNOT_RUN),@echo "note: $(SECCOMP_GEN_CANNOT_RUN): the $(ARCH) skiff compiles its seccomp filters at run time" >&2; \
		echo '/* No prebuilt seccomp filters: $(SECCOMP_GEN_CANNOT_RUN). */' >$@,\
		$(SECCOMP_GEN_RUNNER) $< >$@.tmp && mv $@.tmp $@)

$(BUILD)/skiff-jailer: $(JAILER_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/libskiff.a: $(LIB_OBJS) $(EMBED_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Guests are assembled with the target's GNU as and linked flat where `skiff run --raw` loads
# them: x86 16-bit real-mode code at 0x1000, arm64 code at the start of RAM (0x80000000).
$(BUILD)/guests/%.bin: guests/%/$(ARCH).S $(wildcard guests/*/*.inc)
	@mkdir -p $(dir $@)
	$(CC) -c -o $(BUILD)/guests/$*.o $<
	$(GUEST_LD) $(GUEST_LDFLAGS) -o $(BUILD)/guests/$*.elf $(BUILD)/guests/$*.o
	$(OBJCOPY) -O binary -j .text $(BUILD)/guests/$*.elf $@

$(BUILD)/tests/kvm/guests/%.bin: tests/kvm/guests/%.S $(wildcard tests/kvm/guests/*.inc)
	@mkdir -p $(dir $@)
	$(CC) -c -o $(BUILD)/tests/kvm/guests/$*.o $<
	ld -m elf_x86_64 -Ttext=0x1000 -e 0x1000 -o $(BUILD)/tests/kvm/guests/$*.elf \
		$(BUILD)/tests/kvm/guests/$*.o
	objcopy -O binary -j .text $(BUILD)/tests/kvm/guests/$*.elf $@

# 32-bit code linked at 1 MiB, where multiboot kernels load. The ELF is loaded by its program
# headers; the flat image (-DAOUT_KLUDGE) by the address fields of its multiboot header.
MB_GUEST_LD := ld -m elf_i386 -N -Ttext=0x100000 -e entry --build-id=none -z noexecstack \
	--no-warn-rwx-segments
$(BUILD)/tests/kvm/guests/multiboot.elf: tests/kvm/guests/multiboot/kernel.S
	@mkdir -p $(dir $@)
	$(CC) -m32 -c -o $(BUILD)/tests/kvm/guests/multiboot.o $<
	$(MB_GUEST_LD) -o $@ $(BUILD)/tests/kvm/guests/multiboot.o

$(BUILD)/tests/kvm/guests/multiboot-aout.bin: tests/kvm/guests/multiboot/kernel.S
	@mkdir -p $(dir $@)
	$(CC) -m32 -DAOUT_KLUDGE -c -o $(BUILD)/tests/kvm/guests/multiboot-aout.o $<
	$(MB_GUEST_LD) -o $(BUILD)/tests/kvm/guests/multiboot-aout.elf \
		$(BUILD)/tests/kvm/guests/multiboot-aout.o
	objcopy -O binary -j .text $(BUILD)/tests/kvm/guests/multiboot-aout.elf $@

# Raw test images for the nested harness (tests/nested/guests/NAME-$(ARCH).S): flat binaries
# for `skiff run --kernel` without an Image header, linked where arm64 loads them (RAM + 0x80000).
$(BUILD)/tests/nested/guests/%.bin: tests/nested/guests/%-$(ARCH).S
	@mkdir -p $(dir $@)
	$(CC) -c -o $(BUILD)/tests/nested/guests/$*.o $<
	$(GUEST_LD) -Ttext=0x80080000 -e 0x80080000 -o $(BUILD)/tests/nested/guests/$*.elf \
		$(BUILD)/tests/nested/guests/$*.o
	$(OBJCOPY) -O binary -j .text $(BUILD)/tests/nested/guests/$*.elf $@

# Its own flags, not $(CFLAGS): a sanitizer or coverage build must not instrument a guest.
$(BUILD)/tests/kvm/guests/hostile.bin: $(HOSTILE_SRCS) $(wildcard tests/kvm/guests/hostile/*.h) \
		tests/kvm/guests/hostile/guest.ld
	@mkdir -p $(dir $@)
	$(CC) $(HOSTILE_CFLAGS) -T tests/kvm/guests/hostile/guest.ld -Wl,--build-id=none,--no-warn-rwx-segments \
		-o $(BUILD)/tests/kvm/guests/hostile.elf $(HOSTILE_SRCS)
	objcopy -O binary -j .image $(BUILD)/tests/kvm/guests/hostile.elf $@

$(EMBED_OBJ): guests/embedded.S $(GUEST_BINS)
	@mkdir -p $(dir $@)
	$(CC) -c -Wa,-I,$(BUILD)/guests -o $@ $<

$(UNIT_HELPER_OBJS): CPPFLAGS += -Itests

# $^ without the headers that the test's .d file adds as prerequisites (a header that has since
# moved would otherwise be handed to the compiler).
$(BUILD)/tests/unit/test_%: tests/unit/test_%.c $(UNIT_HELPER_OBJS) $(BUILD)/libskiff.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $(filter-out %.h,$^) -lcmocka $(LDLIBS)

# Linked with the generated filters, as skiff is.
$(BUILD)/tests/unit/test_seccomp_prebuilt: $(SECCOMP_PREBUILT_OBJ)

$(BUILD)/tests/kvm/%: tests/kvm/%.c $(BUILD)/libskiff.a $(KVM_GUEST_BINS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libskiff.a -lcmocka $(LDLIBS)

unit-tests: $(UNIT_BINS)
kvm-tests: $(KVM_BINS) $(KVM_GUEST_BINS) $(BUILD)/skiff

test:
	tools/install-deps --test
	tests/run

# --- fuzzing (tests/fuzz/README.md) ---

# tests/fuzz/fuzz_NAME.c -> build/fuzz/tests/fuzz/fuzz_NAME, linked with libskiff.a built by
# clang for fuzzing (FUZZ=1). Shared harness code (tests/fuzz/*.c not named fuzz_*) is linked
# into every harness; the arm64 Image loader, portable C, is compiled in for its harness.
FUZZ_SECONDS ?= 60
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRCS:%.c=$(BUILD)/%)
FUZZ_HELPER_SRCS := $(filter-out tests/fuzz/fuzz_%,$(wildcard tests/fuzz/*.c))
FUZZ_HELPER_OBJS := $(FUZZ_HELPER_SRCS:%.c=$(BUILD)/%.o)

fuzz:
	$(MAKE) FUZZ=1 CC=clang BUILD=build/fuzz OPT='-O1 -g' fuzz-build
	tests/fuzz/run build/fuzz $(FUZZ_SECONDS)

fuzz-build: $(FUZZ_BINS)

$(FUZZ_HELPER_OBJS): CPPFLAGS += -Itests

$(BUILD)/tests/fuzz/fuzz_arm64_image: $(BUILD)/src/arch/arm64/image.o
$(BUILD)/tests/fuzz/fuzz_arm64_image: LDLIBS += -lz

$(BUILD)/tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HELPER_OBJS) $(BUILD)/libskiff.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ \
		$(filter %.c %.o,$^) $(filter %.a,$^) $(LDLIBS)

# --- the manual page, install, the Debian package ---

VERSION := $(shell sed -n 's/^\#define SKIFF_VERSION "\(.*\)"$$/\1/p' src/version.h)

man: $(BUILD)/skiff.1 $(BUILD)/skiff-jailer.1

$(BUILD)/%.1: docs/man/%.1.scd src/version.h
	@mkdir -p $(dir $@)
	sed 's/@VERSION@/$(VERSION)/g' $< | scdoc >$@.tmp
	mv $@.tmp $@

PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
INSTALL     ?= install
# The programs `make install` puts in $(BINDIR), and their manual pages.
PROGRAMS    := skiff skiff-jailer
MAN_PAGES   := skiff.1 skiff-jailer.1

install: $(PROGRAMS:%=$(BUILD)/%) $(MAN_PAGES:%=$(BUILD)/%)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 755 $(PROGRAMS:%=$(BUILD)/%) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 644 $(MAN_PAGES:%=$(BUILD)/%) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 644 tools/completion/skiff.bash $(DESTDIR)$(BASHCOMPDIR)/skiff

uninstall:
	rm -f $(PROGRAMS:%=$(DESTDIR)$(BINDIR)/%) $(MAN_PAGES:%=$(DESTDIR)$(MANDIR)/man1/%) \
		$(DESTDIR)$(BASHCOMPDIR)/skiff

# dpkg-buildpackage runs in a copy of the package's inputs under $(BUILD)/deb, so the package
# build neither cleans this tree nor writes into its parent directory; the .deb (and the
# .buildinfo and .changes) land in $(BUILD)/deb.
# With ARCH=arm64 on another host it is a cross build (dpkg-buildpackage -aarm64), needing the
# arm64 libraries tools/install-deps installs; -d, as dpkg would want scdoc:arm64 too.
DEB_INPUTS := Makefile README.md debian docs/man guests src tools/completion tools/seccomp-bpf
DEB_ARCH_x86_64 := amd64
DEB_ARCH_arm64  := arm64
DEB_HOST   = $(DEB_ARCH_$(ARCH))
DEB_CROSS  = $(if $(filter $(DEB_HOST),$(shell dpkg --print-architecture)),,-a$(DEB_HOST) -d)

deb:
	rm -rf $(BUILD)/deb
	mkdir -p $(BUILD)/deb/skiff-$(VERSION)
	cp -a --parents $(DEB_INPUTS) $(BUILD)/deb/skiff-$(VERSION)/
	cd $(BUILD)/deb/skiff-$(VERSION) && dpkg-buildpackage -b -us -uc $(DEB_CROSS)
	@ls $(BUILD)/deb/*.deb

format:
	clang-format -i $$(find src tests bench guests -name '*.[ch]')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
