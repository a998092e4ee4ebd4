//go:build !purego

#include "textflag.h"

// func qxTrialsAsm(x, w, wx []float32, is *[4]float32, lo, hi float32, out *[8]float32)
//
// Per value v = x[i] and lane k (trial k), in this order, as make_qx_quants:
//   t  = is[k]*v + 12582912       (MULPS, ADDPS: nearest_int's two roundings)
//   l  = (bits(t) & 0x7fffff) - 0x400000
//   f  = min(hi, max(lo, float(l)))
//   sx = sx + wx[i]*f             (MULPS, ADDPS)
//   s2 = s2 + (w[i]*f)*f          (MULPS, MULPS, ADDPS)
TEXT ·qxTrialsAsm(SB), NOSPLIT, $0-96
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ w_base+24(FP), DI
	MOVQ wx_base+48(FP), DX
	MOVQ is+72(FP), AX
	MOVUPS (AX), X0
	MOVSS lo+80(FP), X1
	SHUFPS $0, X1, X1
	MOVSS hi+84(FP), X2
	SHUFPS $0, X2, X2
	MOVL $0x4B400000, BX
	MOVL BX, X3
	PSHUFD $0, X3, X3
	MOVL $0x007FFFFF, BX
	MOVL BX, X4
	PSHUFD $0, X4, X4
	MOVL $0x00400000, BX
	MOVL BX, X5
	PSHUFD $0, X5, X5
	XORPS X6, X6
	XORPS X7, X7
	TESTQ CX, CX
	JLE done

loop:
	MOVSS (SI), X8
	SHUFPS $0, X8, X8
	MULPS X0, X8
	ADDPS X3, X8
	PAND X4, X8
	PSUBL X5, X8
	CVTPL2PS X8, X8
	MAXPS X1, X8
	MINPS X2, X8
	MOVSS (DX), X9
	SHUFPS $0, X9, X9
	MULPS X8, X9
	ADDPS X9, X6
	MOVSS (DI), X10
	SHUFPS $0, X10, X10
	MULPS X8, X10
	MULPS X8, X10
	ADDPS X10, X7
	ADDQ $4, SI
	ADDQ $4, DI
	ADDQ $4, DX
	DECQ CX
	JNZ loop

done:
	MOVQ out+88(FP), AX
	MOVUPS X6, (AX)
	MOVUPS X7, 16(AX)
	RET
