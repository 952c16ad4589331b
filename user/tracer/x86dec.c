// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Bounded x86-64 instruction decoder: see x86dec.h.
 *
 * Opcode properties follow the Intel SDM opcode maps (volume 2, appendix A)
 * for 64-bit mode. Only what determines the length and the operands we use is
 * tabled; mnemonics are not needed.
 */
#include "tracer/x86dec.h"

#include <string.h>

/* Per-opcode properties. */
#define F_MODRM 0x01
#define F_IMM8  0x02
#define F_IMMZ  0x04    /* 4 bytes (2 with a 0x66 prefix) */
#define F_IMM16 0x08
#define F_IMMV  0x10    /* 4 bytes, 8 with REX.W (mov r64, imm64) */
#define F_BAD   0x20    /* invalid in 64-bit mode, or a prefix handled elsewhere */
#define F_SPEC  0x40    /* handled by code */

#define M F_MODRM
#define B F_BAD
#define S F_SPEC

static const uint8_t map1[256] = {
	/* 00 */ M, M, M, M, F_IMM8, F_IMMZ, B, B, M, M, M, M, F_IMM8, F_IMMZ, B, S,
	/* 10 */ M, M, M, M, F_IMM8, F_IMMZ, B, B, M, M, M, M, F_IMM8, F_IMMZ, B, B,
	/* 20 */ M, M, M, M, F_IMM8, F_IMMZ, B, B, M, M, M, M, F_IMM8, F_IMMZ, B, B,
	/* 30 */ M, M, M, M, F_IMM8, F_IMMZ, B, B, M, M, M, M, F_IMM8, F_IMMZ, B, B,
	/* 40 REX (handled as prefix) */
	B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, B,
	/* 50 push/pop */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 60 */ B, B, S, M, B, B, B, B, F_IMMZ, M | F_IMMZ, F_IMM8, M | F_IMM8, 0, 0, 0, 0,
	/* 70 jcc rel8 */
	S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S,
	/* 80 */ M | F_IMM8, M | F_IMMZ, B, M | F_IMM8, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, B, 0, 0, 0, 0, 0,
	/* A0 */ S, S, S, S, 0, 0, 0, 0, F_IMM8, F_IMMZ, 0, 0, 0, 0, 0, 0,
	/* B0 */ F_IMM8, F_IMM8, F_IMM8, F_IMM8, F_IMM8, F_IMM8, F_IMM8, F_IMM8,
		 F_IMMV, F_IMMV, F_IMMV, F_IMMV, F_IMMV, F_IMMV, F_IMMV, F_IMMV,
	/* C0 */ M | F_IMM8, M | F_IMM8, F_IMM16, 0, S, S, M | F_IMM8, M | F_IMMZ,
		 S, 0, F_IMM16, 0, 0, F_IMM8, B, 0,
	/* D0 */ M, M, M, M, B, B, B, 0, M, M, M, M, M, M, M, M,
	/* E0 */ S, S, S, S, F_IMM8, F_IMM8, F_IMM8, F_IMM8, S, S, B, S, 0, 0, 0, 0,
	/* F0 */ B, 0, B, B, 0, 0, S, S, 0, 0, 0, 0, 0, 0, M, M,
};

static const uint8_t map0f[256] = {
	/* 00 */ M, M, M, M, B, 0, 0, 0, 0, 0, B, 0, B, M, 0, B,
	/* 10 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 20 */ M, M, M, M, B, B, B, B, M, M, M, M, M, M, M, M,
	/* 30 */ 0, 0, 0, 0, 0, 0, 0, 0, S, B, S, B, B, B, B, B,
	/* 40 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 50 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 60 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 70 */ M | F_IMM8, M | F_IMM8, M | F_IMM8, M | F_IMM8, M, M, M, 0,
		 S, M, B, B, M, M, M, M,
	/* 80 jcc rel32 */
	S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S,
	/* 90 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* A0 */ 0, 0, 0, M, M | F_IMM8, M, B, B, 0, 0, 0, M, M | F_IMM8, M, M, M,
	/* B0 */ M, M, M, M, M, M, M, M, M, M, M | F_IMM8, M, M, M, M, M,
	/* C0 */ M, M, M | F_IMM8, M, M | F_IMM8, M | F_IMM8, M | F_IMM8, M,
		 0, 0, 0, 0, 0, 0, 0, 0,
	/* D0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* E0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* F0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
};

#undef M
#undef B
#undef S

static int64_t sext(uint64_t v, unsigned bytes)
{
	unsigned shift = 64 - 8 * bytes;

	return bytes >= 8 ? (int64_t)v : (int64_t)(v << shift) >> shift;
}

static uint64_t load_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Does a VEX/EVEX opcode in this map take an imm8? */
static bool vex_has_imm8(unsigned map, uint8_t op)
{
	if (map == X86_MAP_0F3A)
		return true;
	if (map == X86_MAP_0F)
		return (op >= 0x70 && op <= 0x73) || op == 0xc2 || (op >= 0xc4 && op <= 0xc6);
	return false;
}

/* Decodes ModRM/SIB/displacement at code[*pos]. */
static bool decode_modrm(const uint8_t *code, size_t avail, size_t *pos, struct x86_insn *in,
			 bool rex_r, bool rex_x, bool rex_b)
{
	uint8_t modrm;

	if (*pos >= avail)
		return false;
	modrm = code[(*pos)++];
	in->has_modrm = true;
	in->mod = modrm >> 6;
	in->reg = (int8_t)(((modrm >> 3) & 7) | (rex_r ? 8 : 0));
	in->base = X86_NOREG;
	in->index = X86_NOREG;
	in->scale = 1;
	if (in->mod == 3) {
		in->rm = (int8_t)((modrm & 7) | (rex_b ? 8 : 0));
		return true;
	}
	in->rm = X86_NOREG;
	in->mem = true;
	unsigned rm = modrm & 7, disp_size = in->mod == 1 ? 1 : in->mod == 2 ? 4 : 0;

	if (rm == 4) {
		uint8_t sib;

		if (*pos >= avail)
			return false;
		sib = code[(*pos)++];
		unsigned idx = ((sib >> 3) & 7) | (rex_x ? 8 : 0), base = sib & 7;

		in->scale = (uint8_t)(1u << (sib >> 6));
		if (idx != 4)
			in->index = (int8_t)idx;
		if (base == 5 && in->mod == 0)
			disp_size = 4;          /* disp32, no base */
		else
			in->base = (int8_t)(base | (rex_b ? 8 : 0));
	} else if (rm == 5 && in->mod == 0) {
		in->base = X86_RIP;
		disp_size = 4;
	} else {
		in->base = (int8_t)(rm | (rex_b ? 8 : 0));
	}
	if (disp_size) {
		if (avail - *pos < disp_size)
			return false;
		in->disp = sext(load_le(code + *pos, disp_size), disp_size);
		*pos += disp_size;
	}
	return true;
}

static int decode_vex(const uint8_t *code, size_t avail, size_t pos, struct x86_insn *in)
{
	uint8_t lead = code[pos];
	bool r, x, b;
	unsigned map;

	in->vex = true;
	if (lead == 0xc5) {                     /* 2-byte VEX: map 0F */
		if (avail - pos < 2)
			return -1;
		r = !(code[pos + 1] & 0x80);
		x = b = false;
		map = X86_MAP_0F;
		pos += 2;
	} else if (lead == 0xc4) {              /* 3-byte VEX */
		if (avail - pos < 3)
			return -1;
		r = !(code[pos + 1] & 0x80);
		x = !(code[pos + 1] & 0x40);
		b = !(code[pos + 1] & 0x20);
		map = code[pos + 1] & 0x1f;
		in->rex_w = code[pos + 2] & 0x80;
		pos += 3;
	} else {                                /* 0x62: EVEX */
		if (avail - pos < 4)
			return -1;
		r = !(code[pos + 1] & 0x80);
		x = !(code[pos + 1] & 0x40);
		b = !(code[pos + 1] & 0x20);
		map = code[pos + 1] & 0x07;
		if ((code[pos + 2] & 0x04) == 0)       /* fixed bit */
			return -1;
		in->rex_w = code[pos + 2] & 0x80;
		pos += 4;
	}
	if (map < 1 || map > 6 || map == 4 || (lead != 0x62 && map > 3))
		return -1;
	if (pos >= avail)
		return -1;
	in->map = (uint8_t)(map <= 3 ? map : X86_MAP_1);
	in->opcode = code[pos++];
	/* vzeroupper/vzeroall are the only VEX instructions without ModRM. */
	if (!(lead == 0xc5 || lead == 0xc4) || map != X86_MAP_0F || in->opcode != 0x77) {
		if (!decode_modrm(code, avail, &pos, in, r, x, b))
			return -1;
	}
	if (map <= 3 && vex_has_imm8(map, in->opcode)) {
		if (pos >= avail)
			return -1;
		in->imm_size = 1;
		in->imm = (int8_t)code[pos++];
	}
	return (int)pos;
}

int x86_decode(const uint8_t *code, size_t avail, uint64_t addr, struct x86_insn *in)
{
	size_t pos = 0;
	uint8_t op, flags;

	memset(in, 0, sizeof(*in));
	in->addr = addr;
	in->base = X86_NOREG;
	in->index = X86_NOREG;
	in->rm = X86_NOREG;
	in->reg = X86_NOREG;
	if (avail > X86_MAX_INSN)
		avail = X86_MAX_INSN;

	/* Legacy prefixes, then at most one REX immediately before the opcode. */
	for (;; pos++) {
		if (pos >= avail)
			return -1;
		uint8_t p = code[pos];

		if (p == 0x66)
			in->p66 = true;
		else if (p == 0x67)
			in->p67 = true;
		else if (p == 0xf0)
			in->lock = true;
		else if (p == 0xf2)
			in->rep_f2 = true, in->rep_f3 = false;
		else if (p == 0xf3)
			in->rep_f3 = true, in->rep_f2 = false;
		else if (p == 0x26 || p == 0x2e || p == 0x36 || p == 0x3e || p == 0x64 || p == 0x65)
			in->seg = p;
		else
			break;
	}
	if (code[pos] >= 0x40 && code[pos] <= 0x4f) {
		in->rex = code[pos++];
		in->rex_w = in->rex & 8;
		if (pos >= avail)
			return -1;
	}
	in->nprefix = (uint8_t)pos;
	bool rex_r = in->rex & 4, rex_x = in->rex & 2, rex_b = in->rex & 1;

	op = code[pos];
	if (op == 0xc4 || op == 0xc5 || op == 0x62) {
		int n;

		if (in->rex)                    /* REX before VEX is #UD */
			return -1;
		n = decode_vex(code, avail, pos, in);
		if (n < 0)
			return -1;
		pos = (size_t)n;
		goto finish;
	}
	pos++;
	in->map = X86_MAP_1;
	if (op == 0x0f) {
		if (pos >= avail)
			return -1;
		op = code[pos++];
		in->map = X86_MAP_0F;
		if (op == 0x38 || op == 0x3a) {
			if (pos >= avail)
				return -1;
			in->map = op == 0x38 ? X86_MAP_0F38 : X86_MAP_0F3A;
			op = code[pos++];
			flags = F_MODRM | (in->map == X86_MAP_0F3A ? F_IMM8 : 0);
		} else {
			flags = map0f[op];
			if (op >= 0x80 && op <= 0x8f) {
				if (avail - pos < 4)
					return -1;
				in->opcode = op;
				in->imm_size = 4;
				in->imm = sext(load_le(code + pos, 4), 4);
				pos += 4;
				in->branch = X86_BR_JCC;
				in->target = addr + pos + (uint64_t)in->imm;
				goto finish;
			}
			if (op == 0x78)         /* vmread; with 66/F2 SSE4a extrq/insertq: rare, refuse */
				flags = (in->p66 || in->rep_f2) ? F_BAD : F_MODRM;
			if (op == 0x05 || op == 0x0b || op == 0x07 || op == 0x34 || op == 0x35)
				in->branch = X86_BR_OTHER;     /* syscall, ud2, sysret, sysenter/exit */
		}
	} else {
		flags = map1[op];
		if (flags & F_SPEC) {
			switch (op) {
			case 0x70 ... 0x7f: case 0xe0 ... 0xe3: case 0xeb:
				if (pos >= avail)
					return -1;
				in->imm_size = 1;
				in->imm = (int8_t)code[pos++];
				in->branch = op == 0xeb ? X86_BR_JMP : X86_BR_JCC;
				in->target = addr + pos + (uint64_t)in->imm;
				in->opcode = op;
				goto finish;
			case 0xe8: case 0xe9:
				if (avail - pos < 4)
					return -1;
				in->imm_size = 4;
				in->imm = sext(load_le(code + pos, 4), 4);
				pos += 4;
				in->branch = op == 0xe8 ? X86_BR_CALL : X86_BR_JMP;
				in->target = addr + pos + (uint64_t)in->imm;
				in->opcode = op;
				goto finish;
			case 0xa0: case 0xa1: case 0xa2: case 0xa3: {   /* mov moffs */
				unsigned n = in->p67 ? 4 : 8;

				if (avail - pos < n)
					return -1;
				in->mem = true;
				in->disp = (int64_t)load_le(code + pos, n);
				pos += n;
				in->opcode = op;
				goto finish;
			}
			case 0xc8:              /* enter iw, ib */
				flags = F_IMM16;
				if (avail - pos < 3)
					return -1;
				pos += 1;       /* the ib; the iw is read below */
				break;
			case 0xf6: case 0xf7:
				flags = F_MODRM;
				break;
			default:
				return -1;
			}
		}
		if (op == 0xc2 || op == 0xc3 || op == 0xca || op == 0xcb || op == 0xcf)
			in->branch = X86_BR_RET;
		else if (op == 0xcc || op == 0xcd || op == 0xf4 || op == 0xf1)
			in->branch = X86_BR_OTHER;
	}
	if (flags & F_BAD)
		return -1;
	in->opcode = op;
	if (flags & F_MODRM) {
		if (!decode_modrm(code, avail, &pos, in, rex_r, rex_x, rex_b))
			return -1;
		if (in->map == X86_MAP_1 && (op == 0xf6 || op == 0xf7) && (in->reg & 7) <= 1)
			flags |= op == 0xf6 ? F_IMM8 : F_IMMZ;   /* test r/m, imm */
		if (in->map == X86_MAP_1 && op == 0xff) {
			unsigned r = in->reg & 7;

			if (r == 2 || r == 3)
				in->branch = X86_BR_CALL_IND;
			else if (r == 4 || r == 5)
				in->branch = X86_BR_JMP_IND;
			else if (r == 7)
				return -1;
		}
	}
	unsigned isz = 0;
	if (flags & F_IMM8)
		isz = 1;
	else if (flags & F_IMM16)
		isz = 2;
	else if (flags & F_IMMZ)
		isz = in->p66 ? 2 : 4;
	else if (flags & F_IMMV)
		isz = in->rex_w ? 8 : in->p66 ? 2 : 4;
	if (isz) {
		if (avail - pos < isz)
			return -1;
		in->imm_size = (uint8_t)isz;
		in->imm = sext(load_le(code + pos, isz), isz);
		pos += isz;
	}
finish:
	in->len = (uint8_t)pos;
	if (in->mem) {
		if (in->base == X86_RIP)
			in->mem_target = addr + pos + (uint64_t)in->disp;
		else if (in->base == X86_NOREG && in->index == X86_NOREG)
			in->mem_target = (uint64_t)in->disp;
	}
	return (int)pos;
}

bool x86_insn_writes(const struct x86_insn *in, uint32_t *regs)
{
	uint8_t op = in->opcode;
	uint32_t w = 0;

	if (in->vex || in->lock)
		return false;
	/* A register operand in ModRM.rm is written when mod == 3. */
#define RM_DEST() do { if (in->mod == 3) w |= X86_REGBIT(in->rm); } while (0)
	if (in->map == X86_MAP_1) {
		if (op <= 0x3f && (op & 7) <= 5) {
			unsigned alu = op >> 3;         /* add or adc sbb and sub xor cmp */

			if ((op & 7) <= 3 && !in->has_modrm)
				return false;
			if (alu == 7)                    /* cmp: flags only */
				goto ok;
			if ((op & 7) == 4 || (op & 7) == 5)
				w |= X86_REGBIT(X86_RAX);
			else if (op & 2)
				w |= X86_REGBIT(in->reg);
			else
				RM_DEST();
			goto ok;
		}
		switch (op) {
		case 0x80: case 0x81: case 0x83:
			if ((in->reg & 7) != 7)
				RM_DEST();
			goto ok;
		case 0x84: case 0x85: case 0xa8: case 0xa9:
			goto ok;                         /* test */
		case 0x88: case 0x89:
			RM_DEST();
			goto ok;
		case 0x8a: case 0x8b: case 0x8d: case 0x63:
			w |= X86_REGBIT(in->reg);
			goto ok;
		case 0x90:
			if (in->rex & 1)                 /* xchg r8, rax */
				return false;
			goto ok;
		case 0xb0 ... 0xbf:
			w |= X86_REGBIT((op & 7) | ((in->rex & 1) ? 8 : 0));
			goto ok;
		case 0xc6: case 0xc7:
			if ((in->reg & 7) != 0)
				return false;
			RM_DEST();
			goto ok;
		case 0xf6: case 0xf7:
			if ((in->reg & 7) <= 1)          /* test */
				goto ok;
			if ((in->reg & 7) == 2 || (in->reg & 7) == 3) {   /* not, neg */
				RM_DEST();
				goto ok;
			}
			return false;
		case 0xc0: case 0xc1: case 0xd0: case 0xd1:
			RM_DEST();                       /* shifts by constant */
			goto ok;
		default:
			return false;
		}
	}
	if (in->map == X86_MAP_0F) {
		if (op == 0x1f || op == 0x18 || op == 0x0d)
			goto ok;                         /* nop, prefetch */
		if (op == 0x1e && in->rep_f3 && in->mod == 3 && (in->reg & 7) == 7)
			goto ok;                         /* endbr64/endbr32 */
		if ((op >= 0x40 && op <= 0x4f) || op == 0xb6 || op == 0xb7 || op == 0xbe ||
		    op == 0xbf || op == 0xaf) {
			w |= X86_REGBIT(in->reg);        /* cmov, movzx, movsx, imul */
			goto ok;
		}
		if (op >= 0x90 && op <= 0x9f) {          /* setcc */
			RM_DEST();
			goto ok;
		}
		return false;
	}
	return false;
ok:
#undef RM_DEST
	*regs = w;
	return true;
}

bool x86_uprobe_emulated(const struct x86_insn *in)
{
	if (in->vex)
		return false;
	if (in->map == X86_MAP_1) {
		uint8_t op = in->opcode;

		/* push reg: one byte, or 0x41 + one byte (push r8..r15). */
		if (op >= 0x50 && op <= 0x57)
			return in->len == 1 || (in->len == 2 && in->rex == 0x41);
		/* "prefix* + nop": 0x90 without REX.B (that would be xchg r8, rax). */
		if (op == 0x90)
			return !(in->rex & 1);
		/* jmp/call/jcc rel; the kernel refuses 16-bit operand overrides. */
		if (op == 0xe8 || op == 0xe9 || op == 0xeb || (op >= 0x70 && op <= 0x7f))
			return !in->p66;
		return false;
	}
	if (in->map == X86_MAP_0F && in->opcode >= 0x80 && in->opcode <= 0x8f)
		return !in->p66;
	return false;
}

/* How far the prologue scan looks for an emulated instruction. */
#define PROBE_SCAN_INSNS 16
/* Largest function scanned for branches back into the prologue. */
#define PROBE_SCAN_BYTES (64u * 1024)

uint32_t x86_probe_offset(const uint8_t *code, size_t size, uint64_t addr,
			  uint32_t preserve_mask, bool *emulated)
{
	struct x86_insn in;
	uint32_t off = 0, cand = 0;
	bool found = false;

	*emulated = false;
	if (size == 0 || size > PROBE_SCAN_BYTES)
		goto fallback;
	preserve_mask |= X86_REGBIT(X86_RSP);
	for (int i = 0; i < PROBE_SCAN_INSNS && off < size; i++) {
		uint32_t w;
		int n = x86_decode(code + off, size - off, addr + off, &in);

		if (n < 0)
			goto fallback;
		if (x86_uprobe_emulated(&in)) {
			cand = off;
			found = true;
			break;
		}
		/* Not emulated: the probe cannot sit here; can it sit later?
		 * Only across a simple instruction that leaves rsp and the
		 * arguments alone (control must fall through to the next). */
		if (in.branch != X86_BR_NONE || !x86_insn_writes(&in, &w) || (w & preserve_mask))
			goto fallback;
		off += (uint32_t)n;
	}
	if (!found)
		goto fallback;
	if (cand == 0) {
		*emulated = true;
		return 0;
	}
	/* No branch may land between the entry and the probe (it would hit
	 * the probe twice, or skip it), and a jump table could land anywhere.
	 * A jump through a register is a tail call when that register was
	 * last loaded from memory without an index (a function pointer in a
	 * struct, e.g. the allocator table); jump tables always index. */
	uint32_t plain_load = 0;        /* registers last written by such a load */
	for (off = 0; off < size;) {
		int n = x86_decode(code + off, size - off, addr + off, &in);
		uint32_t w;

		if (n < 0)
			goto fallback;
		if ((in.branch == X86_BR_JMP || in.branch == X86_BR_JCC || in.branch == X86_BR_CALL) &&
		    in.target > addr && in.target <= addr + cand)
			goto fallback;
		if (in.branch == X86_BR_JMP_IND && !in.mem && !(plain_load & X86_REGBIT(in.rm)))
			goto fallback;
		if (!x86_insn_writes(&in, &w))
			w = ~0u;
		plain_load &= ~w;
		if (in.map == X86_MAP_1 && in.opcode == 0x8b && in.rex_w && in.mem &&
		    in.index == X86_NOREG && in.seg == 0)
			plain_load |= X86_REGBIT(in.reg);
		off += (uint32_t)n;
	}
	*emulated = true;
	return cand;
fallback:
	if (x86_decode(code, size, addr, &in) > 0)
		*emulated = x86_uprobe_emulated(&in);
	return 0;
}
