package rowexpr

import (
	"encoding/json"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// FuzzExpr evaluates arbitrary expressions and templates over arbitrary
// JSONL rows, as dataset's where and prompt attributes do for every row of
// a data file. Nothing may panic: a bad expression or a row it cannot
// handle is an error.
func FuzzExpr(f *testing.F) {
	f.Add(`row.domain == "coding"`, []byte(`{"domain":"coding","difficulty":"hard","index":17}`))
	f.Add(`"Write a ${row.difficulty} question about ${upper(row.domain)}"`, []byte(`{"domain":"maths","difficulty":"easy"}`))
	f.Add(`length(row.messages) > 2 && row.messages[0].role == "system"`, []byte(`{"messages":[{"role":"system","content":"x"},{"role":"user","content":"y"},{"role":"assistant","content":"z"}]}`))
	f.Add(`%{ if row.score > 0.5 }keep%{ else }drop%{ endif }`, []byte(`{"score":0.75,"tags":null}`))
	f.Add(`contains(row.tags, "a") ? row.text : "${row.text}\n${row.answer}"`, []byte(`{"tags":["a","b"],"text":"t","answer":1e400}`))
	f.Fuzz(func(t *testing.T, src string, rowJSON []byte) {
		var row map[string]any
		if err := json.Unmarshal(rowJSON, &row); err != nil {
			return
		}
		if e, err := FromValue("where", Encode(src, nil, nil)); err == nil {
			if _, err := e.Value(row); err == nil {
				_, _ = e.Bool(row)
				_, _ = e.String(row)
			}
		}
		// The same text as a plain string: a template (a prompt read with
		// file()).
		if e, err := FromValue("prompt", cty.StringVal(src)); err == nil {
			_, _ = e.String(row)
		}
	})
}
