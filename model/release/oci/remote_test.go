package oci

import (
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	for _, c := range []struct {
		ref   string
		plain bool
		err   string
	}{
		{"127.0.0.1:5000/models/tiny:v1", true, ""},
		{"localhost:5000/m:v1", true, ""},
		{"[::1]:5000/m:v1", true, ""},
		{"ghcr.io/acme/tiny:v1", false, ""},
		{"registry.example.com:5000/a/b@sha256:" + strings.Repeat("a", 64), false, ""},
		{"no-registry", false, "want REGISTRY/REPOSITORY:TAG"},
		{"ghcr.io/UPPER:v1", false, "want REGISTRY/REPOSITORY:TAG"},
	} {
		r, err := Open(c.ref, Options{})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Open(%q): %v, want %q", c.ref, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", c.ref, err)
			continue
		}
		if r.PlainHTTP != c.plain {
			t.Errorf("Open(%q): plain HTTP %v, want %v", c.ref, r.PlainHTTP, c.plain)
		}
	}
	t.Setenv("EMPTY_AUTH", "")
	if _, err := Open("ghcr.io/a/b:v1", Options{AuthEnv: "EMPTY_AUTH"}); err == nil || !strings.Contains(err.Error(), "$EMPTY_AUTH is empty or unset") {
		t.Errorf("an empty --registry-auth-env: %v", err)
	}
}
