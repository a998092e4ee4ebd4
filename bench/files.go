package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// writeRandom writes size incompressible bytes to path, streaming (the
// bench process stays small: a child's peak RSS starts from its parent's).
func writeRandom(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'c', 'o', 'g', 'u', 'm', 'i'})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		_, _ = r.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
		left -= n
	}
	return f.Close()
}

// writeFiles writes a workspace: relative path -> content.
func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the regular files and directories of src into dst,
// hard-linking files when link is set, and skipping top-level names in skip.
func copyTree(src, dst string, link bool, skip ...string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		for _, s := range skip {
			if top == s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case !d.Type().IsRegular():
			return nil
		case link:
			return os.Link(p, out)
		default:
			return copyFile(p, out)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

// warm reads a file once so that every tool finds it in the page cache.
func warm(paths ...string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// oneFile returns the single file matching pattern.
func oneFile(pattern string) (string, error) {
	m, _ := filepath.Glob(pattern)
	if len(m) != 1 {
		return "", fmt.Errorf("want one file %s, found %v", pattern, m)
	}
	return m[0], nil
}

// Shapes of the generated checkpoints: TinyLlama-1.1B's hidden and
// feed-forward sizes (rows multiples of 256, as k-quants need), 4 heads of
// 512, 2 KV heads, 8000 tokens; the layer count sets the size.
const (
	ckptHidden = 2048
	ckptFF     = 5632
	ckptVocab  = 8000
	spmVocab   = 450 // tinyllama's SentencePiece vocabulary
)

// checkpointLayers is the layer count that brings a 2-byte checkpoint
// closest to size.
func checkpointLayers(size int64) int {
	embed := int64(2 * ckptVocab * ckptHidden * 2)
	perLayer := int64((2*ckptHidden*ckptHidden + 2*ckptHidden*ckptHidden/2 + 3*ckptHidden*ckptFF) * 2)
	return max(1, int((size-embed+perLayer/2)/perLayer))
}

// makeCheckpoint writes a random Llama checkpoint of about size bytes with
// internal/tinyllama, in a child process.
func (e *env) makeCheckpoint(ctx context.Context, dir, dtype string, size int64, seed int) error {
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, e.llama, "-o", dir, "-dtype", dtype, "-tokenizer", "spm",
		"-seed", strconv.Itoa(seed), "-hidden", strconv.Itoa(ckptHidden), "-intermediate", strconv.Itoa(ckptFF),
		"-layers", strconv.Itoa(checkpointLayers(size)), "-pad-vocab", strconv.Itoa(ckptVocab-spmVocab))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("writing a %s checkpoint: %w\n%s", dtype, err, out)
	}
	return nil
}

// safetensorsBytes sums the sizes of the *.safetensors files under dir.
func safetensorsBytes(dir string) (int64, []string, error) {
	var n int64
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".safetensors") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		files = append(files, p)
		return nil
	})
	return n, files, err
}

func mbps(bytes int64, seconds float64) float64 { return float64(bytes) / seconds / 1e6 }
