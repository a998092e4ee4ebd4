package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	zeebo "github.com/zeebo/blake3"
)

func TestDigestKnownAnswers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{"abc", "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"},
	} {
		d := DigestBytes([]byte(tc.in))
		if d.String() != tc.want {
			t.Errorf("DigestBytes(%q) = %s, want %s", tc.in, d, tc.want)
		}
		if d.Short() != tc.want[:12] {
			t.Errorf("Short() = %s, want %s", d.Short(), tc.want[:12])
		}
		p, err := ParseDigest(tc.want)
		if err != nil || p != d {
			t.Errorf("ParseDigest(%s) = %v, %v; want %v", tc.want, p, err, d)
		}
		r, n, err := DigestReader(strings.NewReader(tc.in))
		if err != nil || r != d || n != int64(len(tc.in)) {
			t.Errorf("DigestReader(%q) = %v, %d, %v", tc.in, r, n, err)
		}
	}
	if !(Digest{}).IsZero() || DigestBytes(nil).IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestParseBad(t *testing.T) {
	good := DigestBytes(nil).String()
	for _, s := range []string{
		"",
		good[:63],
		good + "0",
		strings.ToUpper(good),
		"g" + good[1:],
		" " + good[1:],
		good[:32] + "\x00" + good[33:],
	} {
		if _, err := ParseDigest(s); err == nil {
			t.Errorf("ParseDigest(%q) succeeded", s)
		}
		if _, err := ParseActionKey(s); err == nil {
			t.Errorf("ParseActionKey(%q) succeeded", s)
		}
	}
}

func TestActionKeyString(t *testing.T) {
	k := KeyFromRecords([]string{`rule "run" 1`})
	p, err := ParseActionKey(k.String())
	if err != nil || p != k {
		t.Fatalf("ParseActionKey(%s) = %v, %v", k, p, err)
	}
	if len(k.String()) != 64 || k.Short() != k.String()[:12] || k.IsZero() {
		t.Errorf("bad String/Short/IsZero: %s %s", k, k.Short())
	}
}

// The key and tree encodings are pinned: changing them silently would make
// every cache entry ever written a miss (or worse, if done carelessly, a
// false hit). Change the context strings' version when changing them.
func TestKeyAndTreeKnownAnswers(t *testing.T) {
	k := KeyFromRecords([]string{"rule run 1", `input "data/a.txt" af1349b9f5f9`})
	if got, want := k.String(), "696051fb58ab468724274e9f206c1b4fa626df04c4e9dfe5af3ee82d85b70132"; got != want {
		t.Errorf("KeyFromRecords = %s, want %s", got, want)
	}
	m := Manifest{Files: []FileEntry{
		{Path: "a.txt", Digest: DigestBytes([]byte("a")), Size: 1},
		{Path: "bin/run", Digest: DigestBytes(nil), Size: 0, Executable: true},
	}}
	if got, want := m.TreeDigest().String(), "455a7574c4d6f1d96d4eef0b1d0b832eb381d57380b032ada1d525f17925a4ce"; got != want {
		t.Errorf("TreeDigest = %s, want %s", got, want)
	}
}

// The encoding, spelled out byte by byte and hashed by another BLAKE3
// implementation, after its context prefix.
func TestKeyEncodingIndependently(t *testing.T) {
	records := []string{"rule run 1", strings.Repeat("x", 200)}
	material := append([]byte(actionKeyContext+"\x00"), 2, 10)
	material = append(material, "rule run 1"...)
	material = append(material, 0xc8, 0x01) // uvarint 200
	material = append(material, strings.Repeat("x", 200)...)
	want := ActionKey(zeebo.Sum256(material))
	if got := KeyFromRecords(records); got != want {
		t.Errorf("KeyFromRecords = %s, want %s", got, want)
	}

	d := DigestBytes([]byte("a"))
	m := Manifest{Files: []FileEntry{{Path: "a", Digest: d, Size: 1, Executable: true}}}
	material = append([]byte(treeDigestContext+"\x00"), 1, 1, 'a')
	material = append(material, d[:]...)
	material = append(material, 1, 1)
	wantTree := Digest(zeebo.Sum256(material))
	if got := m.TreeDigest(); got != wantTree {
		t.Errorf("TreeDigest = %s, want %s", got, wantTree)
	}
}

func TestKeyFromRecordsUnambiguous(t *testing.T) {
	cases := [][]string{
		nil,
		{""},
		{"", ""},
		{"a b"},
		{"a", "b"},
		{"a\nb"},
		{"ab"},
		{"a", "", "b"},
		{"b", "a"},
	}
	seen := map[ActionKey]int{}
	for i, c := range cases {
		k := KeyFromRecords(c)
		if j, ok := seen[k]; ok {
			t.Errorf("records %q and %q have the same key", cases[j], c)
		}
		seen[k] = i
		if Digest(k) == DigestBytes([]byte(strings.Join(c, "\n"))) {
			t.Errorf("key of %q equals a content digest", c)
		}
	}
}

func TestTreeDigestSensitivity(t *testing.T) {
	base := Manifest{Files: []FileEntry{
		{Path: "a", Digest: DigestBytes([]byte("x")), Size: 1},
		{Path: "b/c", Digest: DigestBytes([]byte("yz")), Size: 2},
	}}
	variants := []func(m *Manifest){
		func(m *Manifest) { m.Files[0].Path = "a2" },
		func(m *Manifest) { m.Files[1].Digest = DigestBytes([]byte("zz")) },
		func(m *Manifest) { m.Files[1].Size = 3 },
		func(m *Manifest) { m.Files[0].Executable = true },
		func(m *Manifest) { m.Files = m.Files[:1] },
		func(m *Manifest) { m.Files = nil },
	}
	seen := map[Digest]bool{base.TreeDigest(): true}
	for i, v := range variants {
		m := Manifest{Files: append([]FileEntry(nil), base.Files...)}
		v(&m)
		d := m.TreeDigest()
		if seen[d] {
			t.Errorf("variant %d: tree digest not changed", i)
		}
		seen[d] = true
	}
}

func TestDigestJSON(t *testing.T) {
	type doc struct {
		D Digest    `json:"d"`
		K ActionKey `json:"k"`
	}
	in := doc{D: DigestBytes([]byte("abc")), K: KeyFromRecords([]string{"x"})}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"d":"` + in.D.String() + `","k":"` + in.K.String() + `"}`
	if string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("Unmarshal = %v, %v", out, err)
	}
	for _, bad := range []string{`{"d":"xyz"}`, `{"d":12}`, `{"k":"` + strings.ToUpper(in.K.String()) + `"}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}

// DigestFile and DigestReader must agree with an independent BLAKE3
// implementation at sizes around the chunk, SIMD and buffer boundaries.
func TestDigestFileMatchesReference(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 63, 64, 1023, 1024, 1025, 16 << 10, 16<<10 + 1, 1 << 20, 2*segmentSize - 1, 2 * segmentSize, 2*segmentSize + 1, hashBufSize - 1, hashBufSize, hashBufSize + 1, 2*hashBufSize + 12345} {
		data := bytes.Repeat([]byte("cogumi builds models."), size/21+1)[:size]
		for i := range data {
			data[i] ^= byte(i * 7)
		}
		want := zeebo.Sum256(data)
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d, n, err := DigestFile(path)
		if err != nil || d != Digest(want) || n != int64(size) {
			t.Errorf("DigestFile(%d bytes) = %s, %d, %v; want %x", size, d.Short(), n, err, want[:6])
		}
		d, n, err = DigestReader(bytes.NewReader(data))
		if err != nil || d != Digest(want) || n != int64(size) {
			t.Errorf("DigestReader(%d bytes) = %s, %d, %v; want %x", size, d.Short(), n, err, want[:6])
		}
		if d := DigestBytes(data); d != Digest(want) {
			t.Errorf("DigestBytes(%d bytes) = %s; want %x", size, d.Short(), want[:6])
		}
	}
	if d, n, err := DigestFile("/dev/null"); err != nil || d != DigestBytes(nil) || n != 0 {
		t.Errorf("DigestFile(/dev/null) = %s, %d, %v", d.Short(), n, err)
	}
	if _, _, err := DigestFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("DigestFile of a missing file succeeded")
	}
}

// TestDigestFileMatchesB3sum: a blob's identity is what b3sum prints for
// it, through every path DigestFile takes (whole read, segments read with
// pread, segments of a mapping over one and several windows), at sizes that
// are not powers of two and below one chunk.
func TestDigestFileMatchesB3sum(t *testing.T) {
	b3sum, err := exec.LookPath("b3sum")
	if err != nil {
		t.Skip("b3sum is not installed")
	}
	dir := t.TempDir()
	for _, size := range []int{0, 1000, 1<<20 + 7, 3*segmentSize + 1, mapMin + 1, mapWindow + 3*segmentSize + 999} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*13 + i>>11)
		}
		path := filepath.Join(dir, fmt.Sprintf("f%d", size))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(b3sum, "--no-names", path).Output()
		if err != nil {
			t.Fatalf("b3sum: %v", err)
		}
		d, _, err := DigestFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := d.String(), strings.TrimSpace(string(out)); got != want {
			t.Errorf("%d bytes: DigestFile = %s, b3sum = %s", size, got, want)
		}
	}
}
