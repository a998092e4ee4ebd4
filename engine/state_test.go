package engine

import (
	"encoding/json"
	"testing"

	"github.com/cogumi/cogumi/cache"
)

// TestKeysOnDisk: action keys travel as cache.ActionKey values, and
// state.json and the events keep the hex strings they always had (a
// missing key is an absent field, never 64 zeros).
func TestKeysOnDisk(t *testing.T) {
	k := cache.KeyFromRecords([]string{`rule = "run"`})
	h := k.String()
	f := stateFile{Targets: map[string]lastBuild{"//a:b": {Key: k}, "//a:c": {Key: k, Linked: k}}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"targets":{"//a:b":{"key":"` + h + `"},"//a:c":{"key":"` + h + `","linked":"` + h + `"}}}`
	if string(b) != want {
		t.Errorf("state.json =\n%s\nwant\n%s", b, want)
	}
	var back stateFile
	if err := json.Unmarshal(b, &back); err != nil || back.Targets["//a:c"] != f.Targets["//a:c"] || back.Targets["//a:b"] != f.Targets["//a:b"] {
		t.Errorf("read back %+v, %v; want %+v", back, err, f)
	}
	for _, c := range []struct {
		ev   Event
		want string
	}{
		{Event{Label: "//a:b", Result: Built, ActionKey: k}, `{"label":"//a:b","result":"built","action_key":"` + h + `","seconds":0}`},
		{Event{Label: "//a:b", Result: Skipped}, `{"label":"//a:b","result":"skipped","seconds":0}`},
	} {
		if b, err := json.Marshal(c.ev); err != nil || string(b) != c.want {
			t.Errorf("event = %s, %v; want %s", b, err, c.want)
		}
	}
}
