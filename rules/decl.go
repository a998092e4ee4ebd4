package rules

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/cogumi/cogumi/data/rowexpr"
	"github.com/cogumi/cogumi/engine/target"
)

// A rule declares its attributes once, as the fields of a Go struct (its
// params), each tagged with what Attr says about it:
//
//	type awqParams struct {
//		Model        string `cogumi:"model,key,required,input=label" doc:"..."`
//		Target       string `cogumi:"target,key" default:"Q4_K" doc:"..."`
//		SearchStride *int   `cogumi:"search_stride,key" doc:"..."`
//	}
//
// The cogumi tag is the attribute's name, then key or nokey (whether it
// is in the action key: one of them must be written, see
// TestSchemasDecideKey), then any of required, ordered,
// input=label|sources|file|labelmap|labelkeymap and row=string|row=bool
// (an expression over rows, decoded into a *rowexpr.Expr). The
// attribute's type follows from the field's Go type as gocty sees it; a
// cty.Value field takes any value (null when unset). default is the value
// of an unset attribute as HCL would write it (4, 0.5, Q4_K for a
// string). A pointer field has no default: nil says the attribute is
// unset, for rules to which that matters (a default computed from other
// attributes, or "give either a or b"). Anonymous struct fields without a
// tag are declared in place (attributes two rules share).
//
// Schema gets the Attrs from attrsOf; Check and Execute get the values
// from decode (decodeAction), each once. Defaults never enter
// Target.Attrs, so they are not in the action key: changing a default
// must change the rule's Version.

// declField is one declared attribute and where its value goes.
type declField struct {
	attr  Attr
	index []int // reflect.Value.FieldByIndex
	row   bool  // a *rowexpr.Expr field
}

// attrsOf returns the attributes P declares, in field order.
func attrsOf[P any]() []Attr {
	fields := declOf[P]()
	out := make([]Attr, len(fields))
	for i, f := range fields {
		out[i] = f.attr
	}
	return out
}

// declOf reads P's declaration. A malformed one is a programming error,
// found by every test that asks a rule for its schema
// (TestSchemasDecideKey), so it panics like regexp.MustCompile.
func declOf[P any]() []declField {
	t := reflect.TypeFor[P]()
	if fields, ok := declCache.Load(t); ok {
		return fields.([]declField)
	}
	fields, err := declFields(t, nil)
	if err != nil {
		panic(fmt.Sprintf("rules: declaration %s: %v", t, err))
	}
	declCache.Store(t, fields)
	return fields
}

// declCache memoises declFields by type, as encoding/json caches its struct
// fields: a declaration is a constant of the program, and reading it from
// the tags on every Schema, Outs or decode cost a 10,000-target no-op build
// a fifth of its time. Callers never modify the slices it holds.
var declCache sync.Map // reflect.Type -> []declField

func declFields(st reflect.Type, index []int) ([]declField, error) {
	if st.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s is not a struct", st)
	}
	var out []declField
	for i := range st.NumField() {
		sf := st.Field(i)
		idx := append(append([]int(nil), index...), i)
		tag, tagged := sf.Tag.Lookup("cogumi")
		if !tagged {
			if !sf.Anonymous {
				return nil, fmt.Errorf("field %s has no cogumi tag", sf.Name)
			}
			inner, err := declFields(sf.Type, idx)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
			continue
		}
		f, err := parseField(sf, tag)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", sf.Name, err)
		}
		f.index = idx
		out = append(out, f)
	}
	return out, nil
}

// parseField reads one field's tags.
func parseField(sf reflect.StructField, tag string) (declField, error) {
	parts := strings.Split(tag, ",")
	f := declField{attr: Attr{Name: parts[0], Doc: sf.Tag.Get("doc"), Default: sf.Tag.Get("default")}}
	var rowType cty.Type
	for _, p := range parts[1:] {
		opt, val, _ := strings.Cut(p, "=")
		switch opt {
		case "key":
			f.attr.Key = InKey
		case "nokey":
			f.attr.Key = NotInKey
		case "required":
			f.attr.Required = true
		case "ordered":
			f.attr.Ordered = true
		case "input":
			in, ok := inputKind(val)
			if !ok {
				return f, fmt.Errorf("unknown input kind %q", val)
			}
			f.attr.Input = in
		case "row":
			switch val {
			case "string":
				rowType = cty.String
			case "bool":
				rowType = cty.Bool
			default:
				return f, fmt.Errorf("row=%s: want row=string or row=bool", val)
			}
		default:
			return f, fmt.Errorf("unknown option %q", p)
		}
	}
	switch {
	case sf.Type == reflect.TypeFor[*rowexpr.Expr]():
		if rowType == cty.NilType {
			return f, fmt.Errorf("a *rowexpr.Expr field needs row=string or row=bool")
		}
		f.attr.Type, f.attr.Row, f.row = rowType, true, true
	case rowType != cty.NilType:
		return f, fmt.Errorf("row= needs a *rowexpr.Expr field")
	case sf.Type == reflect.TypeFor[cty.Value]():
		f.attr.Type = cty.DynamicPseudoType
	default:
		ty, err := gocty.ImpliedType(reflect.Zero(sf.Type).Interface())
		if err != nil {
			return f, err
		}
		f.attr.Type = ty
	}
	if f.attr.Default != "" {
		if sf.Type.Kind() == reflect.Pointer {
			return f, fmt.Errorf("a pointer field has no default: nil means unset")
		}
		if _, err := defaultValue(f.attr); err != nil {
			return f, fmt.Errorf("default %q: %w", f.attr.Default, err)
		}
	}
	return f, nil
}

// withDoc sets the doc of attribute name, for a doc computed from other
// packages' values (the formats a converter supports), which a tag cannot
// hold.
func withDoc(attrs []Attr, name, doc string) []Attr {
	for i := range attrs {
		if attrs[i].Name == name {
			attrs[i].Doc = doc
		}
	}
	return attrs
}

// inputKind reads the value of an input= option.
func inputKind(s string) (InputKind, bool) {
	switch s {
	case "label":
		return LabelInput, true
	case "sources":
		return SourcesInput, true
	case "file":
		return FileInput, true
	case "labelmap":
		return LabelMapInput, true
	case "labelkeymap":
		return LabelKeyMapInput, true
	}
	return NoInput, false
}

// defaultValue is an attribute's default as a value of its type.
func defaultValue(a Attr) (cty.Value, error) {
	if a.Type.Equals(cty.DynamicPseudoType) {
		return cty.StringVal(a.Default), nil
	}
	return convert.Convert(cty.StringVal(a.Default), a.Type)
}

// decode returns t's attributes as a P: each declared attribute's value,
// its default when unset, or the zero value. Every value that does not fit
// its field (a fraction for a whole number, a number out of range, a bad
// row template) is an AttrError naming the attribute, so that the loader
// reports it at the attribute's position.
func decode[P any](t *target.Target) (*P, []AttrError) {
	p := new(P)
	pv := reflect.ValueOf(p).Elem()
	var errs []AttrError
	for _, f := range declOf[P]() {
		if err := decodeField(pv.FieldByIndex(f.index), f, t); err != nil {
			errs = append(errs, AttrError{Attr: f.attr.Name, Msg: err.Error()})
		}
	}
	return p, errs
}

// decodeAction is decode for Execute: the loader has already reported any
// error, so one here means a target that did not come through it.
func decodeAction[P any](a *Action) (*P, error) {
	p, errs := decode[P](a.Target)
	if len(errs) > 0 {
		e := errs[0]
		return nil, fmt.Errorf("%s: attribute %q: %s", a.Target.AttrPos[e.Attr], e.Attr, e.Msg)
	}
	return p, nil
}

func decodeField(dst reflect.Value, f declField, t *target.Target) error {
	v, set := t.Attrs[f.attr.Name]
	if !set || v.IsNull() {
		if f.attr.Default == "" {
			if f.attr.Type.Equals(cty.DynamicPseudoType) && !f.row {
				// A usable value, unlike cty.NilVal: IsNull says unset.
				dst.Set(reflect.ValueOf(cty.NullVal(cty.DynamicPseudoType)))
			}
			return nil
		}
		d, err := defaultValue(f.attr)
		if err != nil {
			return err
		}
		v = d
	}
	switch {
	case f.row:
		e, err := rowexpr.FromValue(f.attr.Name, v)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(e))
		return nil
	case f.attr.Type.Equals(cty.DynamicPseudoType):
		dst.Set(reflect.ValueOf(v))
		return nil
	}
	// The loader converted the value to the attribute's type; a target
	// made by hand (a test) may hold a tuple for a list.
	cv, err := convert.Convert(v, f.attr.Type)
	if err != nil {
		return fmt.Errorf("expected %s: %v", f.attr.Type.FriendlyName(), err)
	}
	if err := gocty.FromCtyValue(cv, dst.Addr().Interface()); err != nil {
		return numberError(cv, err)
	}
	return nil
}

// numberError says what is wrong with a number that gocty could not
// store; other values are converted already, so their errors are gocty's.
func numberError(v cty.Value, err error) error {
	if !v.Type().Equals(cty.Number) || !v.IsKnown() {
		return err
	}
	f := v.AsBigFloat()
	if !f.IsInt() {
		return fmt.Errorf("%s is not a whole number", f.Text('g', -1))
	}
	return fmt.Errorf("%s is out of range", f.Text('g', -1))
}
