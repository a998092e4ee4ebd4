package prune

import (
	"encoding/binary"
	"math"

	"github.com/cogumi/cogumi/model/safetensors"
)

// A magnitude key is the float32 bit pattern of |w|. For non-negative
// floats, bit patterns order exactly as values do, so comparing keys is
// comparing magnitudes without any float arithmetic; -0 and +0 share key 0
// and NaN sorts above infinity (so a NaN weight is pruned last).
//
// Keys for F16 and BF16 are those of the exact float32 value, so tensors of
// different dtypes rank against each other correctly in a global scope.

// keysOf fills dst[i] with the key of element i of raw (little-endian
// elements of dtype d); len(raw) must be len(dst) x the element size.
func keysOf(dst []uint32, raw []byte, d safetensors.DType) {
	switch d {
	case safetensors.F32:
		for i := range dst {
			dst[i] = binary.LittleEndian.Uint32(raw[4*i:]) &^ (1 << 31)
		}
	case safetensors.BF16:
		for i := range dst {
			dst[i] = uint32(binary.LittleEndian.Uint16(raw[2*i:])&0x7fff) << 16
		}
	case safetensors.F16:
		for i := range dst {
			h := binary.LittleEndian.Uint16(raw[2*i:]) & 0x7fff
			dst[i] = math.Float32bits(safetensors.F16ToF32(h))
		}
	}
}

// keyOfF32 is the key of one float32.
func keyOfF32(v float32) uint32 { return math.Float32bits(v) &^ (1 << 31) }

// keyValue turns a key back into the magnitude it stands for.
func keyValue(k uint32) float32 { return math.Float32frombits(k) }

// isZero reports whether element i of raw is +0 or -0.
func isZero(raw []byte, i int, size int) bool {
	switch size {
	case 4:
		return binary.LittleEndian.Uint32(raw[4*i:])&^(1<<31) == 0
	case 2:
		return binary.LittleEndian.Uint16(raw[2*i:])&0x7fff == 0
	}
	return false
}

// countZeros counts the zero elements (either sign) of raw.
func countZeros(raw []byte, size int) int64 {
	var n int64
	for i := 0; i < len(raw)/size; i++ {
		if isZero(raw, i, size) {
			n++
		}
	}
	return n
}

// zeroElem sets element i of raw to +0.
func zeroElem(raw []byte, i, size int) { clear(raw[i*size : (i+1)*size]) }

// cut says which elements to prune, in scan order: every element with a key
// below Key, plus the first Ties elements whose key equals Key. Ties are
// broken by position, so the result is deterministic and exactly the
// requested count.
type cut struct {
	Key  uint32
	Ties int64
}

// selector finds the k-th smallest key of a stream without holding it: a
// radix selection over the key's high 16 bits, then over the low 16 bits of
// the keys in the chosen bucket. Memory is two 64K-entry histograms,
// whatever the size of the stream.
type selector struct {
	hist [1 << 16]int64
}

// find returns the cut that prunes exactly k of the keys produced by scan.
// scan must yield the same keys, in the same order, each time it is called
// (it is called twice). k must lie in [0, number of keys].
func (s *selector) find(k int64, scan func(visit func(keys []uint32)) error) (cut, error) {
	if k <= 0 {
		return cut{Key: 0, Ties: 0}, nil
	}
	clear(s.hist[:])
	if err := scan(func(keys []uint32) {
		for _, key := range keys {
			s.hist[key>>16]++
		}
	}); err != nil {
		return cut{}, err
	}
	hi, below := bucket(s.hist[:], k)
	clear(s.hist[:])
	if err := scan(func(keys []uint32) {
		for _, key := range keys {
			if key>>16 == hi {
				s.hist[key&0xffff]++
			}
		}
	}); err != nil {
		return cut{}, err
	}
	lo, below2 := bucket(s.hist[:], k-below)
	return cut{Key: hi<<16 | lo, Ties: k - below - below2}, nil
}

// bucket returns the first bucket b where the running count reaches k, and
// the count of everything in buckets before b. When k exceeds the total (it
// never should), it returns the last non-empty bucket.
func bucket(hist []int64, k int64) (b uint32, below int64) {
	last := uint32(0)
	for i, n := range hist {
		if n == 0 {
			continue
		}
		if below+n >= k {
			return uint32(i), below
		}
		below += n
		last = uint32(i)
	}
	return last, below - hist[last]
}

// applier zeroes elements according to a cut, carrying the number of ties
// still to prune across chunks and tensors.
type applier struct {
	cut  cut
	ties int64
}

func newApplier(c cut) *applier { return &applier{cut: c, ties: c.Ties} }

// apply zeroes, in raw, the elements whose keys (given) fall under the cut.
func (a *applier) apply(raw []byte, keys []uint32, size int) {
	for i, k := range keys {
		switch {
		case k < a.cut.Key:
			zeroElem(raw, i, size)
		case k == a.cut.Key && a.ties > 0:
			zeroElem(raw, i, size)
			a.ties--
		}
	}
}

// smallestN returns a bit mask of the n smallest keys of a group (at most
// 64), ties going to the earlier key: O(n x m), which for 2:4 is a handful
// of comparisons.
func smallestN(keys []uint32, n int) uint64 {
	var taken uint64
	for range n {
		best := -1
		for j, k := range keys {
			if taken&(1<<j) == 0 && (best < 0 || k < keys[best]) {
				best = j
			}
		}
		taken |= 1 << best
	}
	return taken
}
