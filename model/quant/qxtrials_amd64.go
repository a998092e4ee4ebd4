//go:build !purego

package quant

// haveQxTrialsAsm: amd64 has SSE2, all that qxTrialsAsm uses.
const haveQxTrialsAsm = true

// qxTrialsAsm is qxTrials in SSE2 assembly, one trial a lane: len(w) and
// len(wx) are at least len(x); lo and hi are the clamp bounds as floats.
// The lanes clamp after the conversion to float, which for the integers
// nearestInt gives (|l| <= 2^22, exact as floats) is the same as clamping
// before it.
//
//go:noescape
func qxTrialsAsm(x, w, wx []float32, is *[4]float32, lo, hi float32, out *[8]float32)
