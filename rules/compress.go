package rules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/zpack"
)

// Compress zstd-compresses every file of its input's artifact:
//
//	compress "dist" {
//	  input   = ":final"
//	  level   = 19          # or "fastest", "default", "better", "best"
//	  weights = false       # true: the weight-aware container for BF16/F16 safetensors
//	}
//
// Each file f becomes f.zst (a standard zstd stream) or, with weights, f.zpk
// (zpack's self-describing container). decompress gives back the originals.
type Compress struct{}

// Suffixes of compressed files.
const (
	zstSuffix = ".zst"
	zpkSuffix = ".zpk"
)

func (Compress) Kind() string    { return "compress" }
func (Compress) Version() string { return "1" }

// compressParams are the attributes of a compress target.
type compressParams struct {
	Input   string    `cogumi:"input,key,required,input=label" doc:"the target (or one file or directory of it) whose files are compressed"`
	Level   cty.Value `cogumi:"level,key" default:"default" doc:"zstd level 1-22 (mapped onto klauspost's fastest/default/better/best) or one of those names"`
	Weights bool      `cogumi:"weights,key" doc:"regroup the bits of BF16/F16 weights into planes before entropy coding (safetensors files)"`
}

func (Compress) Schema() Schema {
	return Schema{Summary: "zstd of every file of an artifact", Attrs: attrsOf[compressParams](), Traits: Traits{AllCPUs: true}}
}

func (Compress) Check(t *target.Target) []AttrError {
	p, errs := decode[compressParams](t)
	if len(errs) > 0 {
		return errs
	}
	if _, err := compressLevel(p.Level); err != nil {
		return []AttrError{{Attr: "level", Msg: err.Error()}}
	}
	return nil
}

// compressLevel reads the level attribute, a number or a name.
func compressLevel(v cty.Value) (string, error) {
	var s string
	switch v.Type() {
	case cty.Number:
		s = v.AsBigFloat().Text('f', -1)
	case cty.String:
		s = v.AsString()
	default:
		return "", fmt.Errorf("level: expected a number or a name, got %s", v.Type().FriendlyName())
	}
	if _, err := zpack.ParseLevel(s); err != nil {
		return "", err
	}
	return s, nil
}

// Outs are not declared: one file per file of the input's artifact.
func (Compress) Outs(*target.Target) []string { return nil }

func (Compress) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[compressParams](a)
	if err != nil {
		return err
	}
	level, err := compressLevel(p.Level)
	if err != nil {
		return err
	}
	lv, err := zpack.ParseLevel(level)
	if err != nil {
		return err
	}
	weights := p.Weights
	suffix := zstSuffix
	if weights {
		suffix = zpkSuffix
	}
	return eachInputFile(a, "input", func(src, rel string) error {
		dst := filepath.Join(a.Out, filepath.FromSlash(rel)+suffix)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		st, err := zpack.CompressFile(ctx, src, dst, zpack.Options{Level: lv, Weights: weights})
		if err != nil {
			return fmt.Errorf("compressing %s: %w", rel, err)
		}
		fmt.Fprintf(a.Log, "%s: %d -> %d bytes (%.1f%%) in %.2fs\n", rel, st.OriginalBytes, st.CompressedBytes,
			100*st.Ratio(), st.Elapsed.Seconds())
		return nil
	})
}

// Decompress restores the files a compress target made.
type Decompress struct{}

func (Decompress) Kind() string    { return "decompress" }
func (Decompress) Version() string { return "1" }

// decompressParams are the attributes of a decompress target. Execute
// reads only the staged input.
type decompressParams struct {
	Input string `cogumi:"input,key,required,input=label" doc:"a compress target: each .zst or .zpk file is restored to its original name"`
}

func (Decompress) Schema() Schema {
	return Schema{Summary: "the files a compress target made, restored", Attrs: attrsOf[decompressParams]()}
}

func (Decompress) Check(t *target.Target) []AttrError {
	_, errs := decode[decompressParams](t)
	return errs
}

// Outs are not declared: one file per file of the input's artifact.
func (Decompress) Outs(*target.Target) []string { return nil }

func (Decompress) Execute(ctx context.Context, a *Action) error {
	return eachInputFile(a, "input", func(src, rel string) error {
		orig, ok := strings.CutSuffix(rel, zstSuffix)
		if !ok {
			if orig, ok = strings.CutSuffix(rel, zpkSuffix); !ok {
				return fmt.Errorf("%s is neither .zst nor .zpk", rel)
			}
		}
		dst := filepath.Join(a.Out, filepath.FromSlash(orig))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if _, err := zpack.DecompressFile(ctx, src, dst); err != nil {
			return fmt.Errorf("decompressing %s: %w", rel, err)
		}
		return nil
	})
}

// eachInputFile calls fn for every regular file staged for attr, with its
// path relative to the staged directory (or its base name when the label
// names one file).
func eachInputFile(a *Action, attr string, fn func(src, rel string) error) error {
	root, ok := a.InputDirs[attr]
	if !ok {
		return fmt.Errorf("%s: no input staged", attr)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		return fn(root, filepath.Base(root))
	}
	n := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		n++
		return fn(p, filepath.ToSlash(rel))
	})
	if err == nil && n == 0 {
		err = errors.New("the input has no files")
	}
	return err
}
