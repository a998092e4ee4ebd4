// Package evalset reads the examples of an evaluation or calibration
// dataset (JSONL rows or text paragraphs, a file or a directory of them)
// and writes the eval artifact: metrics.json and scores.jsonl.
//
// The text of an example is the row's "text" field; else its chat
// "messages" joined as "<role>: <content>\n" lines; for a .txt file each
// non-empty paragraph. Every example keeps its file, line and the SHA-256
// of its raw bytes, so that scores can be matched to rows wherever they go.
package evalset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Example is one example of a dataset.
type Example struct {
	Index     int    // in dataset order, from 0
	File      string // the file's path inside the dataset (its base name for a single file)
	Line      int    // 1-based line where the row (paragraph) starts
	RowSHA256 string // hex SHA-256 of the row's raw bytes (without the line ending)
	Group     string // the value of the by field; "" without one
	Text      string
}

// Where is "file:line" for messages.
func (e Example) Where() string { return fmt.Sprintf("%s:%d", e.File, e.Line) }

// Options say how to read a dataset.
type Options struct {
	By  string // the row field that groups examples; "" for none
	Max int    // keep the first Max examples; 0 for all
}

// Read returns the examples under path (a .jsonl or .txt file, or a
// directory whose .jsonl and .txt files are read in path order). Errors
// name the file and line.
func Read(path string, o Options) ([]Example, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	type file struct{ abs, name string }
	var files []file
	if !fi.IsDir() {
		files = []file{{path, filepath.Base(path)}}
	} else {
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !(strings.HasSuffix(p, ".jsonl") || strings.HasSuffix(p, ".txt")) {
				return nil
			}
			rel, _ := filepath.Rel(path, p)
			files = append(files, file{p, filepath.ToSlash(rel)})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
		if len(files) == 0 {
			return nil, fmt.Errorf("dataset %s: no .jsonl or .txt files", path)
		}
	}
	var out []Example
	for _, f := range files {
		var err error
		switch {
		case strings.HasSuffix(f.name, ".txt"):
			if o.By != "" {
				return nil, fmt.Errorf("%s: by = %q needs JSONL rows; a .txt file has no fields", f.name, o.By)
			}
			out, err = readText(f.abs, f.name, out, o.Max)
		default:
			out, err = readJSONL(f.abs, f.name, out, o)
		}
		if err != nil {
			return nil, err
		}
		if o.Max > 0 && len(out) >= o.Max {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dataset %s holds no examples", path)
	}
	return out, nil
}

// lines calls fn with each line of the file (without its line ending) and
// its 1-based number; fn returns false to stop.
func lines(path string, fn func(line []byte, n int) (bool, error)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			break
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		more, ferr := fn(line, n)
		if ferr != nil || !more {
			return ferr
		}
	}
	return nil
}

func readJSONL(path, name string, out []Example, o Options) ([]Example, error) {
	err := lines(path, func(line []byte, n int) (bool, error) {
		if len(bytes.TrimSpace(line)) == 0 {
			return true, nil
		}
		var row map[string]any
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&row); err != nil || d.More() {
			if err == nil {
				err = fmt.Errorf("more than one value on the line")
			}
			return false, fmt.Errorf("%s:%d: not a JSON object: %v", name, n, err)
		}
		text, err := RowText(row)
		if err != nil {
			return false, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		ex := Example{Index: len(out), File: name, Line: n, RowSHA256: sha(line), Text: text}
		if o.By != "" {
			if ex.Group, err = groupOf(row, o.By); err != nil {
				return false, fmt.Errorf("%s:%d: %v", name, n, err)
			}
		}
		out = append(out, ex)
		return o.Max == 0 || len(out) < o.Max, nil
	})
	return out, err
}

// RowText is the text of a JSONL row: "text", else chat "messages".
func RowText(row map[string]any) (string, error) {
	if v, ok := row["text"]; ok {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf(`"text" is not a string`)
		}
		if s == "" {
			return "", fmt.Errorf(`"text" is empty`)
		}
		return s, nil
	}
	msgs, ok := row["messages"]
	if !ok {
		return "", fmt.Errorf(`the row has neither "text" nor "messages"`)
	}
	list, ok := msgs.([]any)
	if !ok || len(list) == 0 {
		return "", fmt.Errorf(`"messages" is not a non-empty list`)
	}
	var b strings.Builder
	for i, m := range list {
		mm, ok := m.(map[string]any)
		role, rok := mm["role"].(string)
		content, cok := mm["content"].(string)
		if !ok || !rok || !cok {
			return "", fmt.Errorf(`"messages"[%d] needs string "role" and "content"`, i)
		}
		fmt.Fprintf(&b, "%s: %s\n", role, content)
	}
	return b.String(), nil
}

func groupOf(row map[string]any, field string) (string, error) {
	v, ok := row[field]
	if !ok || v == nil {
		return "", fmt.Errorf("the row has no field %q to group by", field)
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("field %q is not a string, number or bool", field)
}

// readText makes one example of each paragraph (lines up to a blank line).
func readText(path, name string, out []Example, max int) ([]Example, error) {
	var para [][]byte
	start := 0
	flush := func() {
		if len(para) == 0 {
			return
		}
		raw := bytes.Join(para, []byte("\n"))
		out = append(out, Example{Index: len(out), File: name, Line: start, RowSHA256: sha(raw), Text: string(raw)})
		para = nil
	}
	err := lines(path, func(line []byte, n int) (bool, error) {
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			return max == 0 || len(out) < max, nil
		}
		if len(para) == 0 {
			start = n
		}
		para = append(para, append([]byte(nil), line...))
		return true, nil
	})
	if err == nil && (max == 0 || len(out) < max) {
		flush()
	}
	return out, err
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
