// Package gpu finds this machine's NVIDIA GPUs and hands them out to
// actions, one holder per device, so that the local executor never
// over-subscribes a GPU (DESIGN.md decision 6).
package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Device is one GPU as nvidia-smi reports it.
type Device struct {
	Index     int    // nvidia-smi's index; CUDA may order devices differently
	UUID      string // "GPU-055ee11a-..."; stable, and what CUDA_VISIBLE_DEVICES gets
	Name      string // "NVIDIA H100 80GB HBM3"
	MemoryMiB int64  // total memory; 0 when nvidia-smi reports it as [N/A]
}

func (d Device) String() string {
	return fmt.Sprintf("GPU %d (%s, %s)", d.Index, d.Name, d.UUID)
}

// The query's field order is what parseLine expects.
const (
	queryGPU    = "--query-gpu=index,uuid,name,memory.total"
	queryFormat = "--format=csv,noheader"
)

// detectTimeout bounds nvidia-smi: with a wedged driver it can hang for
// minutes, and a build must not hang with it.
const detectTimeout = 30 * time.Second

// Detect lists the GPUs that nvidia-smi reports. A machine without
// nvidia-smi, or one where nvidia-smi finds no devices, has no GPUs: that
// is an empty list, not an error, so CPU-only machines build as usual. An
// nvidia-smi that fails otherwise (a driver that does not load) or prints
// a line Detect does not understand is an error naming what went wrong.
func Detect(ctx context.Context) ([]Device, error) {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return []Device{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, detectTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, queryGPU, queryFormat)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + "\n" + stdout.String())
		// "No devices were found" (exit status 6) is a machine with the
		// driver's tools but no GPU: not an error.
		if strings.Contains(msg, "No devices were found") {
			return []Device{}, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("detecting GPUs: %s %s %s: %w", path, queryGPU, queryFormat, ctx.Err())
		}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && msg != "" {
			return nil, fmt.Errorf("detecting GPUs: %s failed (%v): %s", path, err, firstLine(msg))
		}
		return nil, fmt.Errorf("detecting GPUs: running %s: %w", path, err)
	}
	devs, err := parseQuery(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("detecting GPUs: %s: %w", path, err)
	}
	return devs, nil
}

// parseQuery reads nvidia-smi's CSV lines: "0, GPU-..., NVIDIA H100 80GB
// HBM3, 81559 MiB".
func parseQuery(out string) ([]Device, error) {
	devs := []Device{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		d, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("unexpected output line %q: %w", line, err)
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func parseLine(line string) (Device, error) {
	f := strings.Split(line, ",")
	if len(f) != 4 {
		return Device{}, fmt.Errorf("want 4 comma-separated fields (index, uuid, name, memory.total), got %d", len(f))
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	idx, err := strconv.Atoi(f[0])
	if err != nil || idx < 0 {
		return Device{}, fmt.Errorf("index %q is not a device number", f[0])
	}
	if f[1] == "" || strings.ContainsAny(f[1], " ,") {
		return Device{}, fmt.Errorf("uuid %q is not a GPU UUID", f[1])
	}
	if f[2] == "" {
		return Device{}, fmt.Errorf("empty device name")
	}
	mem, err := parseMiB(f[3])
	if err != nil {
		return Device{}, err
	}
	return Device{Index: idx, UUID: f[1], Name: f[2], MemoryMiB: mem}, nil
}

// parseMiB reads "81559 MiB". "[N/A]" (seen on some virtualised and MIG
// set-ups) is 0: the device is usable, only gpu_memory checks fail on it.
func parseMiB(s string) (int64, error) {
	if s == "[N/A]" || s == "N/A" {
		return 0, nil
	}
	num, ok := strings.CutSuffix(s, "MiB")
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("memory.total %q is not a number of MiB", s)
	}
	return n, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Restrict keeps the devices named in spec, the value of COGUMI_GPUS: a
// comma-separated list of nvidia-smi indices or UUIDs ("0,1",
// "GPU-055ee11a-..."; the "GPU-" prefix may be left out, as torch prints
// UUIDs without it). An empty spec keeps every device; "none" keeps none.
// A name that matches no device is an error, because a typo would
// otherwise silently run everything on the wrong GPU.
func Restrict(devs []Device, spec string) ([]Device, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return append([]Device{}, devs...), nil
	}
	if strings.EqualFold(spec, "none") {
		return []Device{}, nil
	}
	out := []Device{}
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		d, ok := lookup(devs, item)
		if !ok {
			return nil, fmt.Errorf("COGUMI_GPUS=%q: no GPU %q on this machine (it has %s)", spec, item, listDevices(devs))
		}
		if !seen[d.UUID] {
			seen[d.UUID] = true
			out = append(out, d)
		}
	}
	return out, nil
}

func lookup(devs []Device, item string) (Device, bool) {
	if idx, err := strconv.Atoi(item); err == nil {
		for _, d := range devs {
			if d.Index == idx {
				return d, true
			}
		}
		return Device{}, false
	}
	want := strings.TrimPrefix(strings.ToLower(item), "gpu-")
	for _, d := range devs {
		if strings.TrimPrefix(strings.ToLower(d.UUID), "gpu-") == want {
			return d, true
		}
	}
	return Device{}, false
}

// listDevices names devices for messages: "0 (NVIDIA H100 80GB HBM3), 1 (...)".
func listDevices(devs []Device) string {
	if len(devs) == 0 {
		return "no GPUs"
	}
	parts := make([]string, len(devs))
	for i, d := range devs {
		parts[i] = fmt.Sprintf("%d (%s, %s)", d.Index, d.Name, d.UUID)
	}
	return strings.Join(parts, ", ")
}

// VisibleDevices is the CUDA_VISIBLE_DEVICES value that shows an action
// exactly devs. It lists UUIDs, not indices, because CUDA's default device
// order (fastest first) need not match nvidia-smi's (PCI bus order).
func VisibleDevices(devs []Device) string {
	ids := make([]string, len(devs))
	for i, d := range devs {
		ids[i] = d.UUID
	}
	return strings.Join(ids, ",")
}
