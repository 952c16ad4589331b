/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A small, bounded x86-64 instruction decoder: lengths for the general-purpose,
 * x87, SSE, VEX and EVEX encodings that compilers emit, plus the operand facts
 * the tracer needs:
 *   - RIP-relative and absolute memory operands (where an instruction points),
 *   - immediates and direct branch targets,
 *   - which registers an instruction writes (for a small whitelist only),
 *   - whether the kernel's uprobe code emulates it (no single-step).
 *
 * It never reads past the bytes it is given and never guesses: an encoding it
 * does not know is reported as undecodable, and callers fall back to the
 * conservative answer.
 */
#ifndef TMBPF_TRACER_X86DEC_H
#define TMBPF_TRACER_X86DEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define X86_MAX_INSN 15

enum x86_reg {
	X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RSP, X86_RBP, X86_RSI, X86_RDI,
	X86_R8, X86_R9, X86_R10, X86_R11, X86_R12, X86_R13, X86_R14, X86_R15,
	X86_RIP = 16,
	X86_NOREG = -1,
};
#define X86_REGBIT(r) (1u << (r))

enum x86_map {
	X86_MAP_1 = 0,                  /* one-byte opcodes */
	X86_MAP_0F = 1,
	X86_MAP_0F38 = 2,
	X86_MAP_0F3A = 3,
};

enum x86_branch {
	X86_BR_NONE = 0,
	X86_BR_JMP,                     /* jmp rel8/rel32: target valid */
	X86_BR_JCC,                     /* jcc rel8/rel32, loop/jrcxz: target valid */
	X86_BR_CALL,                    /* call rel32: target valid */
	X86_BR_JMP_IND,                 /* jmp r/m */
	X86_BR_CALL_IND,                /* call r/m */
	X86_BR_RET,                     /* ret, iret, far ret */
	X86_BR_OTHER,                   /* syscall, int, ud2, hlt: control leaves */
};

struct x86_insn {
	uint64_t addr;                  /* address the instruction was decoded at */
	uint8_t len;
	uint8_t map;                    /* enum x86_map */
	uint8_t opcode;                 /* last opcode byte */
	bool vex;                       /* VEX or EVEX encoded */
	/* prefixes */
	bool p66, p67, lock, rep_f2, rep_f3;
	uint8_t seg;                    /* 0, or 0x26/0x2e/0x36/0x3e/0x64/0x65 */
	uint8_t rex;                    /* 0 if none */
	bool rex_w;
	uint8_t nprefix;                /* legacy + REX prefix bytes */
	/* ModRM operand */
	bool has_modrm;
	uint8_t mod;                    /* 0..3 */
	int8_t reg;                     /* ModRM.reg with REX.R (0..15) */
	int8_t rm;                      /* mod==3: register (with REX.B) */
	bool mem;                       /* has a memory operand */
	int8_t base;                    /* memory base: X86_RIP, a register, or X86_NOREG */
	int8_t index;                   /* X86_NOREG if none */
	uint8_t scale;                  /* 1, 2, 4, 8 */
	int64_t disp;
	uint64_t mem_target;            /* base == X86_RIP: effective address; base/index none: disp */
	/* immediate(s) */
	uint8_t imm_size;               /* bytes, 0 if none */
	int64_t imm;                    /* sign-extended as the CPU does for this size */
	/* control flow */
	uint8_t branch;                 /* enum x86_branch */
	uint64_t target;                /* direct branches: destination address */
};

/* Decodes one instruction from code[0..avail) at address addr. Returns its
 * length (1..15), or -1 if the bytes are not a complete instruction this
 * decoder knows. */
int x86_decode(const uint8_t *code, size_t avail, uint64_t addr, struct x86_insn *out);

/* The registers (X86_REGBIT mask, flags excluded) that insn writes, for a
 * whitelist of simple instructions (mov, lea, ALU, test/cmp, movzx/movsx,
 * cmov, setcc, nop, endbr). Returns false if insn is not on the list: the
 * caller must then assume it can write anything. */
bool x86_insn_writes(const struct x86_insn *insn, uint32_t *regs);

/* True if the kernel's x86 uprobe code emulates insn instead of
 * single-stepping it out of line (arch/x86/kernel/uprobes.c: push reg,
 * "prefix* nop", jmp/jcc/call rel). */
bool x86_uprobe_emulated(const struct x86_insn *insn);

/* Where an entry+return uprobe pair can sit in a function: the offset of the
 * first emulated instruction reached from the entry by straight-line code
 * that writes neither rsp nor any register of preserve_mask (the argument
 * registers the probe reads), provided no direct branch inside the function
 * ([0, size) bytes of code) lands in (0, offset] and the function has no
 * jump table (a jump through a register is accepted only as a tail call:
 * the register last loaded from memory without an index). Anything unknown
 * gives 0. Cold parts of the function elsewhere in .text are not scanned.
 * *emulated tells whether the instruction at the returned offset is
 * emulated (false: the kernel single-steps it). */
uint32_t x86_probe_offset(const uint8_t *code, size_t size, uint64_t addr,
			  uint32_t preserve_mask, bool *emulated);

#endif /* TMBPF_TRACER_X86DEC_H */
