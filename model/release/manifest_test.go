package release

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"model.gguf": true, "adapters/a.gguf": true, "": false, "/abs": false, "../x": false,
		"a/../b": false, "a//b": false, ".": false, "manifest.json": false, `a\b`: false, "a/": false,
	} {
		if err := CheckPath(p); (err == nil) != ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestEncodeParseVerify(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) File {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		size, b3, s2, err := HashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return File{Path: name, Size: size, BLAKE3: b3, SHA256: s2}
	}
	m := &Manifest{Version: FormatVersion, Name: "x", Cogumi: "v", Files: []File{write("a/m.gguf", "GGUF")}, Gates: []Gate{}, Metrics: []Metrics{}}
	m.Card = CardInfo{License: "mit", Tags: []string{"gguf"}}
	card := Card(m)
	if !strings.HasPrefix(string(card), "---\nlicense: \"mit\"\n") {
		t.Errorf("card front matter:\n%s", card)
	}
	m.ModelCard = write(CardName, string(card))
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(dir, got); err != nil {
		t.Fatal(err)
	}
	if b2, _ := got.Encode(); string(b2) != string(b) || Digest(b2) != Digest(b) {
		t.Error("encoding a parsed manifest changed its bytes")
	}
	write("a/m.gguf", "GGUF changed")
	if err := Verify(dir, got); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify after a change: %v, want ErrMismatch", err)
	}
	bad := strings.Replace(string(b), `"a/m.gguf"`, `"../m.gguf"`, 1)
	if _, err := Parse([]byte(bad)); err == nil {
		t.Error("Parse accepted a path outside the release")
	}
}
