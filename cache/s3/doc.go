// Package s3 is the remote cache: a cache.Store on a bucket of any
// S3-compatible server (AWS, MinIO, versitygw, R2, Ceph), shared by a team.
//
// # Object layout
//
// Under s3://bucket/prefix:
//
//	<prefix>/cas/<64 hex>             a blob stored whole, named by the BLAKE3-256 digest of its content
//	<prefix>/chunked/<64 hex>         the chunk list of a blob stored as chunks (same digest)
//	<prefix>/chunks/<64 hex>          a chunk, named by the BLAKE3-256 digest of its own bytes
//	<prefix>/ac/<64 hex>.json         an action result: the same JSON as the local cache
//	<prefix>/ac-chunked/<64 hex>.json an action result that names a chunked blob
//	<prefix>/approvals/<name>         a release approval (model/release.Approval's JSON),
//	                                  named like the local one: a record, not a cache
//	                                  entry (PutRecord, ListRecords)
//
// Every blob object carries user metadata, so that one HEAD request tells
// whether the bucket has it:
//
//	x-amz-meta-cogumi-digest   the 64-hex digest (the same as the name)
//	x-amz-meta-cogumi-size     the blob's size in bytes, uncompressed
//	x-amz-meta-cogumi-format   "raw" or "zstd-frames-v1"
//
// A "raw" object is the blob's bytes, as is: small blobs that compression
// would not shrink by at least 1/32 (logs, configs, small weights) can be
// read with any S3 tool. A "zstd-frames-v1" object is the blob cut into
// frames of 8 MiB of original bytes (the last may be shorter), each stored
// as one independent zstd frame if that shrinks it by 1/32 or more, else
// raw; then an index; then a 64-byte trailer:
//
//	frame 0 | frame 1 | ... | frame n-1 | index | trailer
//
//	index:   n little-endian uint32, one per frame: the bytes the frame
//	         occupies in the object; the top bit is set if it is stored raw
//	trailer: [32]byte digest, uint64 size, uint32 frame size, uint32 frame
//	         count n, uint32 CRC-32C of the index, uint32 version (1),
//	         [8]byte magic "cogumiZF" (all little-endian)
//
// Frames being independent, a reader fetches the end of the object (the
// trailer, the index, and all of a small blob) with one ranged GET, then
// fetches frames with parallel ranged GETs; `zstd -d` decodes a compressed
// frame extracted with `dd`. The empty blob is a zstd-frames object of no
// frames, so that no object is empty.
//
// # Chunked blobs
//
// A blob larger than 16 MiB (Config.ChunkThreshold) is stored as
// content-defined chunks, so that versions of a file that share most of
// their bytes (a fine-tune of a few layers, a LoRA merge, a dataset that
// grew, a GGUF whose metadata changed) share most of their chunks: each
// chunk is stored once however many blobs contain it, and a push or a pull
// moves only the chunks the other side lacks. The cut points are FastCDC
// 2020 with an average of 2 MiB (min 512 KiB, max 8 MiB; see package
// cache/chunker), plus cuts at the end of a safetensors or GGUF header and
// at each tensor's start (a tensor under 64 KiB, a norm or a bias, joins
// the next one), so that an unchanged tensor is an unchanged run of chunks
// wherever it moved in the file. These structure cuts make our
// chunks differ from a REAPI server's plain FastCDC chunks (the
// split/splice messages): a cogumi chunk list is not a REAPI one.
//
// A chunk object has the format of a blob object (raw or zstd-frames-v1,
// with the same metadata naming the chunk's own digest). A chunk list
// object (metadata format "chunk-list-v1", cogumi-digest and cogumi-size
// those of the whole blob) is:
//
//	[8]byte "cogumiCL" | uint32 version (1) | uint32 chunk count n |
//	[32]byte blob digest | uint64 blob size |
//	n x { [32]byte chunk digest, uint32 chunk length } | uint32 CRC-32C of all before
//
// (little-endian). The blob's identity stays the BLAKE3 of its whole
// content. A push cuts and hashes the file (the whole digest computed
// beside it), asks which chunks the bucket has with LIST requests (each
// starts just before the first chunk not yet settled and settles every
// chunk up to its last key: at most one request per chunk, about one per
// 1,000 chunks of the bucket), uploads the others in parallel, each
// verified as it is sent, and puts the chunk list last, only if the whole
// content hashed to its name. A pull fetches the list, takes the chunks
// that the local cache's chunk index (cache.ChunkIndex) has from the local
// blobs that hold them and downloads the rest in parallel, verifies every
// chunk, writes them into a partial file named after the digest, then
// verifies the whole digest before the file becomes the blob (its aligned
// 64 KiB subtrees are hashed from each chunk as it arrives; only those
// across chunk boundaries are read back). Both resume
// after an interruption: a push finds the chunks it sent in the listing, a
// pull keeps the chunks of the partial file that still hash right.
//
// An action result that names a chunked blob is stored under ac-chunked/,
// which cogumi versions without chunking never read, so they never see an
// entry they cannot serve; GetAction asks ac/ and ac-chunked/ together.
// Readers find a blob in either layout, so buckets written before chunking
// stay readable. A chunk is live while a live chunk list names it (`cache
// gc --remote` deletes results, then chunk lists, then chunks). `cache
// verify --remote` (Store.Verify) checks a bucket without changing it:
// every chunk list's chunks are there, every action result's blobs are
// there (whole or chunked), and a chosen percentage of chunks and whole
// blobs are downloaded and re-hashed.
//
// # Identity and verification
//
// The digest is the identity, never the ETag (a multipart ETag is no hash
// of the content). Every read verifies the BLAKE3 digest of the whole
// content, and checks the metadata, the trailer and the index against it
// before fetching anything else: a mismatch, a truncated or overwritten
// object, or a frame that does not decode is a *cache.CorruptError naming
// the blob and its object, which is a miss (errors.Is(err,
// cache.ErrNotFound)). The store then treats the blob as absent for the rest
// of its life (HasBlob says no, PutBlob uploads it again and so overwrites
// the bad object); it never deletes on a read, since a read-only store
// must not write. Frame GETs carry If-Match with the ETag of the first
// response, so that an object replaced while it is read fails rather than
// mixing two objects' bytes.
//
// Action results are validated like the local cache's (JSON, key, manifest)
// but their output blobs are not looked up: a lookup is two GETs sent
// together (ac/ and ac-chunked/, one round trip), and a
// blob that has since disappeared is a miss when it is read. Writers put
// every blob before the action result that names it; `cache gc --remote`
// must delete action results before the blobs they name, and never touches
// records (approvals/): they are the team's decisions, not a cache. Records
// are checked by their readers, since anyone who can write the bucket can
// write one.
//
// # Transfers
//
// Uploads hash, compress and send in parallel with bounded memory: a blob
// up to 16 MiB goes up with one PUT; a larger one as a multipart upload
// whose parts (16 MiB, or larger for blobs over 78 GiB, so that at most
// 10,000 parts hold any blob S3 accepts) are sent 4 at a time (fewer when
// parts are large). Memory is a few frames plus the parts in flight: a
// peak RSS of about 230 MiB measured, whatever the size. Nothing becomes visible unless the content hashed to its name (the
// upload is aborted otherwise; a bucket lifecycle rule
// AbortIncompleteMultipartUpload cleans up after killed processes).
// Concurrent writers of one blob or action result both succeed: the last
// complete PUT wins, and both wrote the same content.
//
// Downloads fetch frames with 4 parallel ranged GETs; ReadBlob keeps 4
// frames in flight, GetFile (which decodes, hashes and writes frames in the
// fetching goroutines, since 8 MiB frames are complete BLAKE3 subtrees)
// fetches up to 64 MiB per GET. Peak RSS measured: about 110 MiB.
//
// # Failures
//
// Open makes no request. Connections time out after 5 s; a request that
// moves no byte for IdleTimeout (60 s) fails; a transfer that keeps moving
// is never cut. 5xx, throttling, resets and lost connections are retried
// with exponential backoff and jitter (5 attempts; 2 for an unreachable or
// stalled server), 403 and 404 never. An unreachable or hung server,
// refused credentials or a missing bucket give an *Error for which
// errors.Is(err, ErrUnavailable) holds; for 15 s after one, the store fails
// at once without trying (a build warns once and goes on locally).
//
// Credentials come only from minio-go's chain (see Open); no error text
// holds an access key, a secret or a session token.
package s3
