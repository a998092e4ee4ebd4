package prune

import "fmt"

// Unstructured zeroes, in place, the Count(sparsity, len(w)) weights of w
// with the smallest magnitude, ties going to the lower index, and returns
// how many it zeroed. It is the in-memory form of per-tensor pruning.
func Unstructured(w []float32, sparsity float64) (int64, error) {
	if _, err := (Options{Sparsity: sparsity}).plan(); err != nil {
		return 0, err
	}
	keys := make([]uint32, len(w))
	for i, v := range w {
		keys[i] = keyOfF32(v)
	}
	k := Count(sparsity, int64(len(w)))
	var s selector
	c, err := s.find(k, func(visit func([]uint32)) error { visit(keys); return nil })
	if err != nil {
		return 0, err
	}
	ties := c.Ties
	for i, key := range keys {
		if key < c.Key || (key == c.Key && ties > 0) {
			if key == c.Key {
				ties--
			}
			w[i] = 0
		}
	}
	return k, nil
}

// SemiStructured zeroes, in place, the n smallest-magnitude weights of every
// group of m consecutive weights of each row (rows of rowLen weights; rowLen
// must be a multiple of m), ties going to the earlier weight.
func SemiStructured(w []float32, rowLen, n, m int) error {
	if _, _, err := ParsePattern(fmt.Sprintf("%d:%d", n, m)); err != nil {
		return err
	}
	if rowLen <= 0 || rowLen%m != 0 || len(w)%rowLen != 0 {
		return fmt.Errorf("prune: %d weights in rows of %d do not split into groups of %d", len(w), rowLen, m)
	}
	keys := make([]uint32, m)
	for g := 0; g < len(w); g += m {
		for j := range keys {
			keys[j] = keyOfF32(w[g+j])
		}
		mask := smallestN(keys, n)
		for j := range keys {
			if mask&(1<<j) != 0 {
				w[g+j] = 0
			}
		}
	}
	return nil
}
