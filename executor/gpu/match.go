package gpu

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// MatchType reports whether dev is of gpuType: every word of the type is
// a whole word of the device name, ignoring case ("h100" matches "NVIDIA
// H100 80GB HBM3" and "NVIDIA H100 PCIe"; "a100" does not match "NVIDIA
// RTX A1000"; "a100-80gb" matches "NVIDIA A100-SXM4-80GB"). Words are runs
// of letters and digits. An empty type matches every device.
func MatchType(dev Device, gpuType string) bool {
	have := words(dev.Name)
	for _, w := range words(gpuType) {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// words splits s into lower-case runs of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Memory is an amount of GPU memory as the user wrote it: the number and
// unit are kept so that messages answer in the user's units.
type Memory struct {
	Bytes int64
	Value float64 // the number written: 80 in "80GB"
	Unit  string  // canonical spelling of the unit written: "GB", "GiB", "MiB"
}

func (m Memory) String() string {
	return strconv.FormatFloat(m.Value, 'f', -1, 64) + " " + m.Unit
}

// binary reports whether the unit is a power of 1024 (GiB) rather than of
// 1000 (GB).
func (m Memory) binary() bool { return strings.Contains(m.Unit, "i") }

// memoryUnit maps a lower-cased unit to its canonical spelling and size.
// As in the hcl package, "G" is a GB: GPU data sheets write SI units.
func memoryUnit(u string) (name string, size float64, ok bool) {
	switch u {
	case "", "b":
		return "B", 1, true
	case "k", "kb":
		return "KB", 1e3, true
	case "ki", "kib":
		return "KiB", 1 << 10, true
	case "m", "mb":
		return "MB", 1e6, true
	case "mi", "mib":
		return "MiB", 1 << 20, true
	case "g", "gb":
		return "GB", 1e9, true
	case "gi", "gib":
		return "GiB", 1 << 30, true
	case "t", "tb":
		return "TB", 1e12, true
	case "ti", "tib":
		return "TiB", 1 << 40, true
	}
	return "", 0, false
}

// ParseMemory reads a GPU memory size: "80GB" (80e9 bytes), "40GiB"
// (40 * 2^30), "81559MiB", "1.5 TB".
func ParseMemory(s string) (Memory, error) {
	t := strings.TrimSpace(s)
	end := 0
	for end < len(t) && (t[end] >= '0' && t[end] <= '9' || t[end] == '.') {
		end++
	}
	if end == 0 {
		return Memory{}, fmt.Errorf("GPU memory %q: expected a number and a unit, such as 80GB or 40GiB", s)
	}
	v, err := strconv.ParseFloat(t[:end], 64)
	if err != nil {
		return Memory{}, fmt.Errorf("GPU memory %q: bad number %q", s, t[:end])
	}
	unit, size, ok := memoryUnit(strings.ToLower(strings.TrimSpace(t[end:])))
	if !ok {
		return Memory{}, fmt.Errorf("GPU memory %q: unknown unit %q (use GB or GiB, MB or MiB, TB or TiB)", s, strings.TrimSpace(t[end:]))
	}
	b := math.Ceil(v * size)
	if b >= math.MaxInt64 {
		return Memory{}, fmt.Errorf("GPU memory %q is too large", s)
	}
	return Memory{Bytes: int64(b), Value: v, Unit: unit}, nil
}

// MemoryFits reports whether dev has at least need of total memory. The
// comparison is exact in bytes; the error explains it in the units the
// user wrote and in the other system, because an "80GB" card reports
// 81559 MiB, which is 85.5 GB but only 79.6 GiB.
func MemoryFits(dev Device, need Memory) error {
	have := dev.MemoryMiB << 20
	if have >= need.Bytes {
		return nil
	}
	if dev.MemoryMiB == 0 {
		return fmt.Errorf("needs %s of GPU memory; %s (GPU %d) does not report its memory", need, dev.Name, dev.Index)
	}
	gib := float64(have) / (1 << 30)
	gb := float64(have) / 1e9
	var sizes string
	if need.binary() {
		sizes = fmt.Sprintf("%s = %.1f GiB (%.1f GB)", mib(dev.MemoryMiB), gib, gb)
	} else {
		sizes = fmt.Sprintf("%s = %.1f GB (%.1f GiB)", mib(dev.MemoryMiB), gb, gib)
	}
	msg := fmt.Sprintf("needs %s of GPU memory; %s has %s", need, dev.Name, sizes)
	// The common mistake: a data-sheet size written with the other unit.
	if alt, ok := otherUnit(need); ok && have >= alt.Bytes {
		msg += fmt.Sprintf(": did you mean %s?", alt.compact())
	}
	return fmt.Errorf("%s", msg)
}

func mib(n int64) string { return strconv.FormatInt(n, 10) + " MiB" }

// compact writes m as a user would in a BUILD file: "80GB".
func (m Memory) compact() string { return strconv.FormatFloat(m.Value, 'f', -1, 64) + m.Unit }

// otherUnit is the same number in the other unit system: 80 GiB -> 80 GB.
func otherUnit(m Memory) (Memory, bool) {
	var unit string
	if m.binary() {
		unit = strings.Replace(m.Unit, "i", "", 1)
	} else if m.Unit != "B" {
		unit = m.Unit[:1] + "i" + m.Unit[1:]
	} else {
		return Memory{}, false
	}
	alt, err := ParseMemory(strconv.FormatFloat(m.Value, 'f', -1, 64) + unit)
	return alt, err == nil
}
