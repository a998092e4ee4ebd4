// Package zpack compresses build artifacts with zstd (klauspost/compress),
// in two modes.
//
// # Plain mode
//
// CompressFile with Options{Weights: false} writes a standard .zst stream
// that the zstd CLI decompresses: one zstd frame (content size and
// checksum included) per 8 MiB of input, concatenated, as pzstd does.
// Options.Threads goroutines code the frames in parallel while one reads
// and one writes, so memory stays near 3 x Threads x 16 MiB whatever the
// file size. Frames are independent, which costs matches across 8 MiB
// boundaries only (8 MiB is also the window at every level).
// Literal entropy coding is always on: at klauspost's fastest and default
// levels it is otherwise skipped for blocks without matches, and weight
// tensors have almost none, so they would be stored uncompressed (100%
// where zstd -3 keeps 78%).
//
// # Weight-aware mode
//
// With Options{Weights: true}, a safetensors file's BF16 and F16 tensors
// are split into bit planes so that every exponent bit lands in one plane
// (as ZipNN does; splitting 16-bit values into high and low bytes leaves the
// lowest exponent bit of a BF16 among the mantissa bits). The exponent plane
// of Gaussian-like weights carries under 3 bits of its 8 and is coded with
// huff0; the sign and mantissa planes, nearly random, are stored as they
// are unless their byte histogram is skewed (pruned weights: many zeros),
// when huff0 codes them too. At the better and best levels zstd is also
// tried on each plane and the smaller result kept. Everything else (the JSON header, F32
// and other dtypes, gaps between tensors) is coded with zstd. A file that is
// not a well-formed safetensors file is coded whole as plain frames.
//
// # Container format (version 1)
//
// All integers are little-endian.
//
//	header (48 bytes):
//	  magic     [4]byte  "CGZP"
//	  version   uint16   1
//	  flags     uint16   0 (readers reject other values)
//	  size      uint64   length of the original file
//	  blake3    [32]byte BLAKE3-256 of the original file
//	frames, in the order of the bytes they restore:
//	  kind      uint8    0 end, 1 plain, 2 bf16-planes, 3 f16-planes
//	  -- the end frame is this one byte; it must be the last byte --
//	  length    uint32   original bytes restored, 1..64 MiB (even for 2, 3)
//	  planes    P x { codec uint8, clen uint32 }   P = 1, 2, 3 for kinds 1, 2, 3
//	  payloads  the P coded planes, clen bytes each, in order
//
// Plane contents, for a frame of n = length/2 values v (uint16, LE):
//
//	plain:  plane 0 = the bytes themselves
//	bf16:   plane 0 = exponent, 1 byte/value: (v >> 7) & 0xff
//	        plane 1 = sign and mantissa, 1 byte/value: (v >> 8) & 0x80 | v & 0x7f
//	f16:    plane 0 = exponent, 1 byte/value: (v >> 10) & 0x1f
//	        plane 1 = mantissa bits 7..0, 1 byte/value: v & 0xff
//	        plane 2 = sign and mantissa bits 9..8, 3 bits/value, packed:
//	                  x = (v >> 15) << 2 | (v >> 8) & 3; value j of each
//	                  group of 8 is bits 3(j%8)..3(j%8)+2 of a 24-bit LE
//	                  word; (3n + 7) / 8 bytes, the tail zero-padded
//
// Codecs, and the payload each one means:
//
//	0 stored: the plane's bytes (clen equals the plane length)
//	1 zstd:   one zstd frame decoding to exactly the plane
//	2 huff0:  the plane in 128 KiB blocks (last one shorter), each a mode
//	          byte then: 0 raw block bytes; 1 uint32 m and m bytes of
//	          huff0 4X (table included); 2 one byte repeated for the block
//
// clen never exceeds the plane length. Readers check every length against
// the header's size and the 64 MiB frame limit before allocating, decode
// each frame to exactly its length, and compare the restored bytes' size
// and BLAKE3 with the header; any mismatch is an error wrapping ErrCorrupt.
// Frames are independent, so both directions run them in parallel.
package zpack
