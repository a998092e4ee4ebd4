package hcl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cogumi/cogumi/data/rowexpr"
)

// maxFileSize bounds what file() reads: its value is part of an attribute,
// hashed into action keys and held in memory, so it is for prompts and
// templates, not data (data goes in srcs).
const maxFileSize = 16 << 20

// stdFunctions are go-cty's standard functions (shared with row
// expressions, which are evaluated at build time: see rowexpr).
func stdFunctions() map[string]function.Function { return rowexpr.Functions() }

// pkgFunctions are the functions that read files of one package.
func (p *pkgLoader) pkgFunctions() map[string]function.Function {
	return map[string]function.Function{
		"glob": function.New(&function.Spec{
			Description: "Lists the files of the package matching a pattern (** for any depth), sorted.",
			Params:      []function.Parameter{{Name: "pattern", Type: cty.String}},
			Type:        function.StaticReturnType(cty.List(cty.String)),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return p.glob(args[0].AsString())
			},
		}),
		"file": function.New(&function.Spec{
			Description: "Returns the contents of a text file of the package.",
			Params:      []function.Parameter{{Name: "path", Type: cty.String}},
			Type:        function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return p.file(args[0].AsString())
			},
		}),
	}
}

// glob lists the files of the package that match pattern, as sorted
// package-relative paths. Wildcards do not match names starting with '.'
// (as in a shell) and never enter hidden directories, cogumi-out,
// node_modules or sub-packages: a sub-package's files are its own. An empty
// result is an error: it is almost always a typo, and a target over no
// files would silently build nothing.
func (p *pkgLoader) glob(pattern string) (cty.Value, error) {
	if v, ok := p.globs[pattern]; ok {
		return v, nil
	}
	if pattern == "" || strings.HasPrefix(pattern, "/") || strings.Contains(pattern, "\\") {
		return cty.NilVal, fmt.Errorf("glob %q: the pattern must be a relative, slash-separated path", pattern)
	}
	var segs []string
	for _, s := range strings.Split(strings.TrimPrefix(pattern, "./"), "/") {
		if s == "" || s == "." || s == ".." {
			return cty.NilVal, fmt.Errorf("glob %q: bad path element %q (patterns stay inside the package)", pattern, s)
		}
		if _, err := path.Match(s, ""); err != nil {
			return cty.NilVal, fmt.Errorf("glob %q: bad pattern element %q", pattern, s)
		}
		if s == "**" && len(segs) > 0 && segs[len(segs)-1] == "**" {
			continue // **/** is **, and walking it twice would take time exponential in the count
		}
		segs = append(segs, s)
	}
	found := make(map[string]bool)
	if err := p.globDir("", segs, found); err != nil {
		return cty.NilVal, fmt.Errorf("glob %q: %w", pattern, err)
	}
	if len(found) == 0 {
		return cty.NilVal, fmt.Errorf("glob %q matches no files in %s", pattern, pkgName(p.pkg))
	}
	list := make([]string, 0, len(found))
	for f := range found {
		list = append(list, f)
	}
	sort.Strings(list)
	vals := make([]cty.Value, len(list))
	for i, f := range list {
		vals[i] = cty.StringVal(f)
	}
	v := cty.ListVal(vals)
	p.globs[pattern] = v
	return v, nil
}

// globDir matches segs against the directory rel (package-relative) and
// records matching files in found.
func (p *pkgLoader) globDir(rel string, segs []string, found map[string]bool) error {
	seg, rest := segs[0], segs[1:]
	if seg == "**" {
		if len(rest) > 0 {
			if err := p.globDir(rel, rest, found); err != nil {
				return err
			}
		}
	} else if !hasMeta(seg) {
		return p.globEntry(path.Join(rel, seg), rest, found)
	}
	entries, err := p.readDir(path.Join(p.pkg, rel))
	if err != nil {
		return fmt.Errorf("reading %s: %w", path.Join(p.pkg, rel), err)
	}
	for _, e := range entries {
		name := e.Name()
		child := path.Join(rel, name)
		if seg == "**" {
			// ** never follows directory links, so it cannot loop.
			switch {
			case e.IsDir() && !skipDir(name) && !p.isSubPackage(child):
				if err := p.globDir(child, segs, found); err != nil {
					return err
				}
			case len(rest) == 0 && !strings.HasPrefix(name, "."):
				if err := p.globEntry(child, nil, found); err != nil {
					return err
				}
			}
			continue
		}
		if strings.HasPrefix(name, ".") && !strings.HasPrefix(seg, ".") {
			continue
		}
		if ok, _ := path.Match(seg, name); !ok {
			continue
		}
		if e.IsDir() && skipDir(name) && name != seg {
			continue
		}
		if err := p.globEntry(child, rest, found); err != nil {
			return err
		}
	}
	return nil
}

// globEntry handles one matched name: a file when no segments are left, a
// directory to descend into otherwise. Links are followed (Hugging Face
// snapshots are directories of links into a blob store).
func (p *pkgLoader) globEntry(rel string, rest []string, found map[string]bool) error {
	fi, err := p.stat(path.Join(p.pkg, rel))
	if err != nil {
		if errorsIsNotExist(err) {
			return nil // a dangling link or a literal name that is not there
		}
		return fmt.Errorf("reading %s: %w", path.Join(p.pkg, rel), err)
	}
	if len(rest) == 0 {
		if fi.Mode().IsRegular() {
			found[rel] = true
		}
		return nil
	}
	if !fi.IsDir() || p.isSubPackage(rel) {
		return nil
	}
	return p.globDir(rel, rest, found)
}

func hasMeta(seg string) bool { return strings.ContainsAny(seg, `*?[\`) }

// file returns the text of a file of the package.
func (p *pkgLoader) file(rel string) (cty.Value, error) {
	ws, err := p.pkgPath(rel)
	if err != nil {
		return cty.NilVal, err
	}
	fi, err := p.stat(ws)
	switch {
	case err != nil && errorsIsNotExist(err):
		return cty.NilVal, fmt.Errorf("file %q not found in %s", rel, pkgName(p.pkg))
	case err != nil:
		return cty.NilVal, fmt.Errorf("reading %s: %w", ws, err)
	case !fi.Mode().IsRegular():
		return cty.NilVal, fmt.Errorf("%q is not a regular file", rel)
	case fi.Size() > maxFileSize:
		return cty.NilVal, fmt.Errorf("file %q is larger than %d MiB; list data files in srcs instead", rel, maxFileSize>>20)
	}
	b, err := p.readFile(ws)
	if err != nil {
		return cty.NilVal, fmt.Errorf("reading %s: %w", ws, err)
	}
	if !utf8.Valid(b) {
		return cty.NilVal, fmt.Errorf("file %q is not UTF-8 text", rel)
	}
	return cty.StringVal(string(b)), nil
}

// pkgPath checks rel, a path written relative to the package directory, and
// returns it relative to the workspace root. It must stay inside the
// package: files of other packages are reached through their targets.
func (p *pkgLoader) pkgPath(rel string) (string, error) {
	switch {
	case rel == "":
		return "", fmt.Errorf("empty path")
	case strings.HasPrefix(rel, "/") || filepath.IsAbs(rel):
		return "", fmt.Errorf("path %q must be relative to the package directory", rel)
	}
	clean := path.Clean(rel)
	switch {
	case clean == ".":
		return "", fmt.Errorf("path %q names the package directory itself", rel)
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return "", fmt.Errorf("path %q is outside %s; use a target of the package that holds it", rel, pkgName(p.pkg))
	}
	for d := path.Dir(clean); d != "."; d = path.Dir(d) {
		if p.isSubPackage(d) {
			sub := path.Join(p.pkg, d)
			return "", fmt.Errorf("%q belongs to package %s; use a target of that package", rel, sub)
		}
	}
	return path.Join(p.pkg, clean), nil
}

// isSubPackage reports whether rel, relative to this package, is a package.
// stat stats a workspace-relative path, once per package: targets of a
// package often share their source files.
func (p *pkgLoader) stat(ws string) (fs.FileInfo, error) {
	if r, ok := p.stats[ws]; ok {
		return r.fi, r.err
	}
	fi, err := os.Stat(filepath.Join(p.root, filepath.FromSlash(ws)))
	p.stats[ws] = statResult{fi, err}
	p.observe(observation{kind: obsStat, path: ws, stat: statKind(fi, err)})
	return fi, err
}

type statResult struct {
	fi  fs.FileInfo
	err error
}

func (p *pkgLoader) isSubPackage(rel string) bool {
	return p.ws.pkgs[path.Join(p.pkg, rel)]
}

// statSource checks that the workspace-relative path ws is a file.
func (p *pkgLoader) statSource(ws, written string) error {
	fi, err := p.stat(ws)
	switch {
	case err != nil && errorsIsNotExist(err):
		return fmt.Errorf("source file %q not found in %s", written, pkgName(p.pkg))
	case err != nil:
		return fmt.Errorf("source file %q: %w", written, err)
	case fi.IsDir():
		return fmt.Errorf("source %q is a directory; list its files, e.g. glob(%q)", written, path.Clean(written)+"/**")
	case !fi.Mode().IsRegular():
		return fmt.Errorf("source %q is not a regular file", written)
	}
	return nil
}

// errorsIsNotExist also treats ENOTDIR as missing: stat of "a.txt/b",
// where a.txt is a file, is to the user simply "not found".
func errorsIsNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// pkgName names a package in messages.
func pkgName(pkg string) string {
	if pkg == "" {
		return "the root package"
	}
	return "package " + pkg
}
