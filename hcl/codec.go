package hcl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
)

// The load cache stores evaluated targets in a small binary format: JSON
// of cty values decodes too slowly to beat parsing the HCL again. Strings
// are interned per package (file names and attribute names repeat), and a
// value is written after its type, so decoding is driven by the type and
// cannot build an inconsistent value.

// encoder appends to buf.
type encoder struct {
	buf  []byte
	strs map[string]uint64
}

func newEncoder() *encoder { return &encoder{strs: make(map[string]uint64)} }

func (e *encoder) uint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) int(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) byte(b byte)   { e.buf = append(e.buf, b) }

// str writes an index into the string table; a new string follows its index.
func (e *encoder) str(s string) {
	if i, ok := e.strs[s]; ok {
		e.uint(i)
		return
	}
	i := uint64(len(e.strs))
	e.strs[s] = i
	e.uint(i)
	e.uint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// decoder reads what encoder wrote; the first error sticks and every read
// after it returns zero values, so callers check err once at the end.
type decoder struct {
	data []byte
	strs []string
	err  error
}

var errCorrupt = errors.New("load cache is corrupt")

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.fail()
		d.data = nil
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.data)
	if n <= 0 {
		d.fail()
		d.data = nil
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.data) == 0 {
		d.fail()
		return 0
	}
	b := d.data[0]
	d.data = d.data[1:]
	return b
}

func (d *decoder) raw(n uint64) []byte {
	if n > uint64(len(d.data)) {
		d.fail()
		d.data = nil
		return nil
	}
	b := d.data[:n]
	d.data = d.data[n:]
	return b
}

func (d *decoder) str() string {
	i := d.uint()
	switch {
	case d.err != nil:
		return ""
	case i < uint64(len(d.strs)):
		return d.strs[i]
	case i == uint64(len(d.strs)):
		s := string(d.raw(d.uint()))
		d.strs = append(d.strs, s)
		return s
	}
	d.fail()
	return ""
}

// count reads a length, refusing one larger than the bytes left (each item
// takes at least one byte), so corrupt input cannot make huge allocations.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.data)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (e *encoder) pos(p target.Pos) {
	e.str(p.File)
	e.uint(uint64(p.Line))
	e.uint(uint64(p.Col))
}

func (d *decoder) pos() target.Pos {
	return target.Pos{File: d.str(), Line: int(d.uint()), Col: int(d.uint())}
}

func (e *encoder) label(l label.Label) { e.str(l.Pkg); e.str(l.Name); e.str(l.Sub) }
func (d *decoder) label() label.Label {
	return label.Label{Pkg: d.str(), Name: d.str(), Sub: d.str()}
}

// target writes every field of t. TestCodecCoversTarget fails when Target
// gains a field, so that a new field cannot be silently lost by the cache.
func (e *encoder) target(t *target.Target) error {
	e.label(t.Label)
	e.str(t.Kind)
	names := make([]string, 0, len(t.Attrs))
	for n := range t.Attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	e.uint(uint64(len(names)))
	for _, n := range names {
		e.str(n)
		if err := e.value(t.Attrs[n]); err != nil {
			return fmt.Errorf("attribute %q: %w", n, err)
		}
	}
	e.uint(uint64(len(t.Inputs)))
	for _, in := range t.Inputs {
		e.str(in.Attr)
		e.str(in.Key)
		e.str(in.File)
		e.label(in.Label)
		e.pos(in.Pos)
	}
	r := t.Resources
	e.uint(math.Float64bits(r.CPUs))
	e.int(r.Memory)
	e.int(int64(r.GPUs))
	e.str(r.GPUType)
	e.str(r.GPUMemory)
	e.int(int64(r.Time))
	e.str(t.Executor)
	e.pos(t.Pos)
	names = names[:0]
	for n := range t.AttrPos {
		names = append(names, n)
	}
	sort.Strings(names)
	e.uint(uint64(len(names)))
	for _, n := range names {
		e.str(n)
		e.pos(t.AttrPos[n])
	}
	return nil
}

func (d *decoder) target() *target.Target {
	t := &target.Target{Label: d.label(), Kind: d.str()}
	n := d.count()
	t.Attrs = make(map[string]cty.Value, n)
	for range n {
		name := d.str()
		t.Attrs[name] = d.value()
	}
	if n := d.count(); n > 0 {
		t.Inputs = make([]target.Input, n)
		for i := range t.Inputs {
			t.Inputs[i] = target.Input{Attr: d.str(), Key: d.str(), File: d.str(), Label: d.label(), Pos: d.pos()}
		}
	}
	t.Resources = target.Resources{
		CPUs: math.Float64frombits(d.uint()), Memory: d.int(), GPUs: int(d.int()),
		GPUType: d.str(), GPUMemory: d.str(), Time: time.Duration(d.int()),
	}
	t.Executor = d.str()
	t.Pos = d.pos()
	n = d.count()
	t.AttrPos = make(map[string]target.Pos, n)
	for range n {
		name := d.str()
		t.AttrPos[name] = d.pos()
	}
	return t
}

// Type tags.
const (
	tagString byte = iota + 1
	tagNumber
	tagBool
	tagList
	tagSet
	tagMap
	tagTuple
	tagObject
	tagDynamic
)

func (e *encoder) typ(ty cty.Type) error {
	switch {
	case ty == cty.String:
		e.byte(tagString)
	case ty == cty.Number:
		e.byte(tagNumber)
	case ty == cty.Bool:
		e.byte(tagBool)
	case ty == cty.DynamicPseudoType:
		e.byte(tagDynamic)
	case ty.IsListType():
		e.byte(tagList)
		return e.typ(ty.ElementType())
	case ty.IsSetType():
		e.byte(tagSet)
		return e.typ(ty.ElementType())
	case ty.IsMapType():
		e.byte(tagMap)
		return e.typ(ty.ElementType())
	case ty.IsTupleType():
		e.byte(tagTuple)
		e.uint(uint64(len(ty.TupleElementTypes())))
		for _, et := range ty.TupleElementTypes() {
			if err := e.typ(et); err != nil {
				return err
			}
		}
	case ty.IsObjectType() && len(ty.OptionalAttributes()) == 0:
		e.byte(tagObject)
		attrs := ty.AttributeTypes()
		names := make([]string, 0, len(attrs))
		for n := range attrs {
			names = append(names, n)
		}
		sort.Strings(names)
		e.uint(uint64(len(names)))
		for _, n := range names {
			e.str(n)
			if err := e.typ(attrs[n]); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("type %s cannot be cached", ty.FriendlyName())
	}
	return nil
}

// maxTypeDepth bounds nesting when decoding, so corrupt input cannot
// recurse without end.
const maxTypeDepth = 64

func (d *decoder) typ(depth int) cty.Type {
	if depth > maxTypeDepth {
		d.fail()
		return cty.DynamicPseudoType
	}
	switch tag := d.byte(); tag {
	case tagString:
		return cty.String
	case tagNumber:
		return cty.Number
	case tagBool:
		return cty.Bool
	case tagDynamic:
		return cty.DynamicPseudoType
	case tagList:
		return cty.List(d.typ(depth + 1))
	case tagSet:
		return cty.Set(d.typ(depth + 1))
	case tagMap:
		return cty.Map(d.typ(depth + 1))
	case tagTuple:
		ets := make([]cty.Type, d.count())
		for i := range ets {
			ets[i] = d.typ(depth + 1)
		}
		return cty.Tuple(ets)
	case tagObject:
		n := d.count()
		attrs := make(map[string]cty.Type, n)
		for range n {
			name := d.str()
			if _, dup := attrs[name]; dup || cty.NormalizeString(name) != name {
				d.fail() // cty would merge the two names
			}
			attrs[name] = d.typ(depth + 1)
		}
		return cty.Object(attrs)
	}
	d.fail()
	return cty.DynamicPseudoType
}
