package cache

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cogumi/cogumi/internal/atomicfile"
)

// ChunkIndex records, for the blobs of a local cache that were moved as
// chunks (see package cache/s3), where each chunk lies: a pull then copies
// the chunks a blob shares with blobs already here instead of downloading
// them. The blobs stay whole files in cas/ (splitting them into chunk files
// would cost a full copy on a file system without reflinks); the index is
// one small text file per blob, chunks/<blob digest>, a line
// "<chunk digest> <length>" per chunk in order, removed with the blob.
//
// An entry is a hint: Find's caller verifies the bytes, so a stale entry
// (a blob since removed, a torn index file) costs a download, never a
// wrong byte. It is safe for concurrent use.
type ChunkIndex struct {
	c *Local

	mu     sync.Mutex
	loaded bool
	where  map[Digest]chunkAt // chunk -> where one copy is
}

type chunkAt struct {
	blob Digest
	off  int64
}

// ChunkIndex returns the cache's chunk index. Open one per process: each
// loads the index files on first use.
func (c *Local) ChunkIndex() *ChunkIndex { return &ChunkIndex{c: c} }

func (c *Local) chunkIndexPath(d Digest) string {
	return filepath.Join(c.dir, "chunks", d.String())
}

// Record notes that blob d is made of chunks, in order.
func (x *ChunkIndex) Record(d Digest, chunks []ChunkRef) error {
	var b bytes.Buffer
	for _, r := range chunks {
		fmt.Fprintf(&b, "%s %d\n", r.Digest, r.Size)
	}
	if err := os.MkdirAll(filepath.Join(x.c.dir, "chunks"), dirMode); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(x.c.chunkIndexPath(d), b.Bytes(), 0o644); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.loaded {
		x.add(d, chunks)
	}
	return nil
}

// add indexes the chunks of blob d (x.mu held).
func (x *ChunkIndex) add(d Digest, chunks []ChunkRef) {
	off := int64(0)
	for _, r := range chunks {
		if _, ok := x.where[r.Digest]; !ok {
			x.where[r.Digest] = chunkAt{d, off}
		}
		off += r.Size
	}
}

// Find returns the path of a local blob holding chunk c of size bytes and
// the chunk's offset in it.
func (x *ChunkIndex) Find(c Digest, size int64) (path string, off int64, ok bool) {
	x.mu.Lock()
	if !x.loaded {
		x.load()
	}
	at, ok := x.where[c]
	x.mu.Unlock()
	if !ok {
		return "", 0, false
	}
	path = x.c.BlobPath(at.blob)
	if info, err := os.Stat(path); err != nil || info.Size() < at.off+size {
		return "", 0, false
	}
	return path, at.off, true
}

// load reads every index file whose blob is still here (x.mu held).
// Unreadable or malformed files are skipped.
func (x *ChunkIndex) load() {
	x.loaded = true
	x.where = make(map[Digest]chunkAt)
	entries, _ := os.ReadDir(filepath.Join(x.c.dir, "chunks"))
	for _, e := range entries {
		d, err := ParseDigest(e.Name())
		if err != nil {
			continue
		}
		if chunks, err := readChunkIndex(x.c.chunkIndexPath(d)); err == nil {
			x.add(d, chunks)
		}
	}
}

func readChunkIndex(path string) ([]ChunkRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []ChunkRef
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		hex, n, ok := strings.Cut(sc.Text(), " ")
		d, err := ParseDigest(hex)
		size, err2 := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil || err2 != nil || size <= 0 {
			return nil, fmt.Errorf("%s: malformed line %.80q", path, sc.Text())
		}
		out = append(out, ChunkRef{Digest: d, Size: size})
	}
	return out, sc.Err()
}

// verifyChunkIndex checks the chunk index files (see Verify).
func (c *Local) verifyChunkIndex(rep *VerifyReport) {
	dir := filepath.Join(c.dir, "chunks")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		d, err := ParseDigest(e.Name())
		if err != nil {
			if !strings.HasPrefix(e.Name(), ".") { // atomicfile's temporaries
				rep.Problems = append(rep.Problems, VerifyProblem{Path: path, What: "chunk index " + e.Name(), Reason: "not a chunk index file"})
				_ = os.RemoveAll(path)
			}
			continue
		}
		info, err := os.Stat(c.BlobPath(d))
		if err != nil {
			_ = os.Remove(path)
			continue
		}
		chunks, err := readChunkIndex(path)
		var sum int64
		for _, r := range chunks {
			sum += r.Size
		}
		if err == nil && sum != info.Size() {
			err = fmt.Errorf("its chunks add up to %d bytes, the blob has %d", sum, info.Size())
		}
		if err != nil {
			rep.Problems = append(rep.Problems, VerifyProblem{Path: path, What: "chunk index of blob " + d.String(), Reason: err.Error()})
			_ = os.Remove(path)
		}
	}
}
