// Package cache stores build artifacts by content: a content-addressed store
// (CAS) of blobs named by their BLAKE3 digest, an action cache (AC) mapping
// action keys to the manifest of what an action produced, per-key locks that
// keep several processes from running the same action at once, and a stat
// cache that lets a no-op build skip reading source files.
//
// The package knows nothing of rules, BUILD files or labels: an action key is
// an opaque hash of records the engine writes (KeyFromRecords), and the label
// in an ActionResult is text for humans.
//
// The life of an action's outputs, as the engine drives it:
//
//	unlock, err := c.Lock(ctx, key, onWait)    // one builder per key, across processes
//	r, err := c.GetAction(ctx, key)            // hit: done (a *CorruptError is a miss)
//	... run the action into a scratch directory ...
//	m, err := c.AdoptTree(scratchOut)          // outputs move into the CAS
//	err = c.PutAction(ctx, &ActionResult{...}) // last, after every blob
//	err = c.Materialize(m, "cogumi-out/pkg/target")
//	unlock()
//
// Three digests, three domains: Digest is the plain BLAKE3 of a file's bytes;
// Manifest.TreeDigest and KeyFromRecords hash an encoding that starts with a
// context string of their own (not BLAKE3's key-derivation mode: see key.go),
// so none of them can equal another.
package cache
