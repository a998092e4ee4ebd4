package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// verifyFixture is a cache holding three results: a plain one, one with an
// executable output that has been materialized (so its twin exists), and one
// recorded from a remote hit whose blob is not here.
type verifyFixture struct {
	c                     *Local
	plain, exec, remote   ActionKey
	plainBlob, execBlob   Digest
	plainPath, remotePath string
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	ctx := t.Context()
	c := openTestCache(t)
	f := &verifyFixture{c: c}
	put := func(name string, m Manifest, remote bool) ActionKey {
		t.Helper()
		r := &ActionResult{Key: KeyFromRecords([]string{name}), Label: "//v:" + name, Outputs: m, BlobsRemote: remote}
		if err := c.PutAction(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.Key
	}
	m := storeTree(t, c, map[string]string{"a.txt": "plain bytes", "sub/b.txt": "more bytes"})
	f.plain, f.plainBlob = put("plain", m, false), m.Files[0].Digest
	m = storeTree(t, c, map[string]string{"run.sh*": "#!/bin/sh\necho hi\n"})
	f.exec, f.execBlob = put("exec", m, false), m.Files[0].Digest
	if err := c.Materialize(m, filepath.Join(t.TempDir(), "out")); err != nil {
		t.Fatal(err)
	}
	missing := DigestBytes([]byte("only in the bucket"))
	f.remote = put("remote", Manifest{Files: []FileEntry{{Path: "r.bin", Digest: missing, Size: 18}}}, true)
	f.plainPath, f.remotePath = c.actionPath(f.plain), c.actionPath(f.remote)
	return f
}

func verifyOK(t *testing.T, c *Local) VerifyReport {
	t.Helper()
	rep, err := c.Verify()
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestVerifyCleanCache(t *testing.T) {
	ctx := t.Context()
	f := newVerifyFixture(t)
	// What killed processes leave in tmp/ is not a problem.
	if err := os.WriteFile(filepath.Join(f.c.Dir(), "tmp", "adopt-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, f.c)
	if len(rep.Problems) != 0 {
		t.Fatalf("problems in a clean cache: %v", rep.Problems)
	}
	if rep.Blobs != 3 || rep.ExecCopies != 1 || rep.Actions != 3 || rep.Temps != 1 {
		t.Errorf("report %+v: want 3 blobs, 1 executable copy, 3 action results, 1 temp file", rep)
	}
	for _, k := range []ActionKey{f.plain, f.exec, f.remote} {
		if _, err := f.c.GetAction(ctx, k); err != nil {
			t.Errorf("a good entry was removed: %v", err)
		}
	}
}

// overwrite replaces the content of a read-only cache file in place, as an
// attacker (or a disk error) would.
func overwrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyFindsAndRemoves(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tamper   func(t *testing.T, f *verifyFixture)
		want     []string // in the problems' text, one per problem
		gone     func(f *verifyFixture) []ActionKey
		blobGone func(f *verifyFixture) Digest
	}{
		{
			name: "blob bytes changed, same size",
			tamper: func(t *testing.T, f *verifyFixture) {
				overwrite(t, f.c.BlobPath(f.plainBlob), "PLAIN BYTES")
			},
			want:     []string{"blob " + "%plain%: content hashes to", `output "a.txt": blob %plainshort% was bad; removed`},
			gone:     func(f *verifyFixture) []ActionKey { return []ActionKey{f.plain} },
			blobGone: func(f *verifyFixture) Digest { return f.plainBlob },
		},
		{
			name: "blob replaced by a symlink",
			tamper: func(t *testing.T, f *verifyFixture) {
				outside := filepath.Join(t.TempDir(), "outside")
				if err := os.WriteFile(outside, []byte("plain bytes"), 0o644); err != nil {
					t.Fatal(err)
				}
				p := f.c.BlobPath(f.plainBlob)
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, p); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"blob %plain%: a symlink, not a regular file; removed", "action result %plainkey% (//v:plain): output \"a.txt\""},
			gone: func(f *verifyFixture) []ActionKey { return []ActionKey{f.plain} },
		},
		{
			name: "executable copy changed",
			tamper: func(t *testing.T, f *verifyFixture) {
				p := f.c.execPath(f.execBlob)
				if err := os.Chmod(p, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("#!/bin/sh\nrm -rf ~\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"executable copy of blob %exec%: content hashes to", `output "run.sh": executable copy of blob`},
			gone: func(f *verifyFixture) []ActionKey { return []ActionKey{f.exec} },
		},
		{
			name: "action result not JSON",
			tamper: func(t *testing.T, f *verifyFixture) {
				writeRawAction(t, f.c, f.plain, []byte("{not json"))
			},
			want: []string{"action result %plainkey%: invalid JSON"},
			gone: func(f *verifyFixture) []ActionKey { return []ActionKey{f.plain} },
		},
		{
			name: "action result with an escaping path",
			tamper: func(t *testing.T, f *verifyFixture) {
				b, err := os.ReadFile(f.plainPath)
				if err != nil {
					t.Fatal(err)
				}
				writeRawAction(t, f.c, f.plain, []byte(strings.Replace(string(b), `"a.txt"`, `"../../escape"`, 1)))
			},
			want: []string{`(//v:plain): outputs: file 1: path "../../escape": contains ".."; removed`},
			gone: func(f *verifyFixture) []ActionKey { return []ActionKey{f.plain} },
		},
		{
			name: "action result is a symlink",
			tamper: func(t *testing.T, f *verifyFixture) {
				if err := os.Remove(f.remotePath); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(f.plainPath, f.remotePath); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"action result %remotekey%: a symlink, not a regular file; removed"},
			gone: func(f *verifyFixture) []ActionKey { return []ActionKey{f.remote} },
		},
		{
			name: "strays in cas and ac",
			tamper: func(t *testing.T, f *verifyFixture) {
				for _, p := range []string{"cas/zz", "cas/ab/notablob", "ac/ab/x.json"} {
					writeFiles(t, f.c.Dir(), map[string]string{p: "?"})
				}
			},
			want: []string{"cas entry zz: not a cache entry; removed", "cas entry notablob: not a cache entry; removed", "ac entry x.json: not a cache entry; removed"},
			gone: func(f *verifyFixture) []ActionKey { return nil },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newVerifyFixture(t)
			tc.tamper(t, f)
			rep := verifyOK(t, f.c)
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.String())
				if !strings.HasPrefix(p.Path, f.c.Dir()) {
					t.Errorf("problem %v: path outside the cache", p)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(tc.want))
			}
			r := strings.NewReplacer("%plain%", f.plainBlob.String(), "%plainshort%", f.plainBlob.Short(),
				"%exec%", f.execBlob.String(), "%plainkey%", f.plain.String(), "%remotekey%", f.remote.String())
			for _, w := range tc.want {
				w = r.Replace(w)
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("no problem says %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
			gone := map[ActionKey]bool{}
			for _, k := range tc.gone(f) {
				gone[k] = true
			}
			for _, k := range []ActionKey{f.plain, f.exec, f.remote} {
				_, err := os.Lstat(f.c.actionPath(k))
				if exists := err == nil; exists == gone[k] {
					t.Errorf("action result %s: exists = %v, want %v", k.Short(), exists, !gone[k])
				}
			}
			if tc.blobGone != nil {
				if _, err := os.Lstat(f.c.BlobPath(tc.blobGone(f))); err == nil {
					t.Error("bad blob not removed")
				}
			}
			// Everything bad is gone: a second pass finds nothing.
			if rep := verifyOK(t, f.c); len(rep.Problems) != 0 {
				t.Errorf("second pass: %v", rep.Problems)
			}
		})
	}
}

func TestVerifyRemoteEntryKeptWhenItsLocalBlobIsBad(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t)
	d, err := c.PutBytes(ctx, []byte("remote bytes"))
	if err != nil {
		t.Fatal(err)
	}
	r := &ActionResult{Key: KeyFromRecords([]string{"r"}), Label: "//v:r", BlobsRemote: true,
		Outputs: Manifest{Files: []FileEntry{{Path: "r", Digest: d, Size: 12}}}}
	if err := c.PutAction(ctx, r); err != nil {
		t.Fatal(err)
	}
	overwrite(t, c.BlobPath(d), "REMOTE BYTES")
	rep := verifyOK(t, c)
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].What, "blob "+d.String()) {
		t.Fatalf("problems %v: want only the blob", rep.Problems)
	}
	if _, err := c.GetAction(ctx, r.Key); err != nil {
		t.Errorf("the remote hit's entry was removed: %v", err)
	}
}
