package s3

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/chunker"
)

// Config says where the remote cache is. It never holds a credential:
// those come from the standard AWS sources (see Open).
type Config struct {
	// URL is s3://bucket/prefix (the prefix may be empty).
	URL string
	// Endpoint is an S3-compatible server, https://host[:port] or
	// http://host[:port] (no TLS); empty means AWS.
	Endpoint string
	// Region defaults to us-east-1 for a custom endpoint, and for AWS to
	// $AWS_REGION or $AWS_DEFAULT_REGION; when still empty, minio-go asks
	// the bucket's location once (one extra request).
	Region string
	// Upload allows writes; false makes the store read-only.
	Upload bool

	// Tuning; the zero value of each picks the default.

	// IdleTimeout fails a request that moves no byte for this long
	// (default 60 s). There is no absolute timeout: a long transfer that
	// keeps moving is never killed.
	IdleTimeout time.Duration
	// Concurrency is the number of parallel requests of one transfer
	// (default 4).
	Concurrency int
	// Progress, if set, is told about every blob transfer (see
	// ProgressEvent). It is called from several goroutines at once and must
	// be quick.
	Progress func(ProgressEvent)
	// ChunkThreshold: blobs larger than this are stored as content-defined
	// chunks (see doc.go); 0 means 16 MiB, a negative value never chunks.
	ChunkThreshold int64
	// LocalChunks, if set, is the local cache's chunk index: pulls copy the
	// chunks it has instead of downloading them, and every chunked blob
	// moved is recorded there.
	LocalChunks LocalChunks
}

// Defaults and S3 limits.
const (
	defaultIdleTimeout = 60 * time.Second
	defaultConcurrency = 4
	dialTimeout        = 5 * time.Second
	tlsTimeout         = 10 * time.Second
	// completeIdle is the idle timeout of CompleteMultipartUpload, during
	// which a server may assemble a large object before it answers.
	completeIdle = 5 * time.Minute
	// defaultFrameSize is the original bytes per frame: big enough that a
	// ranged GET is efficient and zstd finds its matches, small enough that
	// a few frames in flight keep memory low.
	defaultFrameSize = 8 << 20
	// defaultPartSize is the smallest multipart part we send (S3's minimum
	// is 5 MiB); larger blobs get larger parts (see partSize).
	defaultPartSize = 16 << 20
	maxParts        = 10000
	maxPartSize     = 5 << 30
	minS3Part       = 5 << 20 // every part but the last
	// tailWindow is how much of an object's end the first GET of a read
	// fetches: the trailer and index, and all of a small blob.
	tailWindow = 256 << 10
	// maxActionJSON bounds an action result read from the bucket (the
	// local cache's limit).
	maxActionJSON = 256 << 20
	// partMemory bounds the part buffers of one upload (fewer parallel
	// parts for blobs so large that their parts are large).
	partMemory = 64 << 20
)

// Store is a cache.Store on an S3 bucket. It is safe for concurrent use.
type Store struct {
	cfg      Config
	bucket   string
	prefix   string // without a trailing slash; may be empty
	endpoint string // for messages: scheme://host[:port]
	client   *minio.Client
	core     minio.Core
	creds    *credentials.Credentials
	rt       *countingTransport // the HTTP transport (tests wrap its base)
	enc      *zstd.Encoder
	dec      *zstd.Decoder
	stats    counters
	idle     time.Duration
	conc     int
	// frameSize and partSize are variables only so that tests can make
	// multi-frame, multi-part objects of a few bytes.
	frameSize int64
	partSize  int64
	// chunkThreshold and chunkParams: which blobs are chunked, and how.
	chunkThreshold int64
	chunkParams    chunker.Params
	downFor        time.Duration // see the constant

	mu      sync.Mutex
	corrupt map[cache.Digest]bool // blobs found bad: a miss until re-uploaded
	down    *downState            // set while the server is known unreachable
}

var _ cache.Store = (*Store)(nil)

// Open returns a store for cfg. It makes no request: a store that is never
// used costs nothing (a no-op build stays off the network), and an
// unreachable server shows up, with a clear error, on the first operation
// (or call Check). ctx is not retained.
//
// Credentials come only from minio-go's chain, in this order: the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN),
// the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
// ~/.aws/credentials, profile AWS_PROFILE or "default"), then IAM (EC2
// instance role, ECS task role, EKS web identity). With none, requests are
// anonymous (a public bucket).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	_ = ctx // Open makes no request; see above.
	bucket, prefix, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	host, secure, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" && cfg.Endpoint != "" {
		region = "us-east-1"
	}
	if region == "" {
		region = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	s := &Store{
		cfg:            cfg,
		bucket:         bucket,
		prefix:         prefix,
		idle:           cfg.IdleTimeout,
		conc:           cfg.Concurrency,
		frameSize:      defaultFrameSize,
		partSize:       defaultPartSize,
		chunkThreshold: cfg.ChunkThreshold,
		chunkParams:    chunker.Default,
		downFor:        downFor,
		corrupt:        make(map[cache.Digest]bool),
	}
	if s.idle <= 0 {
		s.idle = defaultIdleTimeout
	}
	if s.chunkThreshold == 0 {
		s.chunkThreshold = defaultChunkThreshold
	}
	if s.conc <= 0 {
		s.conc = defaultConcurrency
	}
	s.endpoint = "https://" + host
	if !secure {
		s.endpoint = "http://" + host
	}
	if err := s.transport(secure); err != nil {
		return nil, fmt.Errorf("remote cache %s: %w", s, err)
	}
	s.creds = credentialChain()
	lookup := minio.BucketLookupAuto
	if cfg.Endpoint != "" {
		// Custom servers (MinIO, versitygw, R2, Ceph) all serve path-style
		// URLs; virtual hosts need DNS that a local server lacks.
		lookup = minio.BucketLookupPath
	}
	s.client, err = minio.New(host, &minio.Options{
		Creds:        s.creds,
		Secure:       secure,
		Transport:    s.rt,
		Region:       region,
		BucketLookup: lookup,
		MaxRetries:   1, // we retry ourselves, with our own classification
	})
	if err != nil {
		return nil, fmt.Errorf("remote cache %s: %w", s, err)
	}
	s.core = minio.Core{Client: s.client}
	n := runtime.GOMAXPROCS(0)
	// Fastest: on a few cores zstd must keep up with the network; frames
	// that do not shrink are stored raw. Entropy-coding literal-only blocks
	// is what compresses weights (their bytes rarely repeat, but exponent
	// bytes are few): 71% of the size for bfloat16, against 100% without,
	// at about 590 MB/s a core. No zstd checksum: BLAKE3 of the whole blob
	// is verified anyway.
	s.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true),
		zstd.WithEncoderConcurrency(n), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("remote cache %s: %w", s, err)
	}
	// MaxMemory bounds what one hostile frame can make us allocate.
	s.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(n),
		zstd.WithDecoderMaxMemory(maxFrameSize), zstd.WithDecoderLowmem(true), zstd.IgnoreChecksum(true))
	if err != nil {
		return nil, fmt.Errorf("remote cache %s: %w", s, err)
	}
	return s, nil
}

// credentialChain is the only source of credentials (see Open).
func credentialChain() *credentials.Credentials {
	// The metadata service answers in milliseconds where it exists; off
	// AWS its address is unreachable, so fail fast rather than hang.
	imds := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext},
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{Client: imds},
	})
}

// transport builds the HTTP transport: short dial and TLS handshake
// timeouts, no response-header timeout (the per-request idle guard covers
// it, see guard), and counters around it.
func (s *Store) transport(secure bool) error {
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return err
	}
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = tlsTimeout
	tr.ResponseHeaderTimeout = 0
	tr.MaxIdleConnsPerHost = 64
	s.rt = &countingTransport{base: tr, c: &s.stats}
	return nil
}

// ParseURL splits s3://bucket/prefix into a bucket and a clean prefix
// without leading or trailing slashes. Its errors never repeat a user-info
// part (s3://KEY:SECRET@bucket), which would be a leaked credential.
func ParseURL(raw string) (bucket, prefix string, err error) {
	if strings.Contains(raw, "@") {
		return "", "", fmt.Errorf("remote cache URL: must not contain '@' (credentials never go in a URL; use the AWS environment variables, shared credentials file or an instance role)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("remote cache URL %q: %w", raw, err)
	}
	if u.Scheme != "s3" {
		return "", "", fmt.Errorf("remote cache URL %q: want s3://bucket/prefix", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", "", fmt.Errorf("remote cache URL %q: unexpected query or fragment; want s3://bucket/prefix", raw)
	}
	if err := s3utils.CheckValidBucketNameStrict(u.Host); err != nil {
		return "", "", fmt.Errorf("remote cache URL %q: bucket %q: %v", raw, u.Host, err)
	}
	prefix = strings.Trim(u.Path, "/")
	if len(prefix) > 512 || !utf8.ValidString(prefix) {
		return "", "", fmt.Errorf("remote cache URL %q: prefix too long or not UTF-8", raw)
	}
	if prefix != "" {
		for _, part := range strings.Split(prefix, "/") {
			if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\\") || strings.ContainsFunc(part, isControl) {
				return "", "", fmt.Errorf("remote cache URL %q: prefix component %q is empty, '.', '..', or holds a backslash or control character", raw, part)
			}
		}
	}
	return u.Host, prefix, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// parseEndpoint turns "https://host:port" into minio-go's host and TLS
// flag; "" is AWS.
func parseEndpoint(raw string) (host string, secure bool, err error) {
	if raw == "" {
		return "s3.amazonaws.com", true, nil
	}
	if strings.Contains(raw, "@") {
		return "", false, fmt.Errorf("remote cache endpoint: must not contain '@' (credentials never go in a URL)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("remote cache endpoint %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", false, fmt.Errorf("remote cache endpoint %q: want https://host[:port] or http://host[:port]", raw)
	case u.Host == "":
		return "", false, fmt.Errorf("remote cache endpoint %q: no host", raw)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "", false, fmt.Errorf("remote cache endpoint %q: want only scheme://host[:port]; the bucket and prefix go in the URL", raw)
	}
	return u.Host, u.Scheme == "https", nil
}

// firstEnv returns the first non-empty of the named environment variables.
func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// String names the store in messages: s3://bucket/prefix at endpoint.
func (s *Store) String() string {
	u := "s3://" + s.bucket
	if s.prefix != "" {
		u += "/" + s.prefix
	}
	if s.endpoint == "" {
		return u
	}
	return u + " at " + s.endpoint
}

// CanUpload reports whether the store accepts writes (Config.Upload).
func (s *Store) CanUpload() bool { return s.cfg.Upload }

// objectKey joins the prefix and a name inside it.
func (s *Store) objectKey(name string) string {
	if s.prefix == "" {
		return name
	}
	return s.prefix + "/" + name
}

// blobKey is where blob d lives: <prefix>/cas/<64 hex>.
func (s *Store) blobKey(d cache.Digest) string { return s.objectKey("cas/" + d.String()) }

// actionKey is where the result of action k lives: <prefix>/ac/<64 hex>.json.
func (s *Store) actionKey(k cache.ActionKey) string {
	return s.objectKey("ac/" + k.String() + ".json")
}

// objectURL names an object in messages.
func (s *Store) objectURL(key string) string { return "s3://" + s.bucket + "/" + key }
