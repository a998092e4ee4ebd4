package hcl

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/internal/atomicfile"
	"github.com/cogumi/cogumi/rules"
)

// The load cache keeps each package's evaluated targets between runs, so
// that a workspace whose BUILD files did not change loads without parsing
// them: HCL parsing costs about 30 µs a target, 3 s of CPU for 100,000.
//
// An entry is reused only when everything its evaluation read is the same:
//   - the settings key: the loader binary, cogumi.hcl, --var values,
//     COGUMI_VAR_ variables and every rule's kind, version and schema;
//   - the BUILD.hcl text (SHA-256) and the packages below it (which glob
//     and source paths must not enter);
//   - every file system fact it observed, checked again: the kind of each
//     path it stat'ed (sources, glob matches), the listing of each
//     directory glob read, the contents of each file() read.
// Only packages without errors are stored; labels, cycles and order are
// worked out afresh on every load.

const cacheMagic = "cogumi hcl load cache 1\n"

// Observation kinds.
const (
	obsStat byte = iota + 1
	obsDir
	obsFile
)

// What a stat found.
const (
	statMissing byte = iota + 1
	statFile
	statDir
	statOther
)

// observation is one file system fact an evaluation depended on.
type observation struct {
	kind byte
	path string // workspace-relative
	stat byte   // obsStat
	sum  [32]byte
}

// cacheKey hashes everything every package's evaluation depends on besides
// its own files. It fails when the loader binary cannot be identified: then
// a cached entry could be one an older cogumi made.
func cacheKey(settingsSrc []byte, opts Options) ([32]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return [32]byte{}, fmt.Errorf("identifying the cogumi binary: %w", err)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return [32]byte{}, fmt.Errorf("identifying the cogumi binary: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s%q %d %d\n", cacheMagic, exe, fi.Size(), fi.ModTime().UnixNano())
	fmt.Fprintf(h, "settings %d\n", len(settingsSrc))
	h.Write(settingsSrc)
	vars := make([]string, 0, len(opts.Vars))
	for k, v := range opts.Vars {
		vars = append(vars, fmt.Sprintf("var %q %q\n", k, v))
	}
	for _, kv := range opts.Env {
		if strings.HasPrefix(kv, "COGUMI_VAR_") {
			vars = append(vars, fmt.Sprintf("env %q\n", kv))
		}
	}
	sort.Strings(vars)
	for _, v := range vars {
		h.Write([]byte(v))
	}
	writeRules(h, opts.Rules)
	var key [32]byte
	h.Sum(key[:0])
	return key, nil
}

func writeRules(w interface{ Write([]byte) (int, error) }, reg *rules.Registry) {
	for _, k := range reg.Kinds() {
		r, _ := reg.Lookup(k)
		fmt.Fprintf(w, "rule %q %q %#v\n", k, r.Version(), r.Schema())
	}
}

// readCache returns the raw entry of each package in the cache file, or
// nil when the file is missing, corrupt or made under another key.
func readCache(file string, key [32]byte) map[string][]byte {
	data, err := os.ReadFile(file)
	if err != nil || !bytes.HasPrefix(data, []byte(cacheMagic)) {
		return nil
	}
	d := &decoder{data: data[len(cacheMagic):]}
	if !bytes.Equal(d.raw(32), key[:]) {
		return nil
	}
	n := d.count()
	entries := make(map[string][]byte, n)
	for range n {
		pkg := string(d.raw(d.uint()))
		entries[pkg] = d.raw(d.uint())
	}
	if d.err != nil || len(d.data) != 0 {
		return nil
	}
	return entries
}

// writeCache replaces the cache file with the entries of results, by
// renaming a complete file into place: readers see the old or the new one.
func writeCache(file string, key [32]byte, results []pkgResult) error {
	buf := append([]byte(cacheMagic), key[:]...)
	n := 0
	for _, r := range results {
		if r.entry != nil {
			n++
		}
	}
	buf = binary.AppendUvarint(buf, uint64(n))
	for _, r := range results {
		if r.entry != nil {
			buf = binary.AppendUvarint(buf, uint64(len(r.pkg)))
			buf = append(buf, r.pkg...)
			buf = binary.AppendUvarint(buf, uint64(len(r.entry)))
			buf = append(buf, r.entry...)
		}
	}
	if err := atomicfile.WriteFile(file, buf, 0o644); err != nil {
		return fmt.Errorf("writing the load cache: %w", err)
	}
	return nil
}

// subSum hashes the names of the packages below pkg.
func subSum(pkgs []string, pkg string) [32]byte {
	prefix := pkg + "/"
	if pkg == "" {
		prefix = ""
	}
	h := sha256.New()
	for i := sort.SearchStrings(pkgs, prefix); i < len(pkgs) && strings.HasPrefix(pkgs[i], prefix); i++ {
		if pkgs[i] != pkg {
			fmt.Fprintf(h, "%q\n", pkgs[i])
		}
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// encodeEntry stores the package's result and what its evaluation read;
// nil when some value cannot be stored.
func (p *pkgLoader) encodeEntry(src, sub [32]byte) []byte {
	e := newEncoder()
	e.buf = append(e.buf, src[:]...)
	e.buf = append(e.buf, sub[:]...)
	e.uint(uint64(len(p.obs)))
	for _, o := range p.obs {
		e.byte(o.kind)
		e.str(o.path)
		if o.kind == obsStat {
			e.byte(o.stat)
		} else {
			e.buf = append(e.buf, o.sum[:]...)
		}
	}
	e.uint(uint64(len(p.res.names)))
	for _, n := range p.res.names {
		e.str(n)
	}
	e.uint(uint64(len(p.res.targets)))
	for _, t := range p.res.targets {
		if err := e.target(t); err != nil {
			return nil
		}
	}
	return e.buf
}

// fromCache fills p.res from a cached entry when it is still valid.
func (p *pkgLoader) fromCache(raw []byte, src, sub [32]byte) bool {
	d := &decoder{data: raw}
	if !bytes.Equal(d.raw(32), src[:]) || !bytes.Equal(d.raw(32), sub[:]) {
		return false
	}
	n := d.count()
	for range n {
		o := observation{kind: d.byte(), path: d.str()}
		if o.kind == obsStat {
			o.stat = d.byte()
		} else {
			copy(o.sum[:], d.raw(32))
		}
		if d.err != nil || !p.stillHolds(o) {
			return false
		}
	}
	names := make([]string, d.count())
	for i := range names {
		names[i] = d.str()
	}
	res := pkgResult{pkg: p.res.pkg, file: p.res.file, src: p.res.src, names: names, entry: raw}
	n = d.count()
	for range n {
		res.targets = append(res.targets, d.target())
	}
	if d.err != nil || len(d.data) != 0 {
		return false
	}
	p.res = res
	return true
}

// stillHolds checks an observation against the file system now.
func (p *pkgLoader) stillHolds(o observation) bool {
	abs := filepath.Join(p.root, filepath.FromSlash(o.path))
	switch o.kind {
	case obsStat:
		fi, err := os.Stat(abs)
		return statKind(fi, err) == o.stat
	case obsDir:
		entries, err := os.ReadDir(abs)
		return err == nil && listingSum(entries) == o.sum
	case obsFile:
		b, err := os.ReadFile(abs)
		return err == nil && sha256.Sum256(b) == o.sum
	}
	return false
}

func statKind(fi fs.FileInfo, err error) byte {
	switch {
	case err != nil && errorsIsNotExist(err):
		return statMissing
	case err != nil:
		return 0 // an error: never equal to a stored kind
	case fi.Mode().IsRegular():
		return statFile
	case fi.IsDir():
		return statDir
	}
	return statOther
}

// listingSum hashes a directory listing as glob sees it: directories glob
// never enters (cogumi-out, hidden ones) are left out, so that the first
// build's cogumi-out does not invalidate the root package.
func listingSum(entries []fs.DirEntry) [32]byte {
	h := sha256.New()
	for _, e := range entries {
		if e.IsDir() && skipDir(e.Name()) {
			continue
		}
		fmt.Fprintf(h, "%q %d\n", e.Name(), e.Type())
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// observe records a fact once.
func (p *pkgLoader) observe(o observation) {
	k := string([]byte{o.kind}) + o.path
	if !p.observed[k] {
		p.observed[k] = true
		p.obs = append(p.obs, o)
	}
}

// readDir lists a workspace-relative directory, recording its listing.
func (p *pkgLoader) readDir(ws string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(filepath.Join(p.root, filepath.FromSlash(ws)))
	if err == nil {
		p.observe(observation{kind: obsDir, path: ws, sum: listingSum(entries)})
	}
	return entries, err
}

// readFile reads a workspace-relative file, recording its contents.
func (p *pkgLoader) readFile(ws string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(p.root, filepath.FromSlash(ws)))
	if err == nil {
		p.observe(observation{kind: obsFile, path: ws, sum: sha256.Sum256(b)})
	}
	return b, err
}
