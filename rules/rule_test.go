package rules

import "testing"

// Every attribute of every rule must decide whether it is part of the
// action key: forgetting an input of the key serves stale artifacts.
func TestSchemasDecideKey(t *testing.T) {
	reg := Default()
	for _, kind := range reg.Kinds() {
		rule, _ := reg.Lookup(kind)
		seen := make(map[string]bool)
		for _, a := range rule.Schema().Attrs {
			if a.Key == keyUndecided {
				t.Errorf("rule %s: attribute %q does not say whether it is in the action key (set Key: InKey or NotInKey)", kind, a.Name)
			}
			if a.Input != NoInput && a.Key != InKey {
				t.Errorf("rule %s: input attribute %q must be in the key", kind, a.Name)
			}
			if seen[a.Name] {
				t.Errorf("rule %s: attribute %q declared twice", kind, a.Name)
			}
			seen[a.Name] = true
			if a.Doc == "" {
				t.Errorf("rule %s: attribute %q has no Doc", kind, a.Name)
			}
		}
		if rule.Version() == "" {
			t.Errorf("rule %s has no version", kind)
		}
	}
}

func TestCheckOutPath(t *testing.T) {
	for _, p := range []string{"a.txt", "dir/b.bin", "x"} {
		if err := CheckOutPath(p); err != nil {
			t.Errorf("CheckOutPath(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "/abs", "../up", "a/../b", "./a", "a//b", ".", ".."} {
		if err := CheckOutPath(p); err == nil {
			t.Errorf("CheckOutPath(%q) = nil, want an error", p)
		}
	}
}

func TestDefaultKindsUnique(t *testing.T) {
	if _, err := NewRegistry(defaultRules()...); err != nil {
		t.Fatal(err) // a kind registered twice would replace the other
	}
}
