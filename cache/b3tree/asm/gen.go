// Command asm generates cache/b3tree's AVX-512 BLAKE3 kernels
// (../compress_amd64.s): go run . -out ../compress_amd64.s -stubs /dev/null -pkg b3tree
//
// It is lukechampine.com/blake3 v1.5.1's avo generator for its AVX-512
// chunk kernel (MIT licence, Copyright (c) 2020 Luke Champine), changed
// where issue 21 measured the gap to b3sum: the message words of the 16
// chunks are loaded as 16 rows and transposed in registers (as the BLAKE3
// team's AVX-512 code does) instead of with 16 gathers per block, and a
// second function compresses 16 parent nodes at once (the 2 KiB of
// chaining values are the same layout: 16 rows of 64 bytes).
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
	iv  Mem
	seq Mem
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
}

// loadTransposed loads 16 rows of 64 bytes, row j at base+j*stride, and
// returns 16 vectors whose lane j is word k of row j (vector k): a 16x16
// transpose of 32-bit words in four steps (32-bit, 64-bit, then two
// 128-bit interleaves).
//
// With prefetch > 0, each row's bytes that far ahead are prefetched, as in
// the BLAKE3 team's code: the rows are 16 streams (16 chunks of the
// mapping), which the hardware prefetcher alone follows too late.
func loadTransposed(base Mem, stride, prefetch int) [16]VecVirtual {
	var r [16]VecVirtual
	for j := range r {
		if prefetch > 0 {
			PREFETCHT0(base.Offset(j*stride + prefetch))
		}
		r[j] = ZMM()
		VMOVDQU32(base.Offset(j*stride), r[j])
	}
	// a[i][0], a[i][1]: rows 2i and 2i+1 interleaved by words; per 128-bit
	// lane L, a[i][h] holds words 4L+2h and 4L+2h+1 of both rows.
	var a [8][2]VecVirtual
	for i := range a {
		a[i][0], a[i][1] = ZMM(), ZMM()
		VPUNPCKLDQ(r[2*i+1], r[2*i], a[i][0])
		VPUNPCKHDQ(r[2*i+1], r[2*i], a[i][1])
	}
	// b[t][m]: per 128-bit lane L, word 4L+t of rows 4m..4m+3.
	var b [4][4]VecVirtual
	for m := 0; m < 4; m++ {
		for h := 0; h < 2; h++ {
			lo, hi := ZMM(), ZMM()
			VPUNPCKLQDQ(a[2*m+1][h], a[2*m][h], lo)
			VPUNPCKHQDQ(a[2*m+1][h], a[2*m][h], hi)
			b[2*h][m], b[2*h+1][m] = lo, hi
		}
	}
	// For each t, a 4x4 transpose of 128-bit lanes: out[4L+t] lane m is
	// b[t][m] lane L.
	var out [16]VecVirtual
	for t := 0; t < 4; t++ {
		var c [4]VecVirtual
		for p := 0; p < 2; p++ {
			c[2*p], c[2*p+1] = ZMM(), ZMM()
			VSHUFI32X4(Imm(0x88), b[t][2*p+1], b[t][2*p], c[2*p])
			VSHUFI32X4(Imm(0xdd), b[t][2*p+1], b[t][2*p], c[2*p+1])
		}
		for q := 0; q < 2; q++ {
			lo, hi := ZMM(), ZMM()
			VSHUFI32X4(Imm(0x88), c[2+q], c[q], lo)
			VSHUFI32X4(Imm(0xdd), c[2+q], c[q], hi)
			out[4*q+t], out[4*(q+2)+t] = lo, hi
		}
	}
	return out
}

// storeTransposed writes the 8 chaining-value vectors (lane j: row j) as
// 16 rows of 32 bytes at base.
func storeTransposed(vs []VecVirtual, base Mem) {
	stride := ZMM()
	VMOVDQU32(globals.seq, stride)
	VPSLLD(Imm(5), stride, stride) // 32
	for i, v := range vs[:8] {
		KXNORD(K1, K1, K1)
		VPSCATTERDD(v, K1, base.Offset(i*4).Idx(stride, 1))
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
	mv := loadTransposed(buf, 1024, 256)
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

	mv := loadTransposed(cvs, 64, 0)
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
	g := func(a, b, c, d, mx, my VecVirtual) {
		VPADDD(a, b, a)
		VPADDD(mx, a, a)
		VPXORD(d, a, d)
		VPRORD(Imm(16), d, d)
		VPADDD(c, d, c)
		VPXORD(b, c, b)
		VPRORD(Imm(12), b, b)
		VPADDD(a, b, a)
		VPADDD(my, a, a)
		VPXORD(d, a, d)
		VPRORD(Imm(8), d, d)
		VPADDD(c, d, c)
		VPXORD(b, c, b)
		VPRORD(Imm(7), b, b)
	}
	for i := 0; i < 7; i++ {
		Comment(fmt.Sprintf("Round %v", i+1))
		g(vs[0], vs[4], vs[8], vs[12], mv[0], mv[1])
		g(vs[1], vs[5], vs[9], vs[13], mv[2], mv[3])
		g(vs[2], vs[6], vs[10], vs[14], mv[4], mv[5])
		g(vs[3], vs[7], vs[11], vs[15], mv[6], mv[7])
		g(vs[0], vs[5], vs[10], vs[15], mv[8], mv[9])
		g(vs[1], vs[6], vs[11], vs[12], mv[10], mv[11])
		g(vs[2], vs[7], vs[8], vs[13], mv[12], mv[13])
		g(vs[3], vs[4], vs[9], vs[14], mv[14], mv[15])
		mv = [16]VecVirtual{
			mv[2], mv[6], mv[3], mv[10],
			mv[7], mv[0], mv[4], mv[13],
			mv[1], mv[11], mv[12], mv[5],
			mv[9], mv[14], mv[15], mv[8],
		}
	}
}
