package s3

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ in, bucket, prefix, err string }{
		{"s3://team-artifacts/cogumi", "team-artifacts", "cogumi", ""},
		{"s3://team-artifacts", "team-artifacts", "", ""},
		{"s3://team-artifacts/", "team-artifacts", "", ""},
		{"s3://b-1.x/a/b/c/", "b-1.x", "a/b/c", ""},
		{"s3://bucket/été", "bucket", "été", ""},
		{"https://bucket/x", "", "", "want s3://"},
		{"s3://Bucket/x", "", "", "bucket"},
		{"s3://ab/x", "", "", "bucket"},
		{"s3:///x", "", "", "bucket"},
		{"s3://bucket/a//b", "", "", "empty"},
		{"s3://bucket/a/../b", "", "", ".."},
		{"s3://bucket/a?x=1", "", "", "query"},
		{"bucket/prefix", "", "", "want s3://"},
	} {
		b, p, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) = %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v", tc.in, b, p, err)
		}
	}
}

// TestCredentialsInURL: a secret pasted into a URL is refused without being
// repeated in the error.
func TestCredentialsInURL(t *testing.T) {
	const secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
	_, err := Open(context.Background(), Config{URL: "s3://AKIA:" + secret + "@bucket/p"})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("URL with credentials: %v", err)
	}
	_, err = Open(context.Background(), Config{URL: "s3://bucket/p", Endpoint: "https://AKIA:" + secret + "@host"})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("endpoint with credentials: %v", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, host string
		secure   bool
		bad      bool
	}{
		{"", "s3.amazonaws.com", true, false},
		{"https://s3.example.internal", "s3.example.internal", true, false},
		{"https://s3.example.internal/", "s3.example.internal", true, false},
		{"http://127.0.0.1:7070", "127.0.0.1:7070", false, false},
		{"127.0.0.1:7070", "", false, true},
		{"ftp://host", "", false, true},
		{"https://host/bucket", "", false, true},
		{"https://", "", false, true},
	} {
		host, secure, err := parseEndpoint(tc.in)
		if tc.bad != (err != nil) || !tc.bad && (host != tc.host || secure != tc.secure) {
			t.Errorf("parseEndpoint(%q) = %q, %v, %v", tc.in, host, secure, err)
		}
	}
}

// TestOpenIsLazy: Open makes no request, even to a server that is not
// there, and the store names itself for messages.
func TestOpenIsLazy(t *testing.T) {
	start := time.Now()
	s, err := Open(context.Background(), Config{URL: "s3://bucket/pre/fix", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > time.Second || s.Stats().Requests != 0 {
		t.Errorf("Open took %v and made %d requests", time.Since(start), s.Stats().Requests)
	}
	if got, want := s.String(), "s3://bucket/pre/fix at http://127.0.0.1:1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := s.blobKey([32]byte{1}); !strings.HasPrefix(got, "pre/fix/cas/01000000") || len(got) != len("pre/fix/cas/")+64 {
		t.Errorf("blobKey = %q", got)
	}
}
