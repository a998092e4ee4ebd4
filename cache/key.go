package cache

import (
	"encoding/binary"

	"lukechampine.com/blake3"
)

// Contexts for BLAKE3's key-derivation mode, which separates the domains of
// action keys, tree digests and content digests: no record list can hash to
// the digest of a file, and no manifest to an action key.
const (
	actionKeyContext  = "cogumi 2025-01-01 action key v1"
	treeDigestContext = "cogumi 2025-01-01 tree digest v1"
)

// KeyFromRecords hashes the labelled records of an action's recipe, in order,
// into its action key. Records are free text, conventionally one line each
// such as `input "data/a.txt" 3fa2...`; each is length-prefixed before
// hashing, so the encoding is unambiguous whatever the records contain. The
// engine keeps the records (ActionResult.Records) to explain what changed.
func KeyFromRecords(records []string) ActionKey {
	n := 0
	for _, r := range records {
		n += binary.MaxVarintLen64 + len(r)
	}
	buf := make([]byte, 0, binary.MaxVarintLen64+n)
	buf = binary.AppendUvarint(buf, uint64(len(records)))
	for _, r := range records {
		buf = binary.AppendUvarint(buf, uint64(len(r)))
		buf = append(buf, r...)
	}
	var k ActionKey
	blake3.DeriveKey(k[:], actionKeyContext, buf)
	return k
}
