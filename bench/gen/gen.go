// Package gen writes synthetic cogumi workspaces for benchmarks: N run
// targets in chains and fan-ins over small source files, spread over
// packages of about 100 targets, and the same graph as a build.ninja and a
// Makefile so that cogumi's no-op build can be compared with ninja's and
// make's on identical work.
//
// Every target runs
//
//	cat $SRCS | cksum > $OUT/<name>.txt
//
// (ninja: cat $in | cksum > $out; make: cat $^ | cksum > $@), so the three
// tools produce byte-identical files. The output is a checksum of the
// inputs rather than their concatenation: outputs stay a few bytes at any
// depth of fan-ins, yet an edited source still changes every dependent.
package gen

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Options shapes the graph. The zero value gives the defaults noted on each
// field.
type Options struct {
	Seed              uint64 // for the random choices; 0 means 1
	TargetsPerPackage int    // default 100
	SourcesPerPackage int    // default 10
	ChainMin          int    // shortest chain; default 10
	ChainMax          int    // longest chain; default 50
	FanInEvery        int    // about one target in FanInEvery is a fan-in; default 20
	FanInMin          int    // fewest extra dependencies of a fan-in; default 5
	FanInMax          int    // most extra dependencies of a fan-in; default 20
	Window            int    // a fan-in picks among this many preceding targets; default 1000
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	def(&o.TargetsPerPackage, 100)
	def(&o.SourcesPerPackage, 10)
	def(&o.ChainMin, 10)
	def(&o.ChainMax, 50)
	def(&o.FanInEvery, 20)
	def(&o.FanInMin, 5)
	def(&o.FanInMax, 20)
	def(&o.Window, 1000)
	o.ChainMax = max(o.ChainMax, o.ChainMin)
	o.FanInMax = max(o.FanInMax, o.FanInMin)
	return o
}

// target is one generated run target: global number i lives in package
// i/TargetsPerPackage under the name t<i%TargetsPerPackage>.
type target struct {
	srcs []int // source files of its own package, by number
	deps []int // targets, by global number, all lower than its own
}

// graph draws the targets. Target i starts a chain or continues the one
// before it (depending on target i-1); a chain's first target reads 1 to 3
// sources, so every target has a source upstream; other targets read a
// source now and then; about one in FanInEvery also depends on FanInMin to
// FanInMax earlier targets.
func graph(n int, o Options) []target {
	r := rand.New(rand.NewPCG(o.Seed, 0x636f67756d69)) // "cogumi"
	ts := make([]target, n)
	chainLeft := 0
	for i := range ts {
		t := &ts[i]
		nsrc := 0
		if chainLeft == 0 {
			chainLeft = o.ChainMin + r.IntN(o.ChainMax-o.ChainMin+1)
			nsrc = 1 + r.IntN(min(3, o.SourcesPerPackage))
		} else {
			t.deps = append(t.deps, i-1)
			if r.IntN(4) == 0 {
				nsrc = 1
			}
		}
		chainLeft--
		for _, s := range r.Perm(o.SourcesPerPackage)[:nsrc] {
			t.srcs = append(t.srcs, s)
		}
		if i > 1 && r.IntN(o.FanInEvery) == 0 {
			lo := max(0, i-o.Window)
			k := min(o.FanInMin+r.IntN(o.FanInMax-o.FanInMin+1), i-lo)
			seen := map[int]bool{i - 1: true}
			for len(seen) <= k && len(seen) < i-lo {
				d := lo + r.IntN(i-lo)
				if !seen[d] {
					seen[d] = true
					t.deps = append(t.deps, d)
				}
			}
		}
	}
	return ts
}

// Write writes a workspace of n targets into dir, which must not exist or be
// empty: cogumi.hcl, the packages p0000, p0001, ... each with a BUILD.hcl
// and its source files src_<k>.txt, and build.ninja and Makefile for the same
// graph, writing under ninja-out/ and make-out/.
func Write(dir string, n int, opts Options) error {
	if n <= 0 {
		return fmt.Errorf("gen: %d targets: need at least one", n)
	}
	o := opts.withDefaults()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return err
	} else if len(ents) > 0 {
		return fmt.Errorf("gen: %s is not empty", dir)
	}
	w := &writer{dir: dir, o: o, ts: graph(n, o)}
	w.npkg = (n + o.TargetsPerPackage - 1) / o.TargetsPerPackage
	w.width = pkgWidth(w.npkg)

	if err := os.WriteFile(filepath.Join(dir, "cogumi.hcl"), []byte("workspace {\n  name = \"synthetic\"\n}\n"), 0o666); err != nil {
		return err
	}
	for p := range w.npkg {
		if err := w.writePackage(p); err != nil {
			return err
		}
	}
	if err := w.writeFile("build.ninja", w.ninja); err != nil {
		return err
	}
	return w.writeFile("Makefile", w.makefile)
}

// pkgWidth is the number of digits of package names: p0000 to p9999, then
// one more digit where there are more packages.
func pkgWidth(npkg int) int { return max(4, len(strconv.Itoa(npkg-1))) }

type writer struct {
	dir   string
	o     Options
	ts    []target
	npkg  int
	width int // digits of a package number
}

func (w *writer) pkg(i int) string { return fmt.Sprintf("p%0*d", w.width, i/w.o.TargetsPerPackage) }
func (w *writer) name(i int) string {
	return "t" + strconv.Itoa(i%w.o.TargetsPerPackage)
}
func src(k int) string { return "src_" + strconv.Itoa(k) + ".txt" }

// writeFile writes name under dir through a buffer filled by fill.
func (w *writer) writeFile(name string, fill func(*bufio.Writer)) (err error) {
	f, err := os.Create(filepath.Join(w.dir, name))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	b := bufio.NewWriterSize(f, 1<<16)
	fill(b)
	return b.Flush()
}

func (w *writer) writePackage(p int) error {
	pkg := fmt.Sprintf("p%0*d", w.width, p)
	if err := os.Mkdir(filepath.Join(w.dir, pkg), 0o777); err != nil {
		return err
	}
	for k := range w.o.SourcesPerPackage {
		body := fmt.Sprintf("%s/%s seed %d\n", pkg, src(k), w.o.Seed)
		if err := os.WriteFile(filepath.Join(w.dir, pkg, src(k)), []byte(body), 0o666); err != nil {
			return err
		}
	}
	return w.writeFile(filepath.Join(pkg, "BUILD.hcl"), func(b *bufio.Writer) {
		lo := p * w.o.TargetsPerPackage
		hi := min(lo+w.o.TargetsPerPackage, len(w.ts))
		for i := lo; i < hi; i++ {
			if i > lo {
				b.WriteString("\n")
			}
			var in []string
			for _, s := range w.ts[i].srcs {
				in = append(in, strconv.Quote(src(s)))
			}
			for _, d := range w.ts[i].deps {
				l := ":" + w.name(d)
				if w.pkg(d) != pkg {
					l = "//" + w.pkg(d) + l
				}
				in = append(in, strconv.Quote(l))
			}
			name := w.name(i)
			fmt.Fprintf(b, "run %q {\n", name)
			fmt.Fprintf(b, "  srcs    = [%s]\n", strings.Join(in, ", "))
			fmt.Fprintf(b, "  outs    = [%q]\n", name+".txt")
			fmt.Fprintf(b, "  command = %q\n", "cat $SRCS | cksum > $OUT/"+name+".txt")
			b.WriteString("}\n")
		}
	})
}

// inputs lists target i's inputs as paths from the workspace root, outputs
// of other targets under out ("ninja-out" or "make-out").
func (w *writer) inputs(i int, out string) []string {
	var in []string
	for _, s := range w.ts[i].srcs {
		in = append(in, w.pkg(i)+"/"+src(s))
	}
	for _, d := range w.ts[i].deps {
		in = append(in, w.output(d, out))
	}
	return in
}

func (w *writer) output(i int, out string) string {
	return out + "/" + w.pkg(i) + "/" + w.name(i) + ".txt"
}

func (w *writer) ninja(b *bufio.Writer) {
	b.WriteString("# Generated by cogumi's bench/gen: the same graph as the BUILD.hcl files.\n")
	b.WriteString("ninja_required_version = 1.3\n\n")
	b.WriteString("rule run\n  command = cat $in | cksum > $out\n  description = $out\n\n")
	for i := range w.ts {
		fmt.Fprintf(b, "build %s: run %s\n", w.output(i, "ninja-out"), strings.Join(w.inputs(i, "ninja-out"), " "))
	}
}

func (w *writer) makefile(b *bufio.Writer) {
	b.WriteString("# Generated by cogumi's bench/gen: the same graph as the BUILD.hcl files.\n")
	b.WriteString("MAKEFLAGS += --no-builtin-rules --no-builtin-variables\n.SUFFIXES:\n.PHONY: all\n\n")
	for p := range w.npkg {
		lo := p * w.o.TargetsPerPackage
		hi := min(lo+w.o.TargetsPerPackage, len(w.ts))
		b.WriteString("all:")
		for i := lo; i < hi; i++ {
			b.WriteString(" " + w.output(i, "make-out"))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for p := range w.npkg {
		fmt.Fprintf(b, "make-out/p%0*d:\n\tmkdir -p $@\n", w.width, p)
	}
	b.WriteString("\n")
	for i := range w.ts {
		fmt.Fprintf(b, "%s: %s | make-out/%s\n\tcat $^ | cksum > $@\n",
			w.output(i, "make-out"), strings.Join(w.inputs(i, "make-out"), " "), w.pkg(i))
	}
}
