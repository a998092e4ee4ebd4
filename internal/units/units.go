// Package units parses and prints the sizes, durations and ages users
// write: "512MiB", "80GB", "12h", "30d".
package units

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

// ParseDuration parses a wall-clock limit: "12h", "30m", "90s", "1h30m".
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("duration %q: expected a number and a unit, such as 12h, 30m, 90s or 1h30m", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

// ParseAge parses an age for cache collection: "30d", "12h", "90m", "1h30m".
func ParseAge(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("bad age %q (write 30d, 12h or 90m)", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad age %q (write 30d, 12h or 90m)", s)
	}
	return d, nil
}

// FormatBytes prints a byte count in IEC units: "1.5 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
