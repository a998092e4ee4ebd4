package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// VerifyProblem is one bad entry Verify found (and removed).
type VerifyProblem struct {
	Path   string // the file in the cache
	What   string // "blob 3fa2...", "action result 9c1e... (//x:y)"
	Reason string
}

func (p VerifyProblem) String() string {
	return p.What + ": " + p.Reason + " (" + p.Path + ")"
}

// VerifyReport is what Verify checked and found.
type VerifyReport struct {
	Blobs      int // blobs re-hashed
	ExecCopies int // executable twins (.x) re-hashed
	Actions    int // action results checked
	// Temps counts what sits in tmp/: files being written by running
	// processes or left by killed ones (removed after a day). Not a problem.
	Temps    int
	Problems []VerifyProblem // sorted by Path
}

// Verify checks the whole local cache and removes what cannot be trusted:
//
//   - every blob is re-hashed and compared with its name; an executable twin
//     (<blob>.x) with the blob it copies. A blob or twin that does not match,
//     is not a regular file, or any other file in cas/ is removed.
//   - every chunk index file (see ChunkIndex) must parse and its chunks add
//     up to its blob's size; one whose blob is gone is removed quietly (it
//     is a hint, and its blob was collected).
//   - every action result is read with GetAction (JSON, key, manifest, output
//     blobs present with their sizes; it removes a corrupt entry), and one
//     that references a blob or twin removed above is removed too. A result
//     recorded from a remote hit (BlobsRemote) is not bad for lacking blobs:
//     they live in the bucket.
//
// Each removal is one VerifyProblem. Files in tmp/ and elsewhere are left
// alone: only complete entries are ever renamed into cas/ and ac/, so what
// a killed process leaves there is never an entry. Verify may run while
// builds use the cache: an entry that disappears or is replaced meanwhile
// is not reported, and an entry is removed only if it is still the file
// that was found bad. The error is for a cache that cannot be read at all.
func (c *Local) Verify() (VerifyReport, error) {
	var rep VerifyReport
	// Bad blobs are removed after the results that reference them, so that
	// no result is ever left naming a missing blob.
	files, bad, err := c.verifyBlobs(&rep)
	if err != nil {
		return rep, err
	}
	if err := c.verifyActions(&rep, bad); err != nil {
		return rep, err
	}
	c.removeBadBlobs(&rep, files)
	c.repairModes(&rep, files)
	c.verifyChunkIndex(&rep)
	if des, err := os.ReadDir(filepath.Join(c.dir, "tmp")); err == nil {
		rep.Temps = len(des)
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Path < rep.Problems[j].Path })
	return rep, nil
}

// badBlobs are the digests of the blobs and of the executable twins that
// verifyBlobs found bad.
type badBlobs struct {
	blobs map[Digest]bool
	execs map[Digest]bool
}

// casFile is one file found under cas/<2 hex>/.
type casFile struct {
	path   string
	name   string
	info   fs.FileInfo
	digest Digest
	exec   bool
	// set by checkBlob
	problem string
	counted bool
	badMode bool // a good blob whose mode is not the cache's: repaired
}

// verifyBlobs re-hashes every file of cas/, in parallel, and returns them
// with the digests of the bad ones (removed later by removeBadBlobs).
func (c *Local) verifyBlobs(rep *VerifyReport) ([]*casFile, badBlobs, error) {
	bad := badBlobs{blobs: make(map[Digest]bool), execs: make(map[Digest]bool)}
	var files []*casFile
	err := listShards(filepath.Join(c.dir, "cas"), func(path string, de fs.DirEntry) {
		name := de.Name()
		f := &casFile{path: path, name: name}
		d, err := ParseDigest(strings.TrimSuffix(name, ".x"))
		if err != nil || filepath.Base(filepath.Dir(path)) != name[:2] {
			f.problem = "not a cache entry"
		} else {
			f.digest, f.exec = d, strings.HasSuffix(name, ".x")
		}
		files = append(files, f)
	}, func(path, why string) {
		rep.Problems = append(rep.Problems, VerifyProblem{Path: path, What: "cas entry " + filepath.Base(path), Reason: why})
	})
	if err != nil {
		return nil, bad, fmt.Errorf("verifying the cache's blobs: %w", err)
	}
	work := make(chan *casFile)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				checkBlob(f)
			}
		}()
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	for _, f := range files {
		if f.counted {
			if f.exec {
				rep.ExecCopies++
			} else {
				rep.Blobs++
			}
		}
		switch {
		case f.problem == "" || f.digest.IsZero():
		case f.exec:
			bad.execs[f.digest] = true
		default:
			bad.blobs[f.digest] = true
		}
	}
	return files, bad, nil
}

// removeBadBlobs removes the files verifyBlobs found bad, reporting each.
func (c *Local) removeBadBlobs(rep *VerifyReport, files []*casFile) {
	for _, f := range files {
		if f.problem == "" || !removeIfSame(f.path, f.info) {
			continue // good, or replaced or removed meanwhile: not ours to judge
		}
		what := "blob " + f.name
		switch {
		case f.digest.IsZero():
			what = "cas entry " + f.name
		case f.exec:
			what = "executable copy of blob " + f.digest.String()
		default:
			// Its executable twin copies it: without the blob it is useless.
			_ = os.Remove(c.execPath(f.digest))
		}
		rep.Problems = append(rep.Problems, VerifyProblem{Path: f.path, What: what, Reason: f.problem + "; removed"})
	}
}

// checkBlob decides whether f is a good blob or twin, setting f.problem if
// not. A file that vanishes meanwhile is neither counted nor a problem.
func checkBlob(f *casFile) {
	info, err := os.Lstat(f.path)
	if err != nil {
		f.problem = "" // gone (collected, or replaced and renamed away)
		return
	}
	f.info = info
	if f.problem != "" {
		return
	}
	f.counted = true
	if !info.Mode().IsRegular() {
		f.problem = "a " + describeMode(info.Mode().Type()) + ", not a regular file"
		return
	}
	got, _, err := DigestFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.counted = false
		return
	}
	if err != nil {
		f.problem = "unreadable: " + err.Error()
		return
	}
	if got != f.digest {
		if f.exec {
			f.problem = "content hashes to " + got.String() + ", not to the blob it copies"
		} else {
			f.problem = "content hashes to " + got.String()
		}
		return
	}
	f.badMode = info.Mode().Perm() != f.mode()
}

// mode is the mode the cache gives the file.
func (f *casFile) mode() fs.FileMode {
	if f.exec {
		return execMode
	}
	return blobMode
}

// repairModes gives good blobs that were made writable (through a link, by
// root or by their owner) their mode back, reporting each: a writable blob
// is one write away from serving wrong bytes.
func (c *Local) repairModes(rep *VerifyReport, files []*casFile) {
	for _, f := range files {
		if !f.badMode || f.problem != "" {
			continue
		}
		what := "blob " + f.name
		if f.exec {
			what = "executable copy of blob " + f.digest.String()
		}
		reason := fmt.Sprintf("mode %04o instead of %04o; repaired", f.info.Mode().Perm(), f.mode())
		if err := os.Chmod(f.path, f.mode()); err != nil {
			reason = fmt.Sprintf("mode %04o instead of %04o; repairing it: %v", f.info.Mode().Perm(), f.mode(), err)
		}
		rep.Problems = append(rep.Problems, VerifyProblem{Path: f.path, What: what, Reason: reason})
	}
}

// verifyActions checks every action result, removing those GetAction finds
// corrupt and those that reference a blob verifyBlobs found bad.
func (c *Local) verifyActions(rep *VerifyReport, bad badBlobs) error {
	var names []string
	var strays []VerifyProblem
	err := listShards(filepath.Join(c.dir, "ac"), func(path string, de fs.DirEntry) {
		names = append(names, path)
	}, func(path, why string) {
		strays = append(strays, VerifyProblem{Path: path, What: "ac entry " + filepath.Base(path), Reason: why})
	})
	if err != nil {
		return fmt.Errorf("verifying the cache's action results: %w", err)
	}
	rep.Problems = append(rep.Problems, strays...)
	for _, path := range names {
		name := filepath.Base(path)
		k, err := ParseActionKey(strings.TrimSuffix(name, ".json"))
		if err != nil || !strings.HasSuffix(name, ".json") || filepath.Base(filepath.Dir(path)) != name[:2] {
			if info, err := os.Lstat(path); err == nil && removeIfSame(path, info) {
				rep.Problems = append(rep.Problems, VerifyProblem{Path: path, What: "ac entry " + name, Reason: "not a cache entry; removed"})
			}
			continue
		}
		before, err := os.Lstat(path)
		if err != nil {
			continue // gone meanwhile
		}
		rep.Actions++
		if !before.Mode().IsRegular() {
			// GetAction would follow a symlink; nothing cogumi writes is one.
			if removeIfSame(path, before) {
				rep.Problems = append(rep.Problems, VerifyProblem{Path: path, What: "action result " + k.String(),
					Reason: "a " + describeMode(before.Mode().Type()) + ", not a regular file; removed"})
			}
			continue
		}
		r, err := c.getAction(k)
		var ce *CorruptError
		switch {
		case errors.As(err, &ce):
			rep.Problems = append(rep.Problems, VerifyProblem{Path: path, What: ce.What, Reason: ce.Reason})
			continue
		case errors.Is(err, ErrNotFound):
			rep.Actions-- // gone meanwhile
			continue
		case err != nil:
			return fmt.Errorf("verifying the cache: %w", err)
		}
		if r.BlobsRemote {
			continue // its blobs may live only in the bucket: fetched and verified when needed
		}
		if why := referencesBad(r, bad); why != "" && removeIfSame(path, before) {
			what := "action result " + k.String()
			if r.Label != "" {
				what += " (" + truncate(r.Label, 200) + ")"
			}
			rep.Problems = append(rep.Problems, VerifyProblem{Path: path, What: what, Reason: why + "; removed"})
		}
	}
	return nil
}

// referencesBad says which blob of r was found bad, if any.
func referencesBad(r *ActionResult, bad badBlobs) string {
	for _, f := range r.Outputs.Files {
		if bad.blobs[f.Digest] {
			return fmt.Sprintf("output %q: blob %s was bad", f.Path, f.Digest.Short())
		}
		if f.Executable && bad.execs[f.Digest] {
			return fmt.Sprintf("output %q: executable copy of blob %s was bad", f.Path, f.Digest.Short())
		}
	}
	if !r.Log.IsZero() && bad.blobs[r.Log] {
		return fmt.Sprintf("log: blob %s was bad", r.Log.Short())
	}
	return ""
}

// removeIfSame removes path if it is still the file info describes (another
// process may have just renamed a good entry over a bad one). It reports
// whether the bad file is gone because of it.
func removeIfSame(path string, info fs.FileInfo) bool {
	now, err := os.Lstat(path)
	if err != nil || info == nil || !os.SameFile(info, now) {
		return false
	}
	if now.IsDir() {
		return RemoveTree(path) == nil
	}
	return os.Remove(path) == nil
}

// listShards calls file for every entry of root/<2 hex>/ and stray for
// anything else directly in root (which only cogumi writes to).
func listShards(root string, file func(path string, de fs.DirEntry), stray func(path, why string)) error {
	shards, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, sh := range shards {
		p := filepath.Join(root, sh.Name())
		if !sh.IsDir() || len(sh.Name()) != 2 || !isLowerHex(sh.Name()) {
			if info, err := os.Lstat(p); err == nil && removeIfSame(p, info) {
				stray(p, "not a cache entry; removed")
			}
			continue
		}
		des, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		for _, de := range des {
			file(filepath.Join(p, de.Name()), de)
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
