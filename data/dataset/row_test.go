package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseValidation(t *testing.T) {
	tests := []struct {
		name, line, err string
	}{
		{"object", `{"a":1,"b":"x"}`, ""},
		{"spaces around", "  {\"a\": 1}\t", ""},
		{"nested objects may repeat keys of their parent", `{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, ""},
		{"not JSON", `{"a":1`, "not JSON: unexpected end of JSON input"},
		{"not JSON at all", `hello`, "not JSON: invalid character 'h' looking for beginning of value"},
		{"trailing garbage", `{"a":1} x`, "not JSON: invalid character 'x' after top-level value"},
		{"array", `[1,2]`, "not a JSON object (a JSON array)"},
		{"string", `"text"`, "not a JSON object (a JSON string)"},
		{"number", `17`, "not a JSON object (a JSON number)"},
		{"null", `null`, "not a JSON object (a JSON null)"},
		{"duplicate key", `{"domain":"a","x":1,"domain":"b"}`, `duplicate key "domain"`},
		{"duplicate key escaped", `{"a":1,"\u0061":2}`, `duplicate key "a"`},
		{"duplicate nested key", `{"m":[{"role":"user","role":"x"}]}`, `duplicate key "role"`},
		{"key inside a string is no key", `{"a":"{\"a\":1,\"a\":2}"}`, ""},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", "invalid UTF-8 at byte 7"},
		{"blank", "   ", errBlank.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p parser
			_, err := p.parse([]byte(tt.line))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("parse(%q) error = %q, want %q", tt.line, got, tt.err)
			}
		})
	}
}

func TestLineReader(t *testing.T) {
	in := "{\"a\":1}\r\n{\"b\":2}\n\n{\"c\":3}" // CRLF, a blank line, no final newline
	lr := newLineReader(strings.NewReader(in), 64)
	var got []string
	var lines []int
	for {
		b, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
		lines = append(lines, lr.line)
	}
	want := []string{`{"a":1}`, `{"b":2}`, ``, `{"c":3}`}
	if strings.Join(got, "|") != strings.Join(want, "|") || lines[3] != 4 {
		t.Errorf("lines = %q at %v, want %q ending at line 4", got, lines, want)
	}

	// A line over the bound fails with its line number, whether it fits
	// the reader's buffer or not.
	for _, size := range []int{100, 600 << 10} {
		long := `{"a":"` + strings.Repeat("x", size) + `"}`
		lr := newLineReader(strings.NewReader("{}\n"+long+"\n{}\n"), 64)
		if _, err := lr.next(); err != nil {
			t.Fatal(err)
		}
		_, err := lr.next()
		var re *RowError
		if !errors.As(err, &re) || re.Line != 2 || !strings.Contains(err.Error(), "line is longer than 64 bytes") {
			t.Errorf("size %d: error = %v, want line 2 longer than 64 bytes", size, err)
		}
	}
}

func TestWithField(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"q":"a"}`, `{"q":"a","text":"T"}`},
		{`{"q":"a" , "z":[1, 2] }`, `{"q":"a" , "z":[1, 2],"text":"T"}`},
		{`{}`, `{"text":"T"}`},
		{`{ }`, `{"text":"T"}`},
		{`{"text": "old", "q": 1}`, `{"text": "T", "q": 1}`},
		{`{"q": 1, "text" : {"nested": "x"} }`, `{"q": 1, "text" : "T" }`},
	}
	for _, tt := range tests {
		var p parser
		pr, err := p.parse([]byte(tt.in))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		got := string(withField(nil, pr.obj, pr.fields, "text", []byte(`"T"`)))
		if got != tt.want {
			t.Errorf("withField(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got := string(appendJSONString(nil, "a<b> & \"c\"\n")); got != `"a<b> & \"c\"\n"` {
		t.Errorf("appendJSONString = %s", got)
	}
}

// FuzzParse checks the parser against encoding/json: a row it accepts,
// encoding/json accepts too and decodes to the same values.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":"x","c":[1,{"d":null}],"e":true,"f":false,"g":-1.5e3}`,
		`{"\u0061":"\n\"q\"","b":{"c":{}}}`, `{}`, `[1]`, `{"a":1,"a":2}`, ` {"t" : "x" } `,
		`{"n":1e999}`, `{"s":"\ud800"}`, "{\"a\":\"\xff\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var p parser
		pr, err := p.parse([]byte(line))
		var want map[string]any
		jerr := json.Unmarshal([]byte(line), &want)
		if err != nil {
			return // stricter than encoding/json: duplicates, UTF-8, non-objects
		}
		if jerr != nil {
			t.Fatalf("parse accepted %q, encoding/json says %v", line, jerr)
		}
		if !reflect.DeepEqual(pr.row, want) {
			t.Fatalf("parse(%q) = %#v, encoding/json gives %#v", line, pr.row, want)
		}
	})
}

// FuzzAppendJSONString checks the escaper against encoding/json.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"plain", "a\"b\\c\n\r\t\b\f\x01\x1f", "é\u2028\u2029", "\xff\xfe", "<b>&amp;</b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(appendJSONString(nil, s)); got != want {
			t.Fatalf("appendJSONString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	})
}
