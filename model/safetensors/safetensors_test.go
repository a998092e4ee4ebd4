package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rawFile assembles a file from a header string and a data section.
func rawFile(hdr string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(b, hdr...), data...)
}

func writeTemp(t testing.TB, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKnownBytes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tiny.safetensors")
	w, err := NewWriter(p, []Info{
		{Name: "a", DType: F32, Shape: []int64{2}},
		{Name: "b", DType: U8, Shape: []int64{3}},
	}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("a", []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("b", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Written by hand: 138 bytes of JSON plus 6 spaces of padding = 0x90.
	want := []byte("\x90\x00\x00\x00\x00\x00\x00\x00" +
		`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}      ` +
		"\x00\x00\x80\x3f\x00\x00\x00\x40\x01\x02\x03")
	if !bytes.Equal(got, want) {
		t.Fatalf("file bytes:\n got %q\nwant %q", got, want)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rt.safetensors")
	decl := []Info{
		{Name: "w", DType: F32, Shape: []int64{3, 4}},
		{Name: "h", DType: F16, Shape: []int64{2, 2}},
		{Name: "bf", DType: BF16, Shape: []int64{5}},
		{Name: "empty", DType: F32, Shape: []int64{0, 7}},
		{Name: "scalar", DType: I64, Shape: []int64{}},
		{Name: "mask", DType: BOOL, Shape: []int64{1, 2, 3}},
	}
	vals := map[string][]float32{
		"w":  {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
		"h":  {0.5, -1, 1024, 1e-6},
		"bf": {1, 2, 3.140625, -0.5, 100},
	}
	data := map[string][]byte{"empty": {}, "scalar": {42, 0, 0, 0, 0, 0, 0, 0}, "mask": {1, 0, 1, 1, 0, 0}}
	for _, d := range decl {
		if v, ok := vals[d.Name]; ok {
			b := make([]byte, len(v)*d.DType.Size())
			EncodeF32(b, v, d.DType)
			data[d.Name] = b
		}
	}
	w, err := NewWriter(p, decl, map[string]string{"format": "pt", "note": "ü \"quoted\""})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range decl {
		tw, err := w.TensorWriter(d.Name)
		if err != nil {
			t.Fatal(err)
		}
		// Byte by byte: the streaming path must not care how data arrives.
		for _, c := range data[d.Name] {
			if _, err := tw.Write([]byte{c}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, want := f.Names(), []string{"w", "h", "bf", "empty", "scalar", "mask"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %v, want %v (file order)", got, want)
	}
	if got := f.Metadata(); got["note"] != "ü \"quoted\"" || got["format"] != "pt" || len(got) != 2 {
		t.Errorf("Metadata() = %v", got)
	}
	for _, d := range decl {
		info, ok := f.Tensor(d.Name)
		if !ok || info.DType != d.DType || !reflect.DeepEqual(info.Shape, d.Shape) {
			t.Errorf("Tensor(%q) = %+v, %v", d.Name, info, ok)
		}
		if got := f.Bytes(d.Name); !bytes.Equal(got, data[d.Name]) {
			t.Errorf("Bytes(%q) = %v, want %v", d.Name, got, data[d.Name])
		}
	}
	row := make([]float32, 4)
	if err := f.ReadF32Rows("w", 1, 1, row); err != nil || !reflect.DeepEqual(row, []float32{4, 5, 6, 7}) {
		t.Errorf("ReadF32Rows(w, 1, 1) = %v, %v", row, err)
	}
	all := make([]float32, 5)
	if err := f.ReadF32Rows("bf", 0, 1, all); err != nil || !reflect.DeepEqual(all, vals["bf"]) {
		t.Errorf("ReadF32Rows(bf) = %v, %v", all, err)
	}
	if err := f.ReadF32Rows("h", 0, 2, all[:4]); err != nil || all[2] != 1024 || all[3] != F16ToF32(F32ToF16(1e-6)) {
		t.Errorf("ReadF32Rows(h) = %v, %v", all[:4], err)
	}
	for _, tc := range []struct {
		name       string
		row0, rows int
		dst        int
		want       string
	}{
		{"w", 2, 2, 8, "outside its 3 rows"},
		{"w", -1, 1, 4, "outside"},
		{"w", 0, 2, 7, "destination holds 7 values"},
		{"scalar", 0, 1, 1, "cannot be read as float32"},
		{"nope", 0, 1, 1, `no tensor "nope"`},
	} {
		err := f.ReadF32Rows(tc.name, tc.row0, tc.rows, make([]float32, tc.dst))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadF32Rows(%s, %d, %d) error = %v, want %q", tc.name, tc.row0, tc.rows, err, tc.want)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.Bytes("w") != nil || f.Close() != nil {
		t.Error("a closed file must hand out nothing and close twice quietly")
	}
}

func TestOpenErrors(t *testing.T) {
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	good := `{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`
	for _, tc := range []struct {
		name    string
		content []byte
		tensor  string // expected FormatError.Tensor
		want    string
	}{
		{"empty file", nil, "", "truncated: 0 bytes"},
		{"short length", []byte{1, 2, 3}, "", "truncated: 3 bytes"},
		{"truncated header", rawFile(good, f32(4))[:30], "", "runs past the end of the file"},
		{"truncated data", rawFile(good, f32(3)), "a", "run past the end of the data section (12 bytes)"},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<40), "", "exceeds the 104857600-byte limit"},
		{"tiny header length", rawFile("{", nil), "", "too small"},
		{"not json", rawFile(`{"a":`, nil), "", "not valid JSON"},
		{"not an object", rawFile(`[1,2]`, nil), "", "not a JSON object"},
		{"trailing data", rawFile(`{} {}`, nil), "", "trailing data"},
		{"bad utf8", rawFile("{\"\xff\":1}", nil), "", "not valid UTF-8"},
		{"shape lies", rawFile(`{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}`, f32(4)), "a", "shape [2 3] of F32 needs 24 bytes but data_offsets [0, 16] hold 16"},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}`, f32(2)), "a", `unknown dtype "F33"`},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32(3)), "b", `overlap tensor "a" at [0, 8]`},
		{"contained overlap", rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"c":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}}`, f32(4)), "b", "overlap"},
		{"out of range", rawFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[100,104]}}`, f32(2)), "a", "run past the end of the data section"},
		{"negative dim", rawFile(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, nil), "a", "want an integer >= 0"},
		{"float dim", rawFile(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}`, nil), "a", "want an integer >= 0"},
		{"overflowing shape", rawFile(`{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil), "a", "too large"},
		{"offsets backwards", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, f32(1)), "a", "end before they begin"},
		{"three offsets", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0,0]}}`, nil), "a", "has 3 numbers"},
		{"no dtype", rawFile(`{"a":{"shape":[0],"data_offsets":[0,0]}}`, nil), "a", "no dtype"},
		{"dtype not string", rawFile(`{"a":{"dtype":4,"shape":[0],"data_offsets":[0,0]}}`, nil), "a", `field "dtype" has the wrong JSON type`},
		{"duplicate", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil), "a", "names this tensor twice"},
		{"bad metadata", rawFile(`{"__metadata__":{"k":1}}`, nil), "", "must map strings to strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, tc.content)
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatalf("Open succeeded, want error containing %q", tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			if fe.Path != p || fe.Tensor != tc.tensor || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error = %v (tensor %q), want tensor %q and %q", err, fe.Tensor, tc.tensor, tc.want)
			}
		})
	}
}

func TestOpenAcceptsGapsAndEmptyTensors(t *testing.T) {
	hdr := `{"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[6,6]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}  `
	f, err := Open(writeTemp(t, rawFile(hdr, []byte{1, 2, 0, 0, 0, 0, 3, 4})))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Names(); !reflect.DeepEqual(got, []string{"a", "z", "b"}) {
		t.Errorf("Names() = %v", got)
	}
	if !bytes.Equal(f.Bytes("b"), []byte{3, 4}) || len(f.Bytes("z")) != 0 {
		t.Errorf("Bytes: b=%v z=%v", f.Bytes("b"), f.Bytes("z"))
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	decl := []Info{{Name: "a", DType: F32, Shape: []int64{2}}, {Name: "b", DType: U8, Shape: []int64{1}}}
	for _, tc := range []struct {
		name string
		run  func(w *Writer) error
		want string
	}{
		{"out of order", func(w *Writer) error { return w.WriteTensor("b", []byte{1}) }, `"b" written out of order: "a" is next`},
		{"too many bytes", func(w *Writer) error { return w.WriteTensor("a", make([]byte, 9)) }, "more than its 8 bytes"},
		{"too few bytes", func(w *Writer) error { return w.WriteTensor("a", make([]byte, 7)) }, "7 bytes written, its shape [2] of F32 needs 8"},
		{"missing tensor", func(w *Writer) error {
			if err := w.WriteTensor("a", make([]byte, 8)); err != nil {
				return err
			}
			return w.Close()
		}, `never written: "b"`},
		{"extra tensor", func(w *Writer) error {
			w.WriteTensor("a", make([]byte, 8))
			w.WriteTensor("b", []byte{1})
			return w.WriteTensor("c", nil)
		}, "after every declared tensor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			w, err := NewWriter(p, decl, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = tc.run(w)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if cerr := w.Close(); cerr == nil {
				t.Fatal("Close succeeded after an error")
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("a failed write left %s behind", p)
			}
		})
	}
	for _, tc := range []struct {
		decl []Info
		want string
	}{
		{[]Info{{Name: "a", DType: "X", Shape: []int64{1}}}, `unknown dtype "X"`},
		{[]Info{{Name: "", DType: U8}}, "empty name"},
		{[]Info{{Name: metadataKey, DType: U8}}, "reserved"},
		{[]Info{{Name: "a", DType: U8}, {Name: "a", DType: U8}}, "declared twice"},
		{[]Info{{Name: "a", DType: U8, Shape: []int64{-2}}}, "negative"},
	} {
		if _, err := NewWriter(filepath.Join(dir, "x"), tc.decl, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewWriter(%v) error = %v, want %q", tc.decl, err, tc.want)
		}
	}
	// Abort leaves nothing, not even the temporary file.
	w, err := NewWriter(filepath.Join(dir, "aborted"), decl, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

func TestWriterReadableAfterLargeStream(t *testing.T) {
	// A tensor larger than the writer's buffer, streamed in odd-sized pieces.
	const n = 700_000
	p := filepath.Join(t.TempDir(), "big.safetensors")
	w, err := NewWriter(p, []Info{{Name: "x", DType: F32, Shape: []int64{n}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tw, _ := w.TensorWriter("x")
	buf := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(i)))
	}
	if _, err := io.Copy(tw, io.LimitReader(bytes.NewReader(buf), int64(len(buf)))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dst := make([]float32, n)
	if err := f.ReadF32Rows("x", 0, 1, dst); err != nil || dst[n-1] != n-1 {
		t.Fatalf("last value %v, err %v", dst[n-1], err)
	}
}
