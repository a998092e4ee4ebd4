package cache

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Limits for the free-text fields of an ActionResult.
const (
	maxLabelLen   = 4096
	maxRecordLen  = 1 << 20
	maxRecords    = 1 << 20
	maxHostLen    = 1024
	maxActionJSON = 256 << 20 // bytes of one AC entry on disk
)

// ActionResult is an action cache entry: what an action with key Key
// produced, and how. Only Outputs is the artifact; the log and the timing
// live beside it so that they never defeat early cutoff.
type ActionResult struct {
	Key     ActionKey `json:"key"`
	Label   string    `json:"label"` // for humans only
	Outputs Manifest  `json:"outputs"`
	Records []string  `json:"records"` // the key's records, for `cogumi why`
	Log     Digest    `json:"log"`     // blob of stdout and stderr (zero: none)
	LogSize int64     `json:"log_size"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Host    string    `json:"host"`
	// BlobsRemote marks a local entry recorded from a remote cache hit: its
	// output blobs may live only in the bucket ("build without the bytes"),
	// and are fetched when something needs them. Such an entry is valid
	// without its blobs.
	BlobsRemote bool `json:"blobs_remote,omitempty"`
}

// Validate checks a result received from anywhere before it is used.
func (r *ActionResult) Validate() error {
	if r == nil {
		return fmt.Errorf("no action result")
	}
	if r.Key.IsZero() {
		return fmt.Errorf("zero action key")
	}
	if err := validText("label", r.Label, maxLabelLen); err != nil {
		return err
	}
	if err := validText("host", r.Host, maxHostLen); err != nil {
		return err
	}
	if len(r.Records) > maxRecords {
		return fmt.Errorf("%d records: more than %d", len(r.Records), maxRecords)
	}
	for i, rec := range r.Records {
		if err := validText(fmt.Sprintf("record %d", i+1), rec, maxRecordLen); err != nil {
			return err
		}
	}
	if err := r.Outputs.Validate(); err != nil {
		return fmt.Errorf("outputs: %w", err)
	}
	if r.LogSize < 0 || r.LogSize >= MaxBlobSize || r.Log.IsZero() && r.LogSize != 0 {
		return fmt.Errorf("impossible log size %d", r.LogSize)
	}
	if math.IsNaN(r.Seconds) || math.IsInf(r.Seconds, 0) || r.Seconds < 0 {
		return fmt.Errorf("impossible duration %v seconds", r.Seconds)
	}
	return nil
}

// validText checks a free-text field: valid UTF-8 of bounded length.
func validText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s: longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q: not valid UTF-8", what, truncate(s, 80))
	}
	return nil
}
