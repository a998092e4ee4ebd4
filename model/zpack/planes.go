package zpack

import (
	"encoding/binary"
	"errors"
)

// frameKind says how a container frame codes its bytes.
type frameKind uint8

const (
	kindEnd   frameKind = 0 // end of frames; the checksum was in the header
	kindPlain frameKind = 1 // one plane: the bytes themselves
	kindBF16  frameKind = 2 // bfloat16 values: exponent, sign+mantissa
	kindF16   frameKind = 3 // binary16 values: exponent, mantissa low byte, sign+mantissa high bits
)

func (k frameKind) String() string {
	switch k {
	case kindEnd:
		return "end"
	case kindPlain:
		return "plain"
	case kindBF16:
		return "bf16-planes"
	case kindF16:
		return "f16-planes"
	default:
		return "unknown"
	}
}

// planeLens returns the length of each plane of a frame of kind k that
// restores n original bytes, or ok false when k is unknown or n does not
// fit the kind (16-bit kinds need an even n).
func planeLens(k frameKind, n int) (lens []int, ok bool) {
	switch k {
	case kindPlain:
		return []int{n}, true
	case kindBF16:
		if n%2 != 0 {
			return nil, false
		}
		return []int{n / 2, n / 2}, true
	case kindF16:
		if n%2 != 0 {
			return nil, false
		}
		v := n / 2
		return []int{v, v, (3*v + 7) / 8}, true
	default:
		return nil, false
	}
}

// planeRole says what a plane holds, which decides how it is coded.
type planeRole int

const (
	roleBytes    planeRole = iota // a plain frame's bytes
	roleExponent                  // few symbols, no matches worth finding
	roleMantissa                  // sign and mantissa bits, nearly random unless pruned
)

// roleOf returns the role of plane i of a frame of kind k.
func roleOf(k frameKind, i int) planeRole {
	switch {
	case k == kindPlain:
		return roleBytes
	case i == 0:
		return roleExponent
	default:
		return roleMantissa
	}
}

// splitBF16 regroups bfloat16 values (sign 1, exponent 8, mantissa 7 bits,
// little-endian) into an exponent plane (one byte per value: the eight
// exponent bits) and a sign+mantissa plane (sign in bit 7, mantissa in bits
// 6..0). exp and sm must hold len(raw)/2 bytes.
//
// Per value, with lo and hi the value's two bytes: exp = hi<<1 | lo>>7 and
// sm = hi&0x80 | lo&0x7f. The loop does this for 8 values at a time in
// uint64 lanes, after gathering the 8 low and 8 high bytes.
func splitBF16(raw, exp, sm []byte) {
	n := len(raw) / 2
	exp, sm = exp[:n], sm[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		a := binary.LittleEndian.Uint64(raw[2*i:])
		b := binary.LittleEndian.Uint64(raw[2*i+8:])
		lo := gather(a) | gather(b)<<32
		hi := gather(a>>8) | gather(b>>8)<<32
		binary.LittleEndian.PutUint64(exp[i:], hi<<1&0xfefefefefefefefe|lo>>7&0x0101010101010101)
		binary.LittleEndian.PutUint64(sm[i:], hi&0x8080808080808080|lo&0x7f7f7f7f7f7f7f7f)
	}
	for ; i < n; i++ {
		lo, hi := raw[2*i], raw[2*i+1]
		exp[i] = hi<<1 | lo>>7
		sm[i] = hi&0x80 | lo&0x7f
	}
}

// mergeBF16 is the inverse of splitBF16: lo = exp<<7 | sm&0x7f and
// hi = sm&0x80 | exp>>1.
func mergeBF16(raw, exp, sm []byte) {
	n := len(raw) / 2
	exp, sm = exp[:n], sm[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		e := binary.LittleEndian.Uint64(exp[i:])
		s := binary.LittleEndian.Uint64(sm[i:])
		lo := e<<7&0x8080808080808080 | s&0x7f7f7f7f7f7f7f7f
		hi := s&0x8080808080808080 | e>>1&0x7f7f7f7f7f7f7f7f
		binary.LittleEndian.PutUint64(raw[2*i:], spread(uint32(lo))|spread(uint32(hi))<<8)
		binary.LittleEndian.PutUint64(raw[2*i+8:], spread(uint32(lo>>32))|spread(uint32(hi>>32))<<8)
	}
	for ; i < n; i++ {
		e, s := exp[i], sm[i]
		raw[2*i] = e<<7 | s&0x7f
		raw[2*i+1] = s&0x80 | e>>1
	}
}

// gather packs the even bytes of x (bytes 0, 2, 4, 6) into a uint32.
func gather(x uint64) uint64 {
	x &= 0x00ff00ff00ff00ff
	x = (x | x>>8) & 0x0000ffff0000ffff
	return (x | x>>16) & 0x00000000ffffffff
}

// spread moves the 4 bytes of x to the even bytes of a uint64.
func spread(x uint32) uint64 {
	y := uint64(x)
	y = (y | y<<16) & 0x0000ffff0000ffff
	return (y | y<<8) & 0x00ff00ff00ff00ff
}

// splitF16 regroups binary16 values (sign 1, exponent 5, mantissa 10 bits,
// little-endian) into three planes:
//
//   - exp: one byte per value holding the 5 exponent bits (0-31), left to
//     the entropy coder, which spends about 2-3 bits on it;
//   - lo: one byte per value, mantissa bits 7..0 (nearly random);
//   - hi: the 3 remaining bits per value (sign, mantissa bits 9 and 8),
//     bit-packed: value j of each group of 8 occupies bits 3(j%8)..3(j%8)+2
//     of a little-endian 24-bit word, so 8 values take 3 bytes; the last
//     group is zero-padded to whole bytes.
//
// exp and lo must hold len(raw)/2 bytes, hi (3*len(raw)/2+7)/8.
func splitF16(raw, exp, lo, hi []byte) {
	n := len(raw) / 2
	exp, lo = exp[:n], lo[:n]
	i := 0
	for ; i+8 <= n; i += 8 { // 8 values, whole 3-byte groups of hi
		a := binary.LittleEndian.Uint64(raw[2*i:])
		b := binary.LittleEndian.Uint64(raw[2*i+8:])
		l := gather(a) | gather(b)<<32
		h := gather(a>>8) | gather(b>>8)<<32
		binary.LittleEndian.PutUint64(exp[i:], h>>2&0x1f1f1f1f1f1f1f1f)
		binary.LittleEndian.PutUint64(lo[i:], l)
		x := pack3(h>>5&0x0404040404040404 | h&0x0303030303030303)
		j := 3 * i / 8
		hi[j], hi[j+1], hi[j+2] = byte(x), byte(x>>8), byte(x>>16)
	}
	var acc uint32
	var bits uint
	h := 3 * i / 8
	for ; i < n; i++ {
		v := binary.LittleEndian.Uint16(raw[2*i:])
		exp[i] = byte(v>>10) & 0x1f
		lo[i] = byte(v)
		acc |= uint32(v>>15)<<(bits+2) | uint32(v>>8&3)<<bits
		bits += 3
	}
	for bits > 0 {
		hi[h] = byte(acc)
		h++
		acc >>= 8
		bits -= min(bits, 8)
	}
}

// pack3 packs the low 3 bits of each byte of x into 24 bits, byte j to
// bits 3j..3j+2.
func pack3(x uint64) uint32 {
	y := x&0x0007000700070007 | x>>5&0x0038003800380038
	z := y&0x0000003f0000003f | y>>10&0x00000fc000000fc0
	return uint32(z&0xfff | z>>20&0xfff000)
}

// unpack3 is the inverse of pack3.
func unpack3(w uint32) uint64 {
	z := uint64(w)&0xfff | (uint64(w)&0xfff000)<<20
	y := z&0x0000003f0000003f | (z&0x00000fc000000fc0)<<10
	return y&0x0007000700070007 | (y&0x0038003800380038)<<5
}

var errF16Exponent = errors.New("f16 exponent plane holds a value above 31")

// mergeF16 is the inverse of splitF16. It reports corrupt input (an
// exponent byte above 31) instead of silently masking it.
func mergeF16(raw, exp, lo, hi []byte) error {
	n := len(raw) / 2
	exp, lo = exp[:n], lo[:n]
	var bad uint64
	i := 0
	for ; i+8 <= n; i += 8 {
		e := binary.LittleEndian.Uint64(exp[i:])
		l := binary.LittleEndian.Uint64(lo[i:])
		j := 3 * i / 8
		x := unpack3(uint32(hi[j]) | uint32(hi[j+1])<<8 | uint32(hi[j+2])<<16)
		bad |= e
		h := (x&0x0404040404040404)<<5 | (e&0x1f1f1f1f1f1f1f1f)<<2 | x&0x0303030303030303
		binary.LittleEndian.PutUint64(raw[2*i:], spread(uint32(l))|spread(uint32(h))<<8)
		binary.LittleEndian.PutUint64(raw[2*i+8:], spread(uint32(l>>32))|spread(uint32(h>>32))<<8)
	}
	var acc uint32
	var bits uint
	h := 3 * i / 8
	for ; i < n; i++ {
		if bits == 0 {
			acc = uint32(hi[h])
			if h+1 < len(hi) {
				acc |= uint32(hi[h+1]) << 8
			}
			if h+2 < len(hi) {
				acc |= uint32(hi[h+2]) << 16
			}
			h += 3
			bits = 24
		}
		e := exp[i]
		bad |= uint64(e)
		x := uint16(acc & 7)
		acc >>= 3
		bits -= 3
		v := (x>>2)<<15 | uint16(e&0x1f)<<10 | (x&3)<<8 | uint16(lo[i])
		binary.LittleEndian.PutUint16(raw[2*i:], v)
	}
	if bad&0xe0e0e0e0e0e0e0e0 != 0 {
		return errF16Exponent
	}
	return nil
}
