package hcl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// byteUnits maps a lower-cased unit to its size. Both SI (KB = 1000) and IEC
// (KiB = 1024) units are accepted because users copy sizes from both worlds:
// GPU data sheets say "80GB", Kubernetes and Slurm say "64Gi".
func byteUnits(unit string) (float64, bool) {
	const k, ki = 1e3, 1024.0
	switch unit {
	case "", "b":
		return 1, true
	case "k", "kb":
		return k, true
	case "ki", "kib":
		return ki, true
	case "m", "mb":
		return k * k, true
	case "mi", "mib":
		return ki * ki, true
	case "g", "gb":
		return k * k * k, true
	case "gi", "gib":
		return ki * ki * ki, true
	case "t", "tb":
		return k * k * k * k, true
	case "ti", "tib":
		return ki * ki * ki * ki, true
	case "p", "pb":
		return k * k * k * k * k, true
	case "pi", "pib":
		return ki * ki * ki * ki * ki, true
	}
	return 0, false
}

// ParseBytes parses a size such as "512MiB", "64GiB", "1GB", "1.5 TB" or
// "1000" (bytes) into bytes.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	end := 0
	for end < len(t) && (t[end] >= '0' && t[end] <= '9' || t[end] == '.') {
		end++
	}
	if end == 0 {
		return 0, fmt.Errorf("size %q: expected a number and a unit, such as 512MiB or 80GB", s)
	}
	n, err := strconv.ParseFloat(t[:end], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: bad number %q", s, t[:end])
	}
	unit := strings.TrimSpace(t[end:])
	mult, ok := byteUnits(strings.ToLower(unit))
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KB, MB, GB, TB, or KiB, MiB, GiB, TiB)", s, unit)
	}
	v := math.Round(n * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

// parseDuration parses a wall-clock limit: "12h", "30m", "90s", "1h30m".
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("duration %q: expected a number and a unit, such as 12h, 30m, 90s or 1h30m", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}
