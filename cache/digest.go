package cache

import (
	"encoding/hex"
	"fmt"
	"io"

	"lukechampine.com/blake3"

	"github.com/cogumi/cogumi/cache/b3tree"
)

// Digest is the BLAKE3-256 hash of a blob's content. It is a comparable value
// type: use it with == and as a map key.
type Digest [32]byte

// ActionKey is the hash of an action's recipe (see KeyFromRecords). It is a
// type distinct from Digest so that the two can never be confused.
type ActionKey [32]byte

// ParseDigest parses the 64-character lowercase hex form written by String.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if err := parseHex32(d[:], s); err != nil {
		return Digest{}, fmt.Errorf("parsing digest: %w", err)
	}
	return d, nil
}

// String returns the digest as 64 lowercase hex characters.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// Short returns the first 12 hex characters, for messages.
func (d Digest) Short() string { return hex.EncodeToString(d[:6]) }

// IsZero reports whether d is the zero value (never the digest of any content).
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText encodes d as its hex string (and so as a JSON string).
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes the hex form written by MarshalText.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseActionKey parses the 64-character lowercase hex form written by String.
func ParseActionKey(s string) (ActionKey, error) {
	var k ActionKey
	if err := parseHex32(k[:], s); err != nil {
		return ActionKey{}, fmt.Errorf("parsing action key: %w", err)
	}
	return k, nil
}

// String returns the key as 64 lowercase hex characters.
func (k ActionKey) String() string { return hex.EncodeToString(k[:]) }

// Short returns the first 12 hex characters, for messages.
func (k ActionKey) Short() string { return hex.EncodeToString(k[:6]) }

// IsZero reports whether k is the zero value (never a real key).
func (k ActionKey) IsZero() bool { return k == ActionKey{} }

// MarshalText encodes k as its hex string (and so as a JSON string).
func (k ActionKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes the hex form written by MarshalText.
func (k *ActionKey) UnmarshalText(b []byte) error {
	v, err := ParseActionKey(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// parseHex32 decodes exactly 64 lowercase hex characters into dst.
func parseHex32(dst []byte, s string) error {
	if len(s) != 64 {
		return fmt.Errorf("%q: want 64 hex characters, got %d", truncate(s, 80), len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%q: character %d is not lowercase hex", truncate(s, 80), i+1)
		}
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%q: %w", truncate(s, 80), err)
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// DigestBytes returns the digest of b.
func DigestBytes(b []byte) Digest {
	if len(b) >= 64<<10 {
		// On one core (callers hash chunks in parallel), with cache/b3tree's
		// kernels.
		return b3tree.Sum256(b)
	}
	return blake3.Sum256(b)
}

// DigestReader hashes everything r yields and returns its digest and length.
func DigestReader(r io.Reader) (Digest, int64, error) {
	h := blake3.New(32, nil)
	buf := make([]byte, hashBufSize)
	n, err := io.CopyBuffer(h, onlyReader{r}, buf)
	if err != nil {
		return Digest{}, n, fmt.Errorf("hashing: %w", err)
	}
	return sumOf(h), n, nil
}

// onlyReader hides any WriterTo of the wrapped reader so that io.CopyBuffer
// uses our (large) buffer: big writes are what let BLAKE3 hash in parallel.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// sumOf returns the 32-byte digest accumulated in h.
func sumOf(h *blake3.Hasher) Digest {
	var d Digest
	h.Sum(d[:0])
	return d
}
