package lora

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/safetensors"
)

// MergeReportFile is written next to the merged checkpoint's config.json.
const MergeReportFile = "merge_lora.json"

// MergeReport says what Merge did.
type MergeReport struct {
	Rank    int      `json:"r"`
	Alpha   float64  `json:"lora_alpha"`
	Scale   float64  `json:"scale"`
	Base    string   `json:"base_model_name_or_path,omitempty"` // from adapter_config.json
	Modules []string `json:"modules"`                           // the merged base tensors
	// MaxAbsDelta is the largest |Scale·B·A| element added.
	MaxAbsDelta float64 `json:"max_abs_delta"`
}

// Merge writes into dstDir the base checkpoint with every adapted weight
// replaced by W + Scale·B·A, in the base's layout, shards and dtypes, plus
// merge_lora.json. Each element is computed in float64 (W widened, the dot
// product over the rank summed in order) and rounded once to float32, then
// to the base's dtype. Memory is the adapter plus one row; the base streams
// through. On error nothing is left in dstDir.
func Merge(ctx context.Context, base *checkpoint.Model, a *Adapter, dstDir string) (MergeReport, error) {
	if err := a.CheckBase(base); err != nil {
		return MergeReport{}, err
	}
	byWeight := map[string]Pair{}
	for _, p := range a.pairs {
		byWeight[p.Weight()] = p
	}
	rep := MergeReport{Rank: a.cfg.R, Alpha: a.cfg.Alpha, Scale: a.cfg.Scale(), Base: a.cfg.BaseModel, Modules: []string{}}
	w, err := base.NewWriter(dstDir)
	if err != nil {
		return MergeReport{}, fmt.Errorf("merge_lora: %w", err)
	}
	for _, t := range base.Tensors() {
		if err := ctx.Err(); err != nil {
			w.Abort()
			return MergeReport{}, fmt.Errorf("merge_lora: %w", err)
		}
		p, ok := byWeight[t.Name]
		if !ok {
			raw, err := base.Bytes(t.Name)
			if err == nil {
				err = w.WriteTensor(t.Name, raw)
			}
			if err != nil {
				w.Abort()
				return MergeReport{}, fmt.Errorf("merge_lora: %w", err)
			}
			continue
		}
		d, err := mergeTensor(base, a, p, t, w)
		if err != nil {
			w.Abort()
			return MergeReport{}, err
		}
		rep.MaxAbsDelta = max(rep.MaxAbsDelta, d)
		rep.Modules = append(rep.Modules, t.Name)
	}
	if err := w.Close(); err != nil {
		return MergeReport{}, fmt.Errorf("merge_lora: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dstDir, MergeReportFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		return MergeReport{}, fmt.Errorf("merge_lora: writing %s: %w", MergeReportFile, err)
	}
	return rep, nil
}

// mergeTensor writes one adapted weight, row by row, and returns the
// largest |delta|.
func mergeTensor(base *checkpoint.Model, a *Adapter, p Pair, t checkpoint.TensorRef, w *checkpoint.Writer) (float64, error) {
	A, err := a.ReadA(p)
	if err != nil {
		return 0, err
	}
	B, err := a.ReadB(p)
	if err != nil {
		return 0, err
	}
	tw, err := w.TensorWriter(t.Name)
	if err != nil {
		return 0, fmt.Errorf("merge_lora: %w", err)
	}
	r, in, scale := a.cfg.R, p.In, a.cfg.Scale()
	row := make([]float32, in)
	acc := make([]float64, in)
	out := make([]byte, in*t.DType.Size())
	var maxDelta float64
	for o := 0; o < p.Out; o++ {
		if err := base.ReadF32Rows(t.Name, o, 1, row); err != nil {
			return 0, fmt.Errorf("merge_lora: %w", err)
		}
		clear(acc)
		// (B·A)[o, j] = sum over k of B[o, k]·A[k, j], summed in k order.
		for k := 0; k < r; k++ {
			b := float64(B[o*r+k])
			if b == 0 {
				continue
			}
			ak := A[k*in : (k+1)*in]
			for j, av := range ak {
				acc[j] += b * float64(av)
			}
		}
		for j := range row {
			d := scale * acc[j]
			maxDelta = max(maxDelta, abs(d))
			row[j] = float32(float64(row[j]) + d)
		}
		if !safetensors.EncodeF32(out, row, t.DType) {
			return 0, fmt.Errorf("merge_lora: base tensor %s has dtype %s; a LoRA merges into F32, F16 or BF16 weights", t.Name, t.DType)
		}
		if _, err := tw.Write(out); err != nil {
			return 0, fmt.Errorf("merge_lora: %w", err)
		}
	}
	return maxDelta, nil
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
