package hcl

import (
	"errors"
	"math/big"
	"sort"

	"github.com/zclconf/go-cty/cty"
)

// value writes v's type, then v.
func (e *encoder) value(v cty.Value) error {
	if v.IsMarked() || !v.IsWhollyKnown() {
		return errors.New("unknown or marked values cannot be cached")
	}
	if err := e.typ(v.Type()); err != nil {
		return err
	}
	return e.val(v)
}

func (e *encoder) val(v cty.Value) error {
	if v.IsNull() {
		e.byte(0)
		return nil
	}
	e.byte(1)
	ty := v.Type()
	switch {
	case ty == cty.String:
		e.str(v.AsString())
	case ty == cty.Number:
		b, err := v.AsBigFloat().GobEncode()
		if err != nil {
			return err
		}
		e.uint(uint64(len(b)))
		e.buf = append(e.buf, b...)
	case ty == cty.Bool:
		e.byte(map[bool]byte{false: 0, true: 1}[v.True()])
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		e.uint(uint64(v.LengthInt()))
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			if ty.IsSetType() && ev.IsNull() {
				return errors.New("sets with null elements cannot be cached")
			}
			if err := e.val(ev); err != nil {
				return err
			}
		}
	case ty.IsMapType():
		e.uint(uint64(v.LengthInt()))
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			e.str(k.AsString())
			if err := e.val(ev); err != nil {
				return err
			}
		}
	case ty.IsObjectType():
		for _, n := range attrNames(ty) {
			if err := e.val(v.GetAttr(n)); err != nil {
				return err
			}
		}
	default:
		return errors.New("value of type " + ty.FriendlyName() + " cannot be cached")
	}
	return nil
}

// value reads a type, then a value of it.
func (d *decoder) value() cty.Value {
	ty := d.typ(0)
	if d.err != nil {
		return cty.DynamicVal
	}
	return d.val(ty, 0)
}

// val reads a value of type ty. On corrupt input it still returns a value
// of type ty (a null), so that building the enclosing collection, whose
// element types must agree, cannot fail before the caller sees d.err.
func (d *decoder) val(ty cty.Type, depth int) cty.Value {
	if depth > maxTypeDepth {
		d.fail()
	}
	if d.err != nil {
		return cty.NullVal(ty)
	}
	switch d.byte() {
	case 0:
		return cty.NullVal(ty)
	case 1:
	default:
		d.fail()
		return cty.NullVal(ty)
	}
	switch {
	case ty == cty.String:
		return cty.StringVal(d.str())
	case ty == cty.Number:
		var f big.Float
		if err := f.GobDecode(d.raw(d.uint())); err != nil {
			d.fail()
			return cty.NullVal(ty)
		}
		return cty.NumberVal(&f)
	case ty == cty.Bool:
		b := d.byte()
		if b > 1 {
			d.fail()
		}
		return cty.BoolVal(b == 1)
	case ty.IsListType() || ty.IsSetType():
		et := ty.ElementType()
		n := d.count()
		if n == 0 || d.err != nil {
			if ty.IsSetType() {
				return cty.SetValEmpty(et)
			}
			return cty.ListValEmpty(et)
		}
		elems := make([]cty.Value, n)
		for i := range elems {
			elems[i] = d.val(et, depth+1)
			if ty.IsSetType() && elems[i].IsNull() {
				d.fail()
				return cty.NullVal(ty)
			}
		}
		if ty.IsSetType() {
			return cty.SetVal(elems)
		}
		return cty.ListVal(elems)
	case ty.IsMapType():
		et := ty.ElementType()
		n := d.count()
		m := make(map[string]cty.Value, n)
		for range n {
			k := d.str()
			if _, dup := m[k]; dup || cty.NormalizeString(k) != k {
				d.fail()
				return cty.NullVal(ty)
			}
			m[k] = d.val(et, depth+1)
		}
		if len(m) == 0 {
			return cty.MapValEmpty(et)
		}
		return cty.MapVal(m)
	case ty.IsTupleType():
		ets := ty.TupleElementTypes()
		if d.count() != len(ets) {
			d.fail()
			return cty.NullVal(ty)
		}
		if len(ets) == 0 {
			return cty.EmptyTupleVal
		}
		vals := make([]cty.Value, len(ets))
		for i, et := range ets {
			vals[i] = d.val(et, depth+1)
		}
		return cty.TupleVal(vals)
	case ty.IsObjectType():
		names := attrNames(ty)
		if len(names) == 0 {
			return cty.EmptyObjectVal
		}
		m := make(map[string]cty.Value, len(names))
		for _, n := range names {
			m[n] = d.val(ty.AttributeType(n), depth+1)
		}
		return cty.ObjectVal(m)
	}
	d.fail() // a known value of the dynamic pseudo-type does not exist
	return cty.NullVal(ty)
}

func attrNames(ty cty.Type) []string {
	attrs := ty.AttributeTypes()
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
