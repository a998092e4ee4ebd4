package cache

import "errors"

// ErrNotFound reports a cache miss: the blob or action result is not there.
// Test for it with errors.Is; a *CorruptError is a miss too.
var ErrNotFound = errors.New("not in cache")

// CorruptError reports an entry that exists but cannot be trusted: invalid
// JSON, a manifest with unsafe paths, a blob whose content does not match its
// digest, an output blob that is missing or has the wrong size. Callers treat
// it as a miss (errors.Is(err, ErrNotFound) is true) and may show Reason.
// The store removes the bad entry when it finds one.
type CorruptError struct {
	What   string // the entry: "action result 3fa2c1d0e9b8 (//x:y)", "blob ..."
	Reason string // what is wrong with it
}

func (e *CorruptError) Error() string {
	return "corrupt cache entry " + e.What + ": " + e.Reason
}

// Is makes a corrupt entry count as a miss: errors.Is(err, ErrNotFound).
func (e *CorruptError) Is(target error) bool { return target == ErrNotFound }
