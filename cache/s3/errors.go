package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/internal/retry"
)

// ErrUnavailable is in every error that says the remote cache cannot be used
// at all right now: the server is unreachable or hung, refuses our
// credentials, or the bucket does not exist. Test with errors.Is; a build should warn once
// and go on with its local cache.
var ErrUnavailable = errors.New("remote cache unavailable")

// ErrReadOnly is returned by writes to a store opened with Upload false.
var ErrReadOnly = errors.New("remote cache is read-only (upload = false)")

// Retry policy: exponential backoff with jitter, for transient failures
// only. An unreachable or stalled server is tried twice, not five times, so
// that a build learns quickly that it must go on without it.
const (
	maxAttempts            = 5
	maxUnreachableAttempts = 2
	backoffBase            = 200 * time.Millisecond
	backoffCap             = 5 * time.Second
	// downFor is how long a store that found its server unavailable fails
	// fast instead of trying again, so that a build with hundreds of
	// targets does not wait for each one.
	downFor = 15 * time.Second
)

// kind classifies a failure.
type kind int

const (
	kindPermanent   kind = iota // a bad request: retrying will not help
	kindTransient               // 5xx, throttling, reset: retry
	kindStalled                 // no byte moved for the idle timeout: retry once
	kindUnreachable             // cannot connect at all
	kindAuth                    // credentials refused, or no such bucket
	kindNotFound                // no such object: a miss
	kindChanged                 // the object changed while we read it
	kindCanceled                // our caller gave up
)

// Error is a failure talking to the bucket. Its text names the endpoint,
// bucket, request and object, and the server's reason; never a credential.
type Error struct {
	Endpoint string // https://host:port
	Bucket   string
	Op       string // HEAD, GET, PUT, LIST, DELETE, upload, ...
	Key      string // the object, if any
	Reason   string
	kind     kind
	err      error
}

func (e *Error) Error() string {
	what := e.Op
	if e.Key != "" {
		what += " " + e.Key
	}
	return fmt.Sprintf("remote cache %s (bucket %s): %s: %s", e.Endpoint, e.Bucket, what, e.Reason)
}

// Unwrap returns the underlying error (for context.Canceled and the like).
func (e *Error) Unwrap() error { return e.err }

// Is makes a missing object a cache miss and an unusable server
// ErrUnavailable.
func (e *Error) Is(target error) bool {
	switch target {
	case cache.ErrNotFound:
		return e.kind == kindNotFound
	case ErrUnavailable:
		// A stall is returned only once retrying did not help either.
		return e.kind == kindUnreachable || e.kind == kindAuth || e.kind == kindStalled
	}
	return false
}

// stallError is the cause of a request canceled by its idle guard.
type stallError struct{ idle time.Duration }

func (e *stallError) Error() string {
	return fmt.Sprintf("no progress for %v (idle timeout)", e.idle)
}

// passThrough carries an error that do must return as it is, without
// classifying or retrying it: a corrupt object, a caller's callback error.
type passThrough struct{ err error }

func (p passThrough) Error() string { return p.err.Error() }

// classify turns err from a request made under ctx into a kind and a reason
// fit for a person. It reads only codes and messages, never request
// headers, so no credential can reach the text.
func classify(ctx context.Context, err error) (kind, string) {
	if cause := context.Cause(ctx); cause != nil {
		var stall *stallError
		if errors.As(cause, &stall) {
			return kindStalled, stall.Error()
		}
		return kindCanceled, cause.Error()
	}
	if resp := minio.ToErrorResponse(err); resp.Code != "" || resp.StatusCode != 0 {
		return classifyResponse(resp)
	}
	var dns *net.DNSError
	var op *net.OpError
	var uerr *url.Error
	switch {
	case errors.As(err, &dns):
		return kindUnreachable, "cannot resolve " + dns.Name + ": " + dns.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindUnreachable, "connection refused (is the server running?)"
	case errors.As(err, &op) && op.Op == "dial":
		return kindUnreachable, "cannot connect: " + op.Error()
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return kindTransient, "connection lost: " + innermost(err)
	case errors.As(err, &op), isTimeout(err):
		return kindTransient, innermost(err)
	case strings.Contains(err.Error(), "Connection closed by foreign host"):
		// minio-go's rewording of an EOF from the server (it adds the URL).
		return kindTransient, "connection closed by the server"
	case errors.As(err, &uerr):
		// Any other failure of the HTTP exchange itself.
		return kindTransient, uerr.Err.Error()
	}
	msg := innermost(err)
	if strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") {
		return kindUnreachable, "TLS: " + msg
	}
	return kindPermanent, msg
}

// classifyResponse classifies an S3 error response.
func classifyResponse(r minio.ErrorResponse) (kind, string) {
	k, hint := kindPermanent, ""
	switch {
	case isAuthCode(r.Code) || r.StatusCode == 401 || r.StatusCode == 403:
		k, hint = kindAuth, " (check the AWS credentials: environment, shared credentials file and profile, or instance role)"
	case r.Code == "NoSuchBucket":
		k, hint = kindAuth, " (create the bucket, or fix the remote cache URL)"
	case r.Code == "NoSuchKey", r.Code == "NoSuchUpload", r.Code == "" && r.StatusCode == 404:
		// Only these: some servers answer 404 to an unknown access key.
		k = kindNotFound
	case r.Code == "PreconditionFailed", r.StatusCode == 412:
		k, hint = kindChanged, " (the object was replaced while being read)"
	case r.StatusCode >= 500, r.StatusCode == 429, r.StatusCode == 408,
		r.Code == "SlowDown", r.Code == "RequestTimeout", r.Code == "InternalError", r.Code == "ServiceUnavailable":
		k = kindTransient
	}
	reason := fmt.Sprintf("%s (HTTP %d)", r.Code, r.StatusCode)
	if r.Message != "" && k != kindAuth {
		// Not for authentication failures: some servers quote the access
		// key in those messages. The code says enough.
		reason += ": " + truncate(r.Message, 300)
	}
	return k, reason + hint
}

// isAuthCode reports the error codes of refused credentials.
func isAuthCode(code string) bool {
	switch code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "InvalidToken",
		"InvalidSecurity",
		"XAdminUserNotFound": // versitygw's answer (a 404) to an unknown access key
		return true
	}
	return false
}

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// innermost returns the message of the innermost network error if there is
// one (without the URL a *url.Error adds), else err's own message.
func innermost(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	return err.Error()
}

// activity is a request's idle guard: touch it whenever bytes move.
type activity struct {
	t    *time.Timer
	idle time.Duration
}

// touch postpones the idle deadline.
func (a *activity) touch() { a.t.Reset(a.idle) }

// guard derives a context that is canceled, with a *stallError cause, when
// the returned activity is not touched for idle. The stop func releases it.
func guard(ctx context.Context, idle time.Duration) (context.Context, *activity, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	a := &activity{idle: idle}
	a.t = time.AfterFunc(idle, func() { cancel(&stallError{idle}) })
	return ctx, a, func() {
		a.t.Stop()
		cancel(context.Canceled)
	}
}

// downState remembers that the server was found unavailable.
type downState struct {
	until time.Time
	err   *Error
}

// do runs one request with retries. fn gets a context guarded against
// stalls (see guard) and must touch the activity as bytes move. Errors are
// returned as *Error, except those fn wraps in passThrough.
func (s *Store) do(ctx context.Context, op, key string, idle time.Duration, fn func(context.Context, *activity) error) error {
	if err := s.checkDown(op, key); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		gctx, act, stop := guard(ctx, idle)
		err := fn(gctx, act)
		if err == nil {
			stop()
			return nil
		}
		var pass passThrough
		if errors.As(err, &pass) {
			stop()
			return pass.err
		}
		k, reason := classify(gctx, err)
		stop()
		if ctx.Err() != nil {
			k, reason = kindCanceled, context.Cause(ctx).Error()
		}
		e := &Error{Endpoint: s.endpoint, Bucket: s.bucket, Op: op, Key: key, Reason: s.scrub(reason), kind: k, err: err}
		limit := 1
		switch k {
		case kindTransient:
			limit = maxAttempts
		case kindUnreachable, kindStalled:
			limit = maxUnreachableAttempts
		}
		if attempt >= limit {
			if attempt > 1 {
				e.Reason += fmt.Sprintf(" (after %d attempts)", attempt)
			}
			if e.Is(ErrUnavailable) {
				s.setDown(e)
			}
			return e
		}
		s.stats.retries.Add(1)
		if err := retry.Sleep(ctx, retry.Backoff(attempt, backoffBase, backoffCap)); err != nil {
			return &Error{Endpoint: s.endpoint, Bucket: s.bucket, Op: op, Key: key, Reason: err.Error(), kind: kindCanceled, err: err}
		}
	}
}

// scrub removes the credentials in use from a message, should a server or
// a library ever quote them; classify already avoids the usual places.
func (s *Store) scrub(msg string) string {
	// Only credentials already fetched: fetching (an IAM round trip) to
	// build an error message would slow every failure down.
	if s.creds.IsExpired() {
		return msg
	}
	v, err := s.creds.GetWithContext(nil)
	if err != nil {
		return msg
	}
	for _, secret := range []string{v.SecretAccessKey, v.SessionToken, v.AccessKeyID} {
		if len(secret) >= 4 {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
		}
	}
	return msg
}

// setDown records that the server is unavailable, so that requests in the
// next downFor fail at once with the same reason.
func (s *Store) setDown(e *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = &downState{until: time.Now().Add(s.downFor), err: e}
}

// checkDown fails fast while the server is known to be unavailable.
func (s *Store) checkDown(op, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == nil {
		return nil
	}
	if time.Now().After(s.down.until) {
		s.down = nil
		return nil
	}
	d := s.down.err
	return &Error{Endpoint: s.endpoint, Bucket: s.bucket, Op: op, Key: key, kind: d.kind, err: d,
		Reason: "not tried: " + d.Reason}
}

// corruptErr reports blob d as corrupt and remembers it, so that it reads as
// a miss (and HasBlob says no, and PutBlob uploads it again) for the rest of
// this store's life. The object is left in place: a read-only store must not
// delete, and the next upload overwrites it.
func (s *Store) corruptErr(d cache.Digest, reason string) *cache.CorruptError {
	return s.corruptAt(d, s.blobKey(d), reason)
}

// corruptAt is corruptErr for the object at key: a blob, a chunk list or a
// chunk (named by its own digest).
func (s *Store) corruptAt(d cache.Digest, key, reason string) *cache.CorruptError {
	s.mu.Lock()
	s.corrupt[d] = true
	s.mu.Unlock()
	what := "blob "
	if strings.Contains("/"+key, "/chunks/") {
		what = "chunk "
	}
	return &cache.CorruptError{What: what + d.String() + " at " + s.objectURL(key), Reason: reason}
}

// markCorrupt makes blob d a miss until uploaded again (one of its chunks
// was found corrupt).
func (s *Store) markCorrupt(d cache.Digest) {
	s.mu.Lock()
	s.corrupt[d] = true
	s.mu.Unlock()
}

// isCorrupt reports whether blob d was found corrupt by this store.
func (s *Store) isCorrupt(d cache.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.corrupt[d]
}

// repaired forgets that blob d was corrupt, after a successful upload.
func (s *Store) repaired(d cache.Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.corrupt, d)
}
