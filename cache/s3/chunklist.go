package s3

import (
	"encoding/binary"
	"fmt"

	"github.com/cogumi/cogumi/cache"
)

// Chunk lists (see doc.go): the object chunked/<digest> names the chunks
// of a blob, in order.
const (
	formatChunkList  = "chunk-list-v1"
	chunkListMagic   = "cogumiCL"
	chunkListVersion = 1
	chunkListHeader  = 8 + 4 + 4 + 32 + 8 // magic, version, count, digest, size
	chunkListEntry   = 32 + 4             // digest, length
	// maxChunkLen bounds a chunk a reader accepts: a hostile list cannot
	// make it allocate more for each chunk in flight.
	maxChunkLen = 64 << 20
	// maxChunks bounds a list: 16M chunks, 600 MiB of list, more than a
	// 5 TiB blob needs in chunks of 512 KiB.
	maxChunks = 16 << 20
)

// marshalChunkList writes the list of blob d of size bytes:
//
//	0  [8]byte  magic "cogumiCL"
//	8  uint32   version (1)
//	12 uint32   chunk count n
//	16 [32]byte BLAKE3 digest of the whole blob
//	48 uint64   blob size
//	56 n x { [32]byte chunk digest, uint32 chunk length }
//	   uint32   CRC-32C of everything before it
//
// All integers are little-endian.
func marshalChunkList(d cache.Digest, size int64, refs []cache.ChunkRef) []byte {
	b := make([]byte, 0, chunkListHeader+len(refs)*chunkListEntry+4)
	b = append(b, chunkListMagic...)
	b = binary.LittleEndian.AppendUint32(b, chunkListVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(refs)))
	b = append(b, d[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(size))
	for _, r := range refs {
		b = append(b, r.Digest[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Size))
	}
	return binary.LittleEndian.AppendUint32(b, crc32c(b))
}

// parseChunkList checks the list of blob d of size bytes (-1: any) and
// returns its chunks: the magic, version, checksum, digest and size must
// match, and the chunks, each of 1 to maxChunkLen bytes, must add up to the
// size.
func parseChunkList(b []byte, d cache.Digest, size int64) ([]cache.ChunkRef, int64, error) {
	if len(b) < chunkListHeader+4 || string(b[:8]) != chunkListMagic {
		return nil, 0, fmt.Errorf("%w: not a cogumi chunk list (%d bytes)", errLayout, len(b))
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != chunkListVersion {
		return nil, 0, fmt.Errorf("%w: chunk list version %d, want %d (written by a newer cogumi?)", errLayout, v, chunkListVersion)
	}
	n := int64(binary.LittleEndian.Uint32(b[12:]))
	if n > maxChunks || int64(len(b)) != chunkListHeader+n*chunkListEntry+4 {
		return nil, 0, fmt.Errorf("%w: chunk list of %d bytes cannot hold %d chunks", errLayout, len(b), n)
	}
	if crc32c(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, 0, fmt.Errorf("%w: chunk list checksum mismatch", errLayout)
	}
	if cache.Digest(b[16:48]) != d {
		return nil, 0, fmt.Errorf("%w: chunk list names blob %x", errLayout, b[16:48])
	}
	total := int64(binary.LittleEndian.Uint64(b[48:]))
	if total < 0 || total >= cache.MaxBlobSize || size >= 0 && total != size {
		return nil, 0, fmt.Errorf("%w: chunk list says %d bytes, want %d", errLayout, total, size)
	}
	refs := make([]cache.ChunkRef, n)
	var sum int64
	for i := range refs {
		e := b[chunkListHeader+int64(i)*chunkListEntry:]
		refs[i] = cache.ChunkRef{Digest: cache.Digest(e[:32]), Size: int64(binary.LittleEndian.Uint32(e[32:]))}
		if refs[i].Size == 0 || refs[i].Size > maxChunkLen {
			return nil, 0, fmt.Errorf("%w: chunk %d of %d bytes", errLayout, i, refs[i].Size)
		}
		sum += refs[i].Size
	}
	if sum != total {
		return nil, 0, fmt.Errorf("%w: chunks add up to %d bytes, the blob has %d", errLayout, sum, total)
	}
	return refs, total, nil
}
