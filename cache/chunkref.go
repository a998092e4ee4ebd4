package cache

// ChunkRef is one chunk of a chunked blob: the BLAKE3 digest of its bytes
// and their length. A chunk list is a blob's chunks in order; a chunk's
// offset is the sum of the lengths before it.
type ChunkRef struct {
	Digest Digest
	Size   int64
}
