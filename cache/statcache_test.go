package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// openTestStatCache opens a stat cache whose clock runs ahead, so that files
// written by the test are not "racily clean".
func openTestStatCache(t *testing.T, path string, ahead time.Duration) *StatCache {
	t.Helper()
	s, err := OpenStatCache(path)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(ahead) }
	return s
}

func TestStatCacheSkipsUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "data.txt")
	writeFiles(t, dir, map[string]string{"data.txt": "version 1"})
	s := openTestStatCache(t, filepath.Join(dir, "stat.bin"), time.Minute)
	want := DigestBytes([]byte("version 1"))
	for i := range 3 {
		d, n, err := s.Digest(file)
		if err != nil || d != want || n != 9 {
			t.Fatalf("Digest #%d = %s, %d, %v", i, d.Short(), n, err)
		}
	}
	if h := s.hashes.Load(); h != 1 {
		t.Errorf("hashed %d times, want 1", h)
	}
	// touch: a new mtime, same content: hashed again, same digest.
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	if d, _, err := s.Digest(file); err != nil || d != want {
		t.Fatalf("Digest after touch = %s, %v", d.Short(), err)
	}
	if h := s.hashes.Load(); h != 2 {
		t.Errorf("after touch: hashed %d times, want 2", h)
	}
	// An edit is seen.
	writeFiles(t, dir, map[string]string{"data.txt": "version 2!"})
	if d, _, err := s.Digest(file); err != nil || d != DigestBytes([]byte("version 2!")) {
		t.Errorf("Digest after edit = %s, %v", d.Short(), err)
	}
	if _, _, err := s.Digest("relative/path"); err == nil {
		t.Error("relative path accepted")
	}
	if _, _, err := s.Digest(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
	if _, _, err := s.Digest(dir); err == nil {
		t.Error("directory accepted")
	}
}

// A file hashed within racyMargin of its last change may change again
// without its stat changing: its digest is checked again next time.
func TestStatCacheRacyFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hot.txt")
	writeFiles(t, dir, map[string]string{"hot.txt": "aaaa"})
	s := openTestStatCache(t, filepath.Join(dir, "stat.bin"), 0)
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Digest(file); err != nil {
		t.Fatal(err)
	}
	// Same size, same mtime (as on a coarse-timestamp filesystem).
	writeFiles(t, dir, map[string]string{"hot.txt": "bbbb"})
	if err := os.Chtimes(file, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if d, _, err := s.Digest(file); err != nil || d != DigestBytes([]byte("bbbb")) {
		t.Errorf("racy file: got %s, %v; want the new content's digest", d.Short(), err)
	}
}

func TestStatCacheFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"blobs/abc": "weights"})
	link := filepath.Join(dir, "snapshot", "model.safetensors")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../blobs/abc", link); err != nil {
		t.Fatal(err)
	}
	s := openTestStatCache(t, filepath.Join(dir, "stat.bin"), time.Minute)
	if d, n, err := s.Digest(link); err != nil || d != DigestBytes([]byte("weights")) || n != 7 {
		t.Errorf("Digest(link) = %s, %d, %v", d.Short(), n, err)
	}
}

func TestStatCacheSaveOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "srcstat", "ws.bin")
	writeFiles(t, dir, map[string]string{"a": "a", "b": "bb"})
	s := openTestStatCache(t, path, time.Minute)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("Save wrote an unchanged cache")
	}
	for _, f := range []string{"a", "b"} {
		if _, _, err := s.Digest(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStatCache(t, path, time.Minute)
	if s2.Len() != 2 {
		t.Fatalf("reopened cache has %d entries", s2.Len())
	}
	if d, _, err := s2.Digest(filepath.Join(dir, "b")); err != nil || d != DigestBytes([]byte("bb")) {
		t.Errorf("Digest(b) = %s, %v", d.Short(), err)
	}
	if h := s2.hashes.Load(); h != 0 {
		t.Errorf("reopened cache hashed %d files", h)
	}

	// A damaged file is an empty cache, not an error.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"flipped bit": append(append([]byte(nil), data[:len(data)/2]...), append([]byte{data[len(data)/2] ^ 1}, data[len(data)/2+1:]...)...),
		"truncated":   data[:len(data)-5],
		"empty":       nil,
		"other magic": append([]byte("cogumi srcstat v0\n"), data[len(statCacheMagic):]...),
	} {
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		s3, err := OpenStatCache(path)
		if err != nil || s3.Len() != 0 {
			t.Errorf("%s: OpenStatCache = %d entries, %v", name, s3.Len(), err)
		}
	}
}

// decodeStatCache must reject, never panic on, any bytes with a valid
// checksum but a lying body.
func TestStatCacheDecodeHostile(t *testing.T) {
	seal := func(body []byte) []byte {
		data := append([]byte(statCacheMagic), body...)
		sum := DigestBytes(data) // the same BLAKE3 as the file's checksum
		return append(data, sum[:]...)
	}
	for name, body := range map[string][]byte{
		"huge count":       {0xff, 0xff, 0xff, 0xff, 0x0f},
		"count too big":    {2, 1, 'a'},
		"path past end":    append([]byte{1, 0x7f}, make([]byte, statEntryFixed)...),
		"short entry":      {1, 1, 'a', 1, 2, 3},
		"trailing garbage": append(append([]byte{1, 1, 'a'}, make([]byte, statEntryFixed)...), 9),
		"bad varint":       {0x80},
	} {
		if _, ok := decodeStatCache(seal(body)); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	good := seal(append([]byte{1, 1, 'a'}, make([]byte, statEntryFixed)...))
	if e, ok := decodeStatCache(good); !ok || len(e) != 1 {
		t.Errorf("well-formed file rejected")
	}
}

func TestStatCachePath(t *testing.T) {
	c := openTestCache(t)
	a, b := c.StatCachePath("/ws/one"), c.StatCachePath("/ws/two")
	if a == b || filepath.Dir(a) != filepath.Join(c.Dir(), "srcstat") {
		t.Errorf("StatCachePath = %s, %s", a, b)
	}
}
