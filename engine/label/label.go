// Package label parses and prints target addresses: //pkg:name, :name,
// //pkg:name/path/inside/artifact, and the patterns //pkg/... and //... .
package label

import (
	"errors"
	"fmt"
	"strings"
)

// Label is the address of one target, optionally narrowed to one file or
// directory inside the target's artifact (Sub). It is comparable and has one
// canonical form, String.
type Label struct {
	Pkg  string // package path from the workspace root; "" for the root package
	Name string // target name
	Sub  string // slash-separated path inside the artifact; "" for the whole artifact
}

// String is the canonical form: //pkg:name or //pkg:name/sub.
func (l Label) String() string {
	s := "//" + l.Pkg + ":" + l.Name
	if l.Sub != "" {
		s += "/" + l.Sub
	}
	return s
}

// Target is the label without its Sub path: the target itself.
func (l Label) Target() Label { return Label{Pkg: l.Pkg, Name: l.Name} }

// IsZero reports whether l is the zero Label.
func (l Label) IsZero() bool { return l == Label{} }

// Parse parses an absolute label (//pkg:name) or, when pkg is the package
// the text was written in, a relative one (:name). A label without a target
// name (//pkg) names the target with the package's last path element, as in
// Bazel.
func Parse(s, pkg string) (Label, error) {
	l, err := parse(s, pkg)
	if err != nil {
		return Label{}, fmt.Errorf("bad label %q: %w", s, err)
	}
	return l, nil
}

func parse(s, pkg string) (Label, error) {
	var rest string
	switch {
	case strings.HasPrefix(s, "//"):
		rest = s[2:]
		colon := strings.IndexByte(rest, ':')
		if colon < 0 {
			if err := checkPackage(rest); err != nil {
				return Label{}, err
			}
			if rest == "" {
				return Label{}, errors.New("missing target name (write //:name)")
			}
			name := rest[strings.LastIndexByte(rest, '/')+1:]
			if err := CheckName(name); err != nil {
				return Label{}, err
			}
			return Label{Pkg: rest, Name: name}, nil
		}
		pkg, rest = rest[:colon], rest[colon+1:]
		if err := checkPackage(pkg); err != nil {
			return Label{}, err
		}
	case strings.HasPrefix(s, ":"):
		rest = s[1:]
		if err := checkPackage(pkg); err != nil {
			return Label{}, err
		}
	default:
		return Label{}, errors.New("a label starts with // or :")
	}
	name, sub, _ := strings.Cut(rest, "/")
	if err := CheckName(name); err != nil {
		return Label{}, err
	}
	if strings.Contains(rest, "/") {
		if err := checkSub(sub); err != nil {
			return Label{}, err
		}
	}
	return Label{Pkg: pkg, Name: name, Sub: sub}, nil
}

// IsLabel reports whether s is written as a label rather than a file path.
func IsLabel(s string) bool {
	return strings.HasPrefix(s, "//") || strings.HasPrefix(s, ":")
}

// CheckName reports whether name is a valid target name: letters, digits,
// '_', '-' and '.', not "." or "..". The name "all" is reserved: //pkg:all is
// the pattern of every target of a package.
func CheckName(name string) error {
	if name == "" {
		return errors.New("empty target name")
	}
	if name == "." || name == ".." {
		return fmt.Errorf("target name %q is not allowed", name)
	}
	if name == "all" {
		return errors.New(`target name "all" is reserved (//pkg:all selects every target of a package)`)
	}
	for _, r := range name {
		if !nameChar(r) {
			return fmt.Errorf("target name %q: character %q not allowed (use letters, digits, '_', '-', '.')", name, r)
		}
	}
	return nil
}

func nameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
}

// checkPackage accepts "" (the root package) or slash-separated names.
func checkPackage(pkg string) error {
	if pkg == "" {
		return nil
	}
	for _, seg := range strings.Split(pkg, "/") {
		if seg == "" || seg == "." || seg == ".." || seg == "..." {
			return fmt.Errorf("package %q: bad path element %q", pkg, seg)
		}
		for _, r := range seg {
			if !nameChar(r) {
				return fmt.Errorf("package %q: character %q not allowed", pkg, r)
			}
		}
	}
	return nil
}

// checkSub accepts a clean relative path inside an artifact.
func checkSub(sub string) error {
	if sub == "" {
		return errors.New("empty path after target name")
	}
	for _, seg := range strings.Split(sub, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("path %q inside the artifact: bad element %q", sub, seg)
		}
		if strings.ContainsAny(seg, "\x00\\") {
			return fmt.Errorf("path %q inside the artifact: bad character", sub)
		}
	}
	return nil
}

// Pattern selects targets: one label, every target of a package (//pkg:all),
// or every target at or under a package (//pkg/...).
type Pattern struct {
	Pkg       string
	Name      string // "" with Recursive or All
	Recursive bool   // //pkg/...
	All       bool   // //pkg:all or //pkg:*
}

// ParsePattern parses a label or a pattern. Relative labels and the
// relative patterns :all and :* use pkg.
func ParsePattern(s, pkg string) (Pattern, error) {
	if rest, ok := strings.CutPrefix(s, "//"); ok && (rest == "..." || strings.HasSuffix(rest, "/...")) {
		p := ""
		if rest != "..." {
			p = strings.TrimSuffix(rest, "/...")
			if p == "" {
				return Pattern{}, fmt.Errorf("bad pattern %q: empty package path (write //...)", s)
			}
		}
		if err := checkPackage(p); err != nil {
			return Pattern{}, fmt.Errorf("bad pattern %q: %w", s, err)
		}
		return Pattern{Pkg: p, Recursive: true}, nil
	}
	before, ok := strings.CutSuffix(s, ":all")
	if !ok {
		before, ok = strings.CutSuffix(s, ":*")
	}
	if ok && (before == "" || strings.HasPrefix(before, "//")) {
		p := pkg
		if before != "" {
			p = before[2:]
		}
		if err := checkPackage(p); err != nil {
			return Pattern{}, fmt.Errorf("bad pattern %q: %w", s, err)
		}
		return Pattern{Pkg: p, All: true}, nil
	}
	l, err := Parse(s, pkg)
	if err != nil {
		return Pattern{}, err
	}
	if l.Sub != "" {
		return Pattern{}, fmt.Errorf("bad pattern %q: a pattern names whole targets, not paths inside them", s)
	}
	return Pattern{Pkg: l.Pkg, Name: l.Name}, nil
}

// Matches reports whether the pattern selects target l.
func (p Pattern) Matches(l Label) bool {
	switch {
	case p.Recursive:
		return p.Pkg == "" || l.Pkg == p.Pkg || strings.HasPrefix(l.Pkg, p.Pkg+"/")
	case p.All:
		return l.Pkg == p.Pkg
	default:
		return l.Pkg == p.Pkg && l.Name == p.Name
	}
}

func (p Pattern) String() string {
	switch {
	case p.Recursive && p.Pkg == "":
		return "//..."
	case p.Recursive:
		return "//" + p.Pkg + "/..."
	case p.All:
		return "//" + p.Pkg + ":all"
	default:
		return Label{Pkg: p.Pkg, Name: p.Name}.String()
	}
}
