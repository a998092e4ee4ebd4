package quant

// The trials of make_qx_quants (18 inverse scales, each summing over the
// same values) do not depend on one another, so they are computed four at
// a time: on amd64 in the four lanes of an SSE register (qxtrials_amd64.s),
// elsewhere (and with the purego build tag) by qxTrialsGo. Each lane
// performs the C code's IEEE operations for its trial, on the same
// operands, in the same order; no sum is reassociated and no product fused.

// qxTrials sets out[k] and out[4+k] to make_qx_quants's sums sumlx =
// sum(wx[i]*l) and suml2 = sum((w[i]*l)*l) for the inverse scale is[k], the
// level l being nearestInt(is[k]*x[i]) clamped to lo..hi and the sum
// running over i in order; wx holds w*x.
func qxTrials(x, w, wx []float32, is *[4]float32, lo, hi int32, out *[8]float32) {
	w, wx = w[:len(x)], wx[:len(x)]
	if haveQxTrialsAsm {
		qxTrialsAsm(x, w, wx, is, float32(lo), float32(hi), out)
		return
	}
	qxTrialsGo(x, w, wx, is, lo, hi, out)
}

// qxTrialsGo is qxTrials in Go, one trial after another.
func qxTrialsGo(x, w, wx []float32, is *[4]float32, lo, hi int32, out *[8]float32) {
	w, wx = w[:len(x)], wx[:len(x)]
	for k, s := range is {
		var sx, s2 float32
		for i, v := range x {
			f := float32(max(lo, min(hi, nearestInt(float32(s*v)))))
			sx += float32(wx[i] * f)
			s2 += float32(float32(w[i]*f) * f)
		}
		out[k], out[4+k] = sx, s2
	}
}
