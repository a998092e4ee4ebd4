package zpack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
)

// maxZstdWindow bounds the window a .zst stream may ask the decoder for
// (the zstd CLI's default limit is 128 MiB; ours writes 8 MiB windows).
const maxZstdWindow = 1 << 28

// CompressFile compresses src into dst, replacing dst atomically: the
// output is written to a temporary file beside dst and renamed over it only
// when complete, so dst is never left half-written. With opts.Weights it
// writes the weight-aware container (see the package doc); otherwise a
// standard .zst stream that `zstd -d` reads. Memory stays bounded by
// opts.Threads times the chunk size, whatever the size of src.
func CompressFile(ctx context.Context, src, dst string, opts Options) (Stats, error) {
	start := time.Now()
	o, err := opts.normalized()
	if err != nil {
		return Stats{}, err
	}
	in, size, err := openSource(src, dst)
	if err != nil {
		return Stats{}, err
	}
	defer in.Close()
	var st Stats
	err = writeAtomic(dst, func(out *os.File) error {
		var err error
		if o.Weights {
			st, err = compressContainer(ctx, in, size, out, o)
		} else {
			st, err = compressZstd(ctx, in, size, out, o)
		}
		return err
	})
	st.Elapsed = time.Since(start)
	if err != nil {
		return st, fmt.Errorf("zpack: compress %s: %w", src, err)
	}
	return st, nil
}

// DecompressFile restores the original of src (a .zst stream or a CGZP
// container, told apart by their magic numbers) into dst, atomically as
// CompressFile does. Damaged input gives an error wrapping ErrCorrupt,
// and dst is then left as it was.
func DecompressFile(ctx context.Context, src, dst string) (Stats, error) {
	start := time.Now()
	in, _, err := openSource(src, dst)
	if err != nil {
		return Stats{}, err
	}
	defer in.Close()
	var st Stats
	err = writeAtomic(dst, func(out *os.File) error {
		bw := bufio.NewWriterSize(out, 1<<20)
		var err error
		st, err = Decompress(ctx, bw, in)
		if err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", dst, err)
		}
		return nil
	})
	st.Elapsed = time.Since(start)
	if err != nil {
		return st, fmt.Errorf("zpack: decompress %s: %w", src, err)
	}
	return st, nil
}

// Decompress streams the original of src (a .zst stream or a CGZP
// container) to dst using GOMAXPROCS goroutines. Checksums (zstd's frame
// checksum, the container's BLAKE3) are verified at the end of the stream,
// so on error dst may already hold unverified bytes; use DecompressFile
// for all-or-nothing output.
func Decompress(ctx context.Context, dst io.Writer, src io.Reader) (Stats, error) {
	start := time.Now()
	cr := &countingReader{r: src}
	br := bufio.NewReaderSize(cr, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Stats{}, corruptf("input of %d bytes is too short for a zstd stream or container", len(magic))
		}
		return Stats{}, fmt.Errorf("read magic: %w", err)
	}
	threads := max(1, runtime.GOMAXPROCS(0))
	var st Stats
	switch {
	case string(magic) == containerMagic:
		st, err = decompressContainer(ctx, dst, br, threads)
	case isZstdMagic(magic):
		st, err = decompressZstd(ctx, dst, br, threads)
		st.CompressedBytes = cr.n - int64(br.Buffered())
	default:
		return Stats{}, corruptf("unknown format (magic % x): neither zstd nor a CGZP container", magic)
	}
	st.Elapsed = time.Since(start)
	return st, err
}

// isZstdMagic recognises a zstd frame or a skippable frame.
func isZstdMagic(m []byte) bool {
	v := uint32(m[0]) | uint32(m[1])<<8 | uint32(m[2])<<16 | uint32(m[3])<<24
	return v == 0xFD2FB528 || v&0xFFFFFFF0 == 0x184D2A50
}

func decompressZstd(ctx context.Context, dst io.Writer, src io.Reader, threads int) (Stats, error) {
	st := Stats{Format: FormatZstd}
	dec, err := zstd.NewReader(&ctxReader{ctx: ctx, r: &sourceReader{src}},
		zstd.WithDecoderConcurrency(threads),
		zstd.WithDecoderMaxWindow(maxZstdWindow))
	if err != nil {
		return st, corruptf("zstd stream: %v", err)
	}
	defer dec.Close()
	n, err := io.Copy(&countingWriter{w: dst}, dec)
	st.OriginalBytes = n
	if err != nil {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		var we *writeError
		var se *sourceError
		if errors.As(err, &we) || errors.As(err, &se) {
			return st, err
		}
		return st, corruptf("zstd stream: %v", err)
	}
	return st, nil
}

// openSource opens src for reading and refuses to overwrite it with dst.
func openSource(src, dst string) (*os.File, int64, error) {
	a, err1 := filepath.Abs(src)
	b, err2 := filepath.Abs(dst)
	if err1 == nil && err2 == nil && a == b {
		return nil, 0, fmt.Errorf("zpack: source and destination are the same file %s", src)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, 0, fmt.Errorf("zpack: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("zpack: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("zpack: %s is not a regular file", src)
	}
	return f, fi.Size(), nil
}

// writeAtomic runs fill on a temporary file in dst's directory and renames
// it to dst once fill succeeded; on any error the temporary file is removed
// and dst is untouched. Like Go's build cache it does not fsync (that
// halves decompression speed): after a power loss dst may be missing or
// damaged, which content-addressed readers catch by re-hashing.
func writeAtomic(dst string, fill func(*os.File) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary output: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("rename to %s: %w", dst, err)
	}
	return nil
}
