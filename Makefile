# skiff build.
#
#   make                 build/skiff for this host (x86_64)
#   make STATIC=1        a static binary (what the nested harness puts inside its L1 VM)
#   make SANITIZE=1      ASan/UBSan build (tests use it for the unit suite)
#   make test            the whole test suite: unit, direct /dev/kvm, nested (see tests/run)
#
# Sources are found by wildcard: a new file under src/ is built without editing this file.
# Everything but src/main.c goes into libskiff.a, which the unit and kvm tests link against.

ARCH     ?= x86_64
BUILD    ?= build
CC       ?= cc
OPT      ?= -O2 -g
STATIC   ?= 0
SANITIZE ?= 0

ifeq ($(ARCH),x86_64)
ARCH_DIR := x86
else
$(error unsupported ARCH=$(ARCH): skiff builds for x86_64)
endif

CPPFLAGS += -Isrc -D_GNU_SOURCE -MMD -MP
CFLAGS   += -std=gnu11 $(OPT) -Wall -Wextra -Werror -Wno-unused-parameter \
	    -Wno-missing-field-initializers -Wshadow -Wstrict-prototypes -fno-strict-aliasing
LDLIBS   += -luring -lpthread

ifeq ($(STATIC),1)
LDFLAGS  += -static
endif
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif

LIB_SRCS := $(shell find src -name '*.c' -not -path 'src/arch/*' -not -path src/main.c | sort) \
	    $(shell find src/arch/$(ARCH_DIR) -name '*.c' | sort)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

# Tiny bare-metal guests: guests/<name>/*.S -> $(BUILD)/guests/<name>.bin (flat binaries).
GUEST_X86_SRCS := $(wildcard guests/*/x86_64.S)
GUEST_BINS     := $(patsubst guests/%/x86_64.S,$(BUILD)/guests/%.bin,$(GUEST_X86_SRCS))
KVM_GUEST_SRCS := $(wildcard tests/kvm/guests/*.S)
KVM_GUEST_BINS := $(patsubst tests/kvm/guests/%.S,$(BUILD)/tests/kvm/guests/%.bin,$(KVM_GUEST_SRCS))

# The built-in demo guest is linked into skiff as data.
EMBED_OBJ := $(BUILD)/guests/embedded.o

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
# Shared test code (tests/unit/*.c not named test_*) is linked into every unit test.
UNIT_HELPER_SRCS := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJS := $(UNIT_HELPER_SRCS:%.c=$(BUILD)/%.o)
KVM_SRCS   := $(wildcard tests/kvm/test_*.c)
KVM_BINS   := $(KVM_SRCS:%.c=$(BUILD)/%)

.PHONY: all test unit-tests kvm-tests clean format
all: $(BUILD)/skiff

$(BUILD)/skiff: $(BUILD)/src/main.o $(BUILD)/libskiff.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libskiff.a: $(LIB_OBJS) $(EMBED_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Guests are 16-bit real-mode code assembled with the host's GNU as and linked flat at 0x1000,
# where `skiff run --raw` loads them.
$(BUILD)/guests/%.bin: guests/%/x86_64.S $(wildcard guests/*/*.inc)
	@mkdir -p $(dir $@)
	$(CC) -c -o $(BUILD)/guests/$*.o $<
	ld -m elf_x86_64 -Ttext=0x1000 -e 0x1000 -o $(BUILD)/guests/$*.elf $(BUILD)/guests/$*.o
	objcopy -O binary -j .text $(BUILD)/guests/$*.elf $@

$(BUILD)/tests/kvm/guests/%.bin: tests/kvm/guests/%.S $(wildcard tests/kvm/guests/*.inc)
	@mkdir -p $(dir $@)
	$(CC) -c -o $(BUILD)/tests/kvm/guests/$*.o $<
	ld -m elf_x86_64 -Ttext=0x1000 -e 0x1000 -o $(BUILD)/tests/kvm/guests/$*.elf \
		$(BUILD)/tests/kvm/guests/$*.o
	objcopy -O binary -j .text $(BUILD)/tests/kvm/guests/$*.elf $@

$(EMBED_OBJ): guests/embedded.S $(GUEST_BINS)
	@mkdir -p $(dir $@)
	$(CC) -c -Wa,-I,$(BUILD)/guests -o $@ $<

$(UNIT_HELPER_OBJS): CPPFLAGS += -Itests

$(BUILD)/tests/unit/test_%: tests/unit/test_%.c $(UNIT_HELPER_OBJS) $(BUILD)/libskiff.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

$(BUILD)/tests/kvm/%: tests/kvm/%.c $(BUILD)/libskiff.a $(KVM_GUEST_BINS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libskiff.a -lcmocka $(LDLIBS)

unit-tests: $(UNIT_BINS)
kvm-tests: $(KVM_BINS) $(KVM_GUEST_BINS) $(BUILD)/skiff

test:
	tools/install-deps --test
	tests/run

format:
	clang-format -i $$(find src tests bench guests -name '*.[ch]')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
