package gguf

import (
	"fmt"
	"strconv"
	"strings"
)

// The metadata keys of a split GGUF (llama.cpp's LLM_KV_SPLIT_*): every
// shard has them, last, in the order split.no, split.tensors.count,
// split.count (llama-gguf-split's); the first shard also has all the
// model's other keys, before them.
const (
	KeySplitNo           = "split.no"            // uint16, from 0
	KeySplitCount        = "split.count"         // uint16
	KeySplitTensorsCount = "split.tensors.count" // int32, over all shards
)

// SplitPath is llama.cpp's llama_split_path: the file of shard no (from 0)
// of count, "<prefix>-00001-of-00003.gguf".
func SplitPath(prefix string, no, count int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, no+1, count)
}

// SplitLimit says where llama-gguf-split --split cuts: after MaxTensors
// tensors (--split-max-tensors), or before a tensor that would take the
// shard's tensor data, each tensor padded to DefaultAlignment, over
// MaxBytes (--split-max-size). One of the two is set.
type SplitLimit struct {
	MaxBytes   uint64
	MaxTensors int
}

// Split assigns tensors of the given data sizes, in file order, to shards
// as llama-gguf-split's split_strategy does, and returns the index of each
// shard's first tensor. Like llama-gguf-split, it fails when the first
// tensor alone exceeds MaxBytes (the first shard would hold none); a later
// tensor over the limit gets a shard of its own.
func Split(sizes []uint64, lim SplitLimit) ([]int, error) {
	if (lim.MaxBytes == 0) == (lim.MaxTensors <= 0) {
		return nil, fmt.Errorf("gguf: split by size or by tensor count, one of the two")
	}
	starts := []int{0}
	var cur uint64
	for i, s := range sizes {
		n, _ := alignUp(s, DefaultAlignment)
		next := cur + n
		var cut bool
		if lim.MaxBytes > 0 {
			cut = next > lim.MaxBytes
		} else {
			cut = i > 0 && i%lim.MaxTensors == 0
		}
		if !cut {
			cur = next
			continue
		}
		if i == starts[len(starts)-1] {
			return nil, fmt.Errorf("gguf: tensor %d alone (%d bytes) is over the split size of %d bytes, which would leave a shard without tensors", i, s, lim.MaxBytes)
		}
		starts = append(starts, i)
		cur = n
	}
	if len(starts) > 0xffff {
		return nil, fmt.Errorf("gguf: %d shards: split.count is a uint16", len(starts))
	}
	return starts, nil
}

// ParseSplitSize reads a --split-max-size value as llama-gguf-split does,
// in decimal units: "500M" is 500*10^6 bytes, "2G" 2*10^9. A trailing B
// ("2GB") is accepted too.
func ParseSplitSize(s string) (uint64, error) {
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	mult := uint64(0)
	switch {
	case strings.HasSuffix(t, "M"):
		mult = 1000 * 1000
	case strings.HasSuffix(t, "G"):
		mult = 1000 * 1000 * 1000
	}
	n, err := strconv.ParseUint(t[:max(0, len(t)-1)], 10, 32)
	if mult == 0 || err != nil || n == 0 {
		return 0, fmt.Errorf("split size %q: want a positive whole number of megabytes or gigabytes, such as \"500M\" or \"2G\" (10^6 and 10^9 bytes, as llama-gguf-split --split-max-size)", s)
	}
	return n * mult, nil
}

// SplitFirst returns the first shard when paths are exactly the shards of
// one split file (<prefix>-00001-of-0000N.gguf ... in one directory, all N
// of them, in any order): the file llama.cpp loads the model from.
func SplitFirst(paths []string) (string, bool) {
	if len(paths) == 0 {
		return "", false
	}
	type shard struct {
		prefix    string
		no, count int
	}
	parse := func(p string) (shard, bool) {
		rest, ok := strings.CutSuffix(p, ".gguf")
		// <prefix>-NNNNN-of-NNNNN
		n := len(rest)
		if !ok || n < 16 || rest[n-15] != '-' || rest[n-9:n-5] != "-of-" {
			return shard{}, false
		}
		no, err1 := strconv.Atoi(rest[n-14 : n-9])
		count, err2 := strconv.Atoi(rest[n-5:])
		if err1 != nil || err2 != nil || no < 1 || no > count {
			return shard{}, false
		}
		return shard{rest[:n-15], no, count}, true
	}
	seen := map[int]bool{}
	var first string
	var set shard
	for i, p := range paths {
		s, ok := parse(p)
		if !ok || (i > 0 && (s.prefix != set.prefix || s.count != set.count)) || seen[s.no] {
			return "", false
		}
		set, seen[s.no] = s, true
		if s.no == 1 {
			first = p
		}
	}
	if len(seen) != set.count {
		return "", false
	}
	return first, true
}
