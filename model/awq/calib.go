package awq

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/cogumi/cogumi/model/safetensors"
)

// File names of a calibrate artifact (see the calibrate rule).
const (
	CalibrationFile = "calibration.safetensors"
	CalibrationInfo = "calibration.json"
)

// Calibration is an open calibration.safetensors: for every decoder layer
// and every input that linears read, named after the first linear reading
// it, the mean |x| per channel (<linear>.input_mean_abs, [in]) and a sample
// of token rows (<linear>.input_rows, [rows, in]).
type Calibration struct {
	path string
	f    *safetensors.File
	// Layers is calibration.json's "layers" (-1 when the file is absent).
	Layers int
}

// FindCalibration returns the one calibration.safetensors at or below dir
// (a calibrate target's staged artifact).
func FindCalibration(dir string) (string, error) {
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == CalibrationFile {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("awq: looking for %s in %s: %w", CalibrationFile, dir, err)
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("awq: %s holds no %s: calibration must name a calibrate target", dir, CalibrationFile)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("awq: %s holds %d files named %s (%s, %s, ...); expected one", dir, len(found), CalibrationFile, found[0], found[1])
}

// OpenCalibration opens a calibration.safetensors file, and reads the
// calibration.json beside it when there is one.
func OpenCalibration(path string) (*Calibration, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("awq: calibration: %w", err)
	}
	c := &Calibration{path: path, f: f, Layers: -1}
	info := filepath.Join(filepath.Dir(path), CalibrationInfo)
	b, err := os.ReadFile(info)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("awq: calibration: %w", err)
	default:
		var meta struct {
			Layers *int `json:"layers"`
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			f.Close()
			return nil, fmt.Errorf("awq: calibration %s: not valid JSON: %v", info, err)
		}
		if meta.Layers != nil {
			c.Layers = *meta.Layers
		}
	}
	return c, nil
}

// Close unmaps the file.
func (c *Calibration) Close() error { return c.f.Close() }

// Path is the calibration.safetensors file.
func (c *Calibration) Path() string { return c.path }

// input is one linear input's statistics, as float32.
type input struct {
	meanAbs []float32 // [in]
	rows    []float32 // [n, in] row-major
	n, in   int
}

// input reads and checks the statistics of the input of linear (a name
// without ".weight", such as model.layers.0.self_attn.q_proj), which must
// have in channels.
func (c *Calibration) input(linear string, in int) (*input, error) {
	ma, rows := linear+".input_mean_abs", linear+".input_rows"
	for _, name := range []string{ma, rows} {
		if _, ok := c.f.Tensor(name); !ok {
			return nil, fmt.Errorf("awq: calibration %s has no tensor %q: it does not cover this model's layer (was it made for another model?)", c.path, name)
		}
	}
	mi, _ := c.f.Tensor(ma)
	ri, _ := c.f.Tensor(rows)
	if !slices.Equal(mi.Shape, []int64{int64(in)}) {
		return nil, fmt.Errorf("awq: calibration %s: tensor %q has shape %v, but the model's linear has %d inputs: want [%d]", c.path, ma, mi.Shape, in, in)
	}
	if len(ri.Shape) != 2 || ri.Shape[1] != int64(in) {
		return nil, fmt.Errorf("awq: calibration %s: tensor %q has shape %v, but the model's linear has %d inputs: want [rows, %d]", c.path, rows, ri.Shape, in, in)
	}
	if ri.Shape[0] == 0 {
		return nil, fmt.Errorf("awq: calibration %s: tensor %q holds no rows", c.path, rows)
	}
	x := &input{n: int(ri.Shape[0]), in: in, meanAbs: make([]float32, in)}
	x.rows = make([]float32, x.n*in)
	if err := c.f.ReadF32Rows(ma, 0, 1, x.meanAbs); err != nil {
		return nil, fmt.Errorf("awq: calibration: %w", err)
	}
	if err := c.f.ReadF32Rows(rows, 0, x.n, x.rows); err != nil {
		return nil, fmt.Errorf("awq: calibration: %w", err)
	}
	for i, v := range x.meanAbs {
		if !(v >= 0) || v > maxFinite {
			return nil, fmt.Errorf("awq: calibration %s: %s[%d] = %v: a mean |x| must be finite and non-negative", c.path, ma, i, v)
		}
	}
	for i, v := range x.rows {
		if v != v || v > maxFinite || v < -maxFinite {
			return nil, fmt.Errorf("awq: calibration %s: %s holds a non-finite value at row %d, column %d", c.path, rows, i/in, i%in)
		}
	}
	return x, nil
}

const maxFinite = 3.4028234663852886e38
