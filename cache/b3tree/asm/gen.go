// Command asm generates cache/b3tree's AVX-512 BLAKE3 kernels
// (../compress_amd64.s): go run . -out ../compress_amd64.s -stubs /dev/null -pkg b3tree
//
// It is lukechampine.com/blake3 v1.5.1's avo generator for its AVX-512
// chunk kernel (MIT licence, Copyright (c) 2020 Luke Champine), changed
// where issue 21 measured the gap to b3sum: the message words of the 16
// chunks are loaded as 16 rows and transposed in registers, the way the
// BLAKE3 team's AVX-512 code does it (loadHalves), instead of with 16
// gathers per block; the chaining values are transposed back and stored
// whole instead of scattered; the four G functions of each half round are
// interleaved instruction by instruction; the rows are prefetched two
// blocks ahead, and in a call's last two blocks the next 16 chunks' first
// blocks; and a second function compresses 16 parent nodes at once (the
// 2 KiB of chaining values are the same layout: 16 rows of 64 bytes).
//
// Measured on one core of the 2-core Xeon (Sapphire Rapids class) where
// issue 21 was filed, in thread CPU time per GiB: 512 KiB subtrees in L2,
// 198 ms before (a 16x16 transpose of whole rows: 64 shuffles per block,
// all on port 5) and 171 ms after (48 shuffles and 16 inserts; the C
// reference, BLAKE3 1.8.6's blake3_avx512_x86-64_unix.S, 172 ms); a
// mapped 1 GiB file in the page cache (page faults included), 300 ms before, 238 ms after, the C
// reference 260 ms (its prefetch does not reach the next 16 chunks).
//
// It lives in its own module so that avo is not a dependency of cogumi.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	genGlobals()
	genCompressChunks()
	genCompressParents()
	Generate()
}

var globals struct {
	iv     Mem
	seq    Mem
	index0 Mem // vpermt2d indices: 128-bit lanes 0 and 2 of each table
	index1 Mem // lanes 1 and 3
}

func genGlobals() {
	globals.iv = GLOBL("iv", RODATA|NOPTR)
	for i, w := range []uint32{0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A} {
		DATA(i*4, U32(w))
	}
	globals.seq = GLOBL("seq", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(i*4, U32(i))
	}
	globals.index0 = GLOBL("index0", RODATA|NOPTR)
	for i, w := range []uint32{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27} {
		DATA(i*4, U32(w))
	}
	globals.index1 = GLOBL("index1", RODATA|NOPTR)
	for i, w := range []uint32{4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31} {
		DATA(i*4, U32(w))
	}
}

// loadHalves loads 16 rows of 64 bytes, row j at base+j*stride, and
// returns 16 vectors whose lane j is word k of row j (vector k), as the
// BLAKE3 team's AVX-512 code does it: each half row (8 words) of rows j
// and j+8 is loaded into one vector (a 256-bit broadcast load, which avo
// sees as a whole write, and an insert), then interleaved by 64-bit words,
// by shufps and by two-table permutes. Per 8 words that is 8 inserts
// (which issue on either vector port) and 24 shuffles, where a transpose
// of whole rows takes 32 shuffles, all on port 5, the port the rounds
// also need: that cost 16% of the chunk kernel's time.
//
// With prefetch, the 16 rows at prefetch+j*stride are prefetched: the rows
// are 16 streams (16 chunks of a mapping, in 4 KiB pages that need not be
// adjacent), which the hardware prefetcher alone follows too late.
func loadHalves(base Mem, stride int, prefetch *Mem) [16]VecVirtual {
	var out [16]VecVirtual
	for half := 0; half < 2; half++ {
		off := half * 32
		// p[k]: rows 2k and 2k+1 (low 256 bits) with rows 2k+8 and 2k+9
		// (high), interleaved by 64-bit words: p[k][0] words 0,1 (lane 0),
		// 4,5 (lane 1) of each; p[k][1] words 2,3 and 6,7.
		var p [4][2]VecVirtual
		for k := range p {
			var r [2]VecVirtual
			for e := range r {
				row := 2*k + e
				r[e] = ZMM()
				VBROADCASTI64X4(base.Offset(row*stride+off), r[e])
				VINSERTI64X4(Imm(1), base.Offset((row+8)*stride+off), r[e], r[e])
			}
			p[k][0], p[k][1] = ZMM(), ZMM()
			VPUNPCKLQDQ(r[1], r[0], p[k][0])
			VPUNPCKHQDQ(r[1], r[0], p[k][1])
		}
		if prefetch != nil && half == 1 {
			for j := 0; j < 16; j++ {
				PREFETCHT0(prefetch.Offset(j * stride))
			}
		}
		// For word pair h (words 2h', 2h'+1 of each 128-bit half), shufps
		// picks word w of rows 0-3 (from p[0], p[1]) and of rows 4-7 (p[2],
		// p[3]), with rows 8-15 in lanes 2 and 3; the permutes gather
		// lanes 0 and 2 (word w) or 1 and 3 (word w+4).
		for h := 0; h < 2; h++ {
			for odd := 0; odd < 2; odd++ {
				imm := uint64(0x88)
				if odd == 1 {
					imm = 0xdd
				}
				lo, hi := ZMM(), ZMM()
				VSHUFPS(Imm(imm), p[1][h], p[0][h], lo)
				VSHUFPS(Imm(imm), p[3][h], p[2][h], hi)
				w := 8*half + 2*h + odd
				a, b := ZMM(), ZMM()
				VMOVDQU32(globals.index0, a)
				VMOVDQU32(globals.index1, b)
				VPERMI2D(hi, lo, a)
				VPERMI2D(hi, lo, b)
				out[w], out[w+4] = a, b
			}
		}
	}
	return out
}

// storeTransposed writes the 8 chaining-value vectors (lane j: row j) as
// 16 rows of 32 bytes at base: an 8x16 transpose in registers (32-bit,
// 64-bit, then two 128-bit interleaves), then 8 contiguous stores, as the
// BLAKE3 team's code does (a scatter per vector costs more).
func storeTransposed(vs []VecVirtual, base Mem) {
	// a[i][h]: per 128-bit lane L, words 4L+2h, 4L+2h+1 of vectors 2i, 2i+1
	// interleaved.
	var a [4][2]VecVirtual
	for i := range a {
		a[i][0], a[i][1] = ZMM(), ZMM()
		VPUNPCKLDQ(vs[2*i+1], vs[2*i], a[i][0])
		VPUNPCKHDQ(vs[2*i+1], vs[2*i], a[i][1])
	}
	// b[h][m]: per lane L, words 4h..4h+3 of row 4L+m.
	var b [2][4]VecVirtual
	for h := 0; h < 2; h++ {
		for q := 0; q < 2; q++ {
			lo, hi := ZMM(), ZMM()
			VPUNPCKLQDQ(a[2*h+1][q], a[2*h][q], lo)
			VPUNPCKHQDQ(a[2*h+1][q], a[2*h][q], hi)
			b[h][2*q], b[h][2*q+1] = lo, hi
		}
	}
	// c[m][0]: the low halves of rows m and m+8, then their high halves;
	// c[m][1]: the same for rows m+4 and m+12.
	var c [4][2]VecVirtual
	for m := 0; m < 4; m++ {
		c[m][0], c[m][1] = ZMM(), ZMM()
		VSHUFI32X4(Imm(0x88), b[1][m], b[0][m], c[m][0])
		VSHUFI32X4(Imm(0xdd), b[1][m], b[0][m], c[m][1])
	}
	// Rows 2k and 2k+1 of the output, k = 0..7.
	for s := 0; s < 2; s++ {
		for p := 0; p < 2; p++ {
			lo, hi := ZMM(), ZMM()
			VSHUFI32X4(Imm(0x88), c[2*p+1][s], c[2*p][s], lo)
			VSHUFI32X4(Imm(0xdd), c[2*p+1][s], c[2*p][s], hi)
			// lo: rows 4s+2p, 4s+2p+1; hi: rows 8+4s+2p, 8+4s+2p+1.
			VMOVDQU32(lo, base.Offset((4*s+2*p)*32))
			VMOVDQU32(hi, base.Offset((8+4*s+2*p)*32))
		}
	}
}

func genCompressChunks() {
	TEXT("compressChunksAVX512", NOSPLIT, "func(cvs *[16][8]uint32, buf *[16384]byte, key *[8]uint32, counter uint64, flags uint32)")
	Doc("compressChunksAVX512 compresses 16 whole chunks, the first numbered counter, into their chaining values.")
	cvs := Mem{Base: Load(Param("cvs"), GP64())}
	buf := Mem{Base: Load(Param("buf"), GP64())}
	key := Mem{Base: Load(Param("key"), GP64())}
	counter, _ := Param("counter").Resolve()
	flags, _ := Param("flags").Resolve()

	var vs [16]VecVirtual
	for i := range vs {
		vs[i] = ZMM()
	}

	Comment("Counters of the 16 chunks, low and high words")
	counterLo := AllocLocal(64)
	counterHi := AllocLocal(64)
	ctr := GP64()
	MOVQ(counter.Addr, ctr)
	VPBROADCASTD(ctr.As32(), vs[0])
	VPADDD(globals.seq, vs[0], vs[0])
	VPCMPUD(Imm(1), globals.seq, vs[0], K1)
	SHRQ(Imm(32), ctr)
	VPBROADCASTD(ctr.As32(), vs[1])
	VPADDD_BCST(globals.seq.Offset(4), vs[1], K1, vs[1])
	VMOVDQU32(vs[0], counterLo)
	VMOVDQU32(vs[1], counterHi)

	Comment("Flags of each block: CHUNK_START on the first, CHUNK_END on the last")
	chunkFlags := AllocLocal(16 * 4)
	f := GP32()
	MOVL(flags.Addr, f)
	VPBROADCASTD(f, vs[0])
	VMOVDQU32(vs[0], chunkFlags)
	ORL(Imm(1), chunkFlags.Offset(0*4))
	ORL(Imm(2), chunkFlags.Offset(15*4))

	Comment("Load key")
	for i := 0; i < 8; i++ {
		VPBROADCASTD(key.Offset(i*4), vs[i])
	}

	loop := GP64()
	XORQ(loop, loop)
	Label("loop")

	Comment("Load block i of each chunk, transposed")
	Comment("Prefetch 2 blocks ahead; in the last 2 blocks, the next 16 chunks' first blocks")
	pf := Mem{Base: GP64()}
	alt := GP64()
	LEAQ(buf.Offset(128), pf.Base)
	LEAQ(buf.Offset(128+15*1024), alt)
	CMPQ(loop, U32(14))
	CMOVQCC(alt, pf.Base)
	mv := loadHalves(buf, 1024, &pf)
	ADDQ(Imm(64), buf.Base)

	Comment("Reload state vectors (other than CVs)")
	for i := 0; i < 4; i++ {
		VPBROADCASTD(globals.iv.Offset(i*4), vs[8+i])
	}
	VMOVDQU32(counterLo, vs[12])
	VMOVDQU32(counterHi, vs[13])
	VPBROADCASTD(globals.seq.Offset(4), vs[14])
	VPSLLD(Imm(6), vs[14], vs[14]) // 64
	VPBROADCASTD(chunkFlags.Idx(loop, 4), vs[15])

	performRounds(vs, mv)

	Comment("Finalize CVs")
	for i := range vs[:8] {
		VPXORD(vs[i], vs[i+8], vs[i])
	}

	INCQ(loop)
	CMPQ(loop, U32(16))
	JNE(LabelRef("loop"))

	Comment("Store CVs")
	storeTransposed(vs[:8], cvs)
	VZEROUPPER()
	RET()
}

func genCompressParents() {
	TEXT("compressParentsAVX512", NOSPLIT, "func(out *[16][8]uint32, cvs *[32][8]uint32, key *[8]uint32, flags uint32)")
	Doc("compressParentsAVX512 compresses the 16 parent nodes of the 16 pairs of chaining values in cvs into out.")
	out := Mem{Base: Load(Param("out"), GP64())}
	cvs := Mem{Base: Load(Param("cvs"), GP64())}
	key := Mem{Base: Load(Param("key"), GP64())}
	flags, _ := Param("flags").Resolve()

	mv := loadHalves(cvs, 64, nil)
	var vs [16]VecVirtual
	for i := range vs {
		vs[i] = ZMM()
	}
	for i := 0; i < 8; i++ {
		VPBROADCASTD(key.Offset(i*4), vs[i])
	}
	for i := 0; i < 4; i++ {
		VPBROADCASTD(globals.iv.Offset(i*4), vs[8+i])
	}
	VPXORD(vs[12], vs[12], vs[12]) // counter 0
	VPXORD(vs[13], vs[13], vs[13])
	VPBROADCASTD(globals.seq.Offset(4), vs[14])
	VPSLLD(Imm(6), vs[14], vs[14]) // block length 64
	f := GP32()
	MOVL(flags.Addr, f)
	ORL(Imm(4), f) // FlagParent
	VPBROADCASTD(f, vs[15])

	performRounds(vs, mv)
	for i := range vs[:8] {
		VPXORD(vs[i], vs[i+8], vs[i])
	}
	storeTransposed(vs[:8], out)
	VZEROUPPER()
	RET()
}

func performRounds(vs, mv [16]VecVirtual) {
	// g4 is the G function on four columns (or diagonals) at once,
	// interleaved step by step, as the BLAKE3 team's code does: the four
	// are independent, so each step's four instructions issue together.
	g4 := func(a, b, c, d, mx, my [4]VecVirtual) {
		step := func(op func(x, y, z Op), x, y [4]VecVirtual) {
			for i := range a {
				op(x[i], y[i], y[i])
			}
		}
		ror := func(n uint64, x [4]VecVirtual) {
			for i := range x {
				VPRORD(Imm(n), x[i], x[i])
			}
		}
		add := func(x, y, z Op) { VPADDD(x, y, z) }
		xor := func(x, y, z Op) { VPXORD(x, y, z) }
		step(add, mx, a)
		step(add, b, a)
		step(xor, a, d)
		ror(16, d)
		step(add, d, c)
		step(xor, c, b)
		ror(12, b)
		step(add, my, a)
		step(add, b, a)
		step(xor, a, d)
		ror(8, d)
		step(add, d, c)
		step(xor, c, b)
		ror(7, b)
	}
	v := func(i ...int) (r [4]VecVirtual) {
		for j, k := range i {
			r[j] = vs[k]
		}
		return r
	}
	for i := 0; i < 7; i++ {
		Comment(fmt.Sprintf("Round %v", i+1))
		m := func(i ...int) (r [4]VecVirtual) {
			for j, k := range i {
				r[j] = mv[k]
			}
			return r
		}
		g4(v(0, 1, 2, 3), v(4, 5, 6, 7), v(8, 9, 10, 11), v(12, 13, 14, 15), m(0, 2, 4, 6), m(1, 3, 5, 7))
		g4(v(0, 1, 2, 3), v(5, 6, 7, 4), v(10, 11, 8, 9), v(15, 12, 13, 14), m(8, 10, 12, 14), m(9, 11, 13, 15))
		mv = [16]VecVirtual{
			mv[2], mv[6], mv[3], mv[10],
			mv[7], mv[0], mv[4], mv[13],
			mv[1], mv[11], mv[12], mv[5],
			mv[9], mv[14], mv[15], mv[8],
		}
	}
}
