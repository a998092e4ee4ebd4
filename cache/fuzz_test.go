package cache

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzManifestDecode feeds arbitrary bytes to the path every AC entry takes:
// decode, Validate, and for valid entries a canonical round trip. Nothing
// may panic, and a valid entry must survive re-encoding unchanged.
func FuzzManifestDecode(f *testing.F) {
	f.Add([]byte(`{"key":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","outputs":{"files":[{"path":"a/b.txt","digest":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","size":0}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r ActionResult
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			return
		}
		_ = r.Outputs.TreeDigest()
		_ = r.Outputs.TotalSize()
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatalf("re-encoding a valid result: %v", err)
		}
		var again ActionResult
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("decoding a re-encoded result: %v\n%s", err, b)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("re-encoded result invalid: %v\n%s", err, b)
		}
		if again.Outputs.TreeDigest() != r.Outputs.TreeDigest() || !reflect.DeepEqual(again.Outputs, r.Outputs) {
			t.Fatalf("round trip changed the outputs:\n%+v\n%+v", r.Outputs, again.Outputs)
		}
	})
}

// FuzzStatCacheDecode checks that no stat cache file makes decoding panic.
func FuzzStatCacheDecode(f *testing.F) {
	f.Add(encodeStatCache(map[string]statEntry{"/ws/a.txt": {size: 3, digest: DigestBytes([]byte("abc"))}}))
	f.Add([]byte(statCacheMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, ok := decodeStatCache(data)
		if ok && !reflect.DeepEqual(decodeOrNil(encodeStatCache(entries)), entries) {
			t.Fatal("re-encoding changed the entries")
		}
	})
}

// decodeOrNil decodes a stat cache file, nil if it is invalid.
func decodeOrNil(data []byte) map[string]statEntry {
	e, _ := decodeStatCache(data)
	return e
}
