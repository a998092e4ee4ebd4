package cache

import (
	"encoding/binary"

	"lukechampine.com/blake3"
)

// Context prefixes separate the domains of action keys, tree digests and
// content digests: each encoding starts with its context and a NUL byte.
// (BLAKE3's key-derivation mode would do the same, but costs eight times a
// plain hash of these short inputs, and a no-op build computes tens of
// thousands of them.)
const (
	actionKeyContext  = "cogumi 2025-01-01 action key v1"
	treeDigestContext = "cogumi 2025-01-01 tree digest v1"
)

// KeyFromRecords hashes the records of an action's recipe, in order, into
// its action key. Each record is length-prefixed before hashing, so the
// encoding is unambiguous whatever the records contain. Records are free
// text. A target's key (engine/key.go) is made of labelled records, a name
// and a value separated by " = ", such as `rule-version = "2"` or
// `input 0 srcs file "data/a.txt" = ` followed by the input's 64-hex digest;
// the engine keeps them in the action result (ActionResult.Records) so that
// cogumi why can name the record that changed. A memo entry's key (one paid
// API request) is made of other records, `cogumi-memo-v1`, `kind generate`
// and `key <request>`, and holds no rule version.
func KeyFromRecords(records []string) ActionKey {
	n := 0
	for _, r := range records {
		n += binary.MaxVarintLen64 + len(r)
	}
	buf := make([]byte, 0, len(actionKeyContext)+1+binary.MaxVarintLen64+n)
	buf = append(append(buf, actionKeyContext...), 0)
	buf = binary.AppendUvarint(buf, uint64(len(records)))
	for _, r := range records {
		buf = binary.AppendUvarint(buf, uint64(len(r)))
		buf = append(buf, r...)
	}
	return ActionKey(blake3.Sum256(buf))
}
