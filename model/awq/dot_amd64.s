#include "textflag.h"

// func dot4x2FMA(x0, x1, x2, x3, e0, e1 *float32, n int, out *[8]float32)
// out = [x0.e0, x0.e1, x1.e0, x1.e1, x2.e0, x2.e1, x3.e0, x3.e1] over n
// values (n a multiple of 8), with AVX2 fused multiply-adds.
TEXT ·dot4x2FMA(SB), NOSPLIT, $0-64
	MOVQ x0+0(FP), AX
	MOVQ x1+8(FP), BX
	MOVQ x2+16(FP), CX
	MOVQ x3+24(FP), DX
	MOVQ e0+32(FP), SI
	MOVQ e1+40(FP), DI
	MOVQ n+48(FP), R8
	MOVQ out+56(FP), R9
	SHLQ $2, R8
	XORQ R10, R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

loop:
	CMPQ R10, R8
	JGE  reduce
	VMOVUPS (SI)(R10*1), Y8
	VMOVUPS (DI)(R10*1), Y9
	VMOVUPS (AX)(R10*1), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VMOVUPS (BX)(R10*1), Y11
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VMOVUPS (CX)(R10*1), Y12
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VMOVUPS (DX)(R10*1), Y13
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ $32, R10
	JMP  loop

reduce:
	// Pairwise horizontal adds: Y0..Y7 -> one Y of 8 sums, in order.
	VHADDPS Y1, Y0, Y0   // [a0+a1 a2+a3 b0+b1 b2+b3 | a4+a5 a6+a7 b4+b5 b6+b7]
	VHADDPS Y3, Y2, Y2
	VHADDPS Y5, Y4, Y4
	VHADDPS Y7, Y6, Y6
	VHADDPS Y2, Y0, Y0   // [A0 B0 C0 D0 | A1 B1 C1 D1] (partial sums of acc 0..3)
	VHADDPS Y6, Y4, Y4   // [E0 F0 G0 H0 | E1 F1 G1 H1]
	VEXTRACTF128 $1, Y0, X8
	VADDPS X8, X0, X0
	VEXTRACTF128 $1, Y4, X9
	VADDPS X9, X4, X4
	VMOVUPS X0, 0(R9)
	VMOVUPS X4, 16(R9)
	VZEROUPPER
	RET
