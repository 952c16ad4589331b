# tmbpf: CPython's tracemalloc, outside the process, on eBPF.
#
# Layout (one library per folder, so each can be linked and tested alone):
#   bpf/            kernel side: *.bpf.c -> build/bpf/*.bpf.o -> build/skel/*.skel.h
#   user/snapshot/  snapshot model, statistics, filters, file formats (no BPF)  -> libtmsnap.a
#   user/output/    text/JSON/folded/top report writers                          -> libtmout.a
#   user/tracer/    attach, read maps, symbolize target memory                   -> libtmtracer.a
#   user/cli/       the tmbpf command
#
# `make` builds build/tmbpf; `make test` sets up what is missing, builds the
# sanitizer (ASan+UBSan) variant and runs every Criterion suite; `make fuzz`
# runs the libFuzzer targets for a short time.

CC        ?= cc
CLANG     ?= clang
BPFTOOL   ?= bpftool
LLVM_STRIP ?= llvm-strip
ARCH      := x86
BUILD     := build
Q         ?= @

WARN      := -Wall -Wextra -Werror
CSTD      := -std=gnu11
INCLUDES  := -Iuser -I$(BUILD)/skel -Ibpf
CFLAGS    ?= -O2 -g
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(INCLUDES) -D_GNU_SOURCE -MMD -MP
LDLIBS_BPF := -lbpf -lelf -lz
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

BPF_SRC   := $(wildcard bpf/*.bpf.c)
BPF_OBJ   := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRC))
BPF_SKEL  := $(patsubst bpf/%.bpf.c,$(BUILD)/skel/%.skel.h,$(BPF_SRC))
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
	-Wno-unused-parameter -Wno-missing-field-initializers \
	-Ivmlinux/$(ARCH) -Ibpf -I/usr/include/$(shell uname -m)-linux-gnu

SNAP_SRC   := $(wildcard user/snapshot/*.c)
OUT_SRC    := $(wildcard user/output/*.c)
TRACER_SRC := $(wildcard user/tracer/*.c)
CLI_SRC    := $(wildcard user/cli/*.c)
UNIT_SRC   := $(wildcard tests/unit/*.c)
TRACERT_SRC := $(wildcard tests/tracer/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/*.c)

# obj(variant, sources)
obj = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))

.PHONY: all test test-unit test-tracer fuzz fuzz-build setup clean vmlinux bench demo
.DEFAULT_GOAL := all
.SECONDARY: $(BPF_OBJ)

all: $(BUILD)/tmbpf

setup:
	$(Q)scripts/setup

# The main job (README): set up, build, trace a bundled leaking service.
demo:
	$(Q)scripts/demo

# ---------------------------------------------------------------- BPF
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) vmlinux/$(ARCH)/vmlinux.h
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@ # keep BTF, drop DWARF: the skeleton embeds the object

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

# ---------------------------------------------------------------- userspace, per variant
# variant "rel" = build/tmbpf, variant "san" = ASan+UBSan (tests, CI)
# Only the tracer and the CLI include BPF skeletons; the snapshot library,
# output writers and unit tests build without clang's BPF target.
$(BUILD)/rel/%.o: %.c
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(call obj,rel,$(TRACER_SRC) $(CLI_SRC) $(TRACERT_SRC)) $(call obj,san,$(TRACER_SRC) $(CLI_SRC) $(TRACERT_SRC)): | $(BPF_SKEL)

define libs_for
$(BUILD)/$(1)/libtmsnap.a: $(call obj,$(1),$(SNAP_SRC))
	$(Q)rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/$(1)/libtmout.a: $(call obj,$(1),$(OUT_SRC))
	$(Q)rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/$(1)/libtmtracer.a: $(call obj,$(1),$(TRACER_SRC))
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(eval $(call libs_for,rel))
$(eval $(call libs_for,san))

LIBS_ORDER = libtmtracer.a libtmout.a libtmsnap.a

$(BUILD)/tmbpf: $(call obj,rel,$(CLI_SRC)) $(addprefix $(BUILD)/rel/,$(LIBS_ORDER))
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_BPF) -lm -lpthread

$(BUILD)/san/tmbpf: $(call obj,san,$(CLI_SRC)) $(addprefix $(BUILD)/san/,$(LIBS_ORDER))
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS_BPF) -lm -lpthread

# ---------------------------------------------------------------- tests (Criterion)
$(BUILD)/tests/unit: $(call obj,san,$(UNIT_SRC)) $(BUILD)/san/libtmout.a $(BUILD)/san/libtmsnap.a
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ -lcriterion -lz -lm -lpthread

$(BUILD)/tests/tracer: $(call obj,san,$(TRACERT_SRC)) $(addprefix $(BUILD)/san/,$(LIBS_ORDER))
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ -lcriterion $(LDLIBS_BPF) -lm -lpthread

# Every suite runs from the repository root; each prints Criterion's synthesis line.
# CRITERION_OPTS can add e.g. --filter; unit suites run in parallel, tracer suites one at a time.
test: setup
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/san/tmbpf $(BUILD)/tests/unit $(BUILD)/tests/tracer fuzz-build
	$(Q)scripts/run-tests

test-unit: $(BUILD)/san/tmbpf $(BUILD)/tests/unit
	$(Q)$(BUILD)/tests/unit $(CRITERION_OPTS)

test-tracer: all $(BUILD)/san/tmbpf $(BUILD)/tests/tracer
	$(Q)$(BUILD)/tests/tracer -j1 $(CRITERION_OPTS)

# ---------------------------------------------------------------- fuzzing (libFuzzer, clang)
FUZZ_CFLAGS := $(CSTD) $(WARN) -O1 -g $(INCLUDES) -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
FUZZ_BIN    := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 30

$(BUILD)/fuzz/%: tests/fuzz/%.c $(SNAP_SRC) $(wildcard user/snapshot/*.h) $(wildcard tests/fuzz/*.h)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(SNAP_SRC) -lz -lm

# The line-table fuzzer runs the target-memory decoders of user/tracer/pycode.c
# and the maps-line parser of user/tracer/procmaps.c.
FUZZ_TRACER_SRC := user/tracer/pycode.c user/tracer/remote.c user/tracer/procmaps.c
$(BUILD)/fuzz/fuzz_linetable: tests/fuzz/fuzz_linetable.c $(FUZZ_TRACER_SRC) $(SNAP_SRC) \
		$(wildcard user/tracer/*.h) $(wildcard user/snapshot/*.h) bpf/pyframe.h
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_TRACER_SRC) $(SNAP_SRC) -lz -lm

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	$(Q)scripts/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BIN)

# ---------------------------------------------------------------- benchmark tools
# The uprobe floor of scripts/bench-overhead: empty BPF programs on the exact
# tier's probe points (bpf/floor.bpf.c), started the way `tmbpf run` starts CMD.
$(BUILD)/bench/uprobe-floor: scripts/bench/uprobe-floor.c $(BUILD)/skel/floor.skel.h
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS_BPF)

# ---------------------------------------------------------------- misc
# Regenerate vmlinux.h from the running kernel's BTF (see README).
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
