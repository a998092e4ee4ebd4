package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/internal/s3test"
	"github.com/cogumi/cogumi/internal/units"
)

// Deduplication rows (issue 21): versions of a checkpoint or a dataset that
// share most of their bytes, pushed and pulled through the remote cache's
// chunked blobs, against versitygw on 127.0.0.1. The checkpoint is
// TinyLlama-shaped (22 layers, bf16) with its widths scaled so that it has
// about e.dedupSize bytes (-dedup-size 2.2GB: TinyLlama's own 2048/5632
// widths); tensors hold random bytes, so compression plays no part and the
// bytes moved are the chunks'.

// tensor is one tensor of a generated checkpoint.
type tensor struct {
	name  string
	bytes int64
	layer int // -1 outside the decoder layers
}

// llamaShape returns the tensors of a Llama checkpoint of about size bytes
// (bf16): TinyLlama's shape (hidden 2048, MLP 5632, 4 KV heads of 32, vocab
// 32000, 22 layers) with the widths scaled by sqrt(size / 2.2 GB).
func llamaShape(size int64) []tensor {
	f := math.Sqrt(float64(size) / 2.2e9)
	round := func(x float64, m int64) int64 { return max(m, int64(x/float64(m)+0.5)*m) }
	hidden, mlp, vocab := round(2048*f, 64), round(5632*f, 64), round(32000*f, 64)
	kv := hidden / 8
	ts := []tensor{{"model.embed_tokens.weight", vocab * hidden * 2, -1}}
	for l := range 22 {
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, t := range []struct {
			n    string
			rows int64
			cols int64
		}{{"input_layernorm.weight", 1, hidden}, {"self_attn.q_proj.weight", hidden, hidden},
			{"self_attn.k_proj.weight", kv, hidden}, {"self_attn.v_proj.weight", kv, hidden},
			{"self_attn.o_proj.weight", hidden, hidden}, {"post_attention_layernorm.weight", 1, hidden},
			{"mlp.gate_proj.weight", mlp, hidden}, {"mlp.up_proj.weight", mlp, hidden}, {"mlp.down_proj.weight", hidden, mlp}} {
			ts = append(ts, tensor{p + t.n, t.rows * t.cols * 2, l})
		}
	}
	return append(ts, tensor{"model.norm.weight", hidden * 2, -1}, tensor{"lm_head.weight", vocab * hidden * 2, -1})
}

// writeCheckpoint writes a safetensors file of ts whose tensor contents are
// seeded by version(t): two files share a tensor's bytes exactly when they
// give it the same version.
func writeCheckpoint(path string, ts []tensor, version func(tensor) int) (cache.Digest, int64, error) {
	var hdr strings.Builder
	hdr.WriteString("{")
	var off int64
	for i, t := range ts {
		if i > 0 {
			hdr.WriteString(",")
		}
		fmt.Fprintf(&hdr, `%q:{"dtype":"BF16","shape":[%d],"data_offsets":[%d,%d]}`, t.name, t.bytes/2, off, off+t.bytes)
		off += t.bytes
	}
	hdr.WriteString("}")
	f, err := os.Create(path)
	if err != nil {
		return cache.Digest{}, 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 4<<20)
	_ = binary.Write(w, binary.LittleEndian, uint64(hdr.Len()))
	w.WriteString(hdr.String())
	buf := make([]byte, 4<<20)
	for _, t := range ts {
		var seed [32]byte
		copy(seed[:], t.name)
		binary.LittleEndian.PutUint64(seed[24:], uint64(version(t)))
		r := rand.NewChaCha8(seed)
		for left := t.bytes; left > 0; {
			n := min(left, int64(len(buf)))
			_, _ = r.Read(buf[:n])
			w.Write(buf[:n])
			left -= n
		}
	}
	if err := w.Flush(); err != nil {
		return cache.Digest{}, 0, err
	}
	if err := f.Close(); err != nil {
		return cache.Digest{}, 0, err
	}
	d, n, err := cache.DigestFile(path)
	return d, n, err
}

// writeJSONL writes rows of a synthetic dataset (seeded by row number)
// until the file holds at least size bytes.
func writeJSONL(path string, size int64) (cache.Digest, int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return cache.Digest{}, 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 4<<20)
	var n int64
	text := make([]byte, 600)
	for i := 0; n < size; i++ {
		r := rand.New(rand.NewPCG(uint64(i), 21))
		k := 200 + r.IntN(400)
		for j := range text[:k] {
			if c := r.IntN(32); c < 26 {
				text[j] = 'a' + byte(c)
			} else {
				text[j] = ' '
			}
		}
		m, _ := fmt.Fprintf(w, "{\"id\":%d,\"text\":%q}\n", i, text[:k])
		n += int64(m)
	}
	if err := w.Flush(); err != nil {
		return cache.Digest{}, 0, err
	}
	return cache.DigestFile(path)
}

// blobFile is a generated file and its digest.
type blobFile struct {
	path string
	d    cache.Digest
	size int64
}

// dedupEnv is one dedup comparison's server and helper invocation.
type dedupEnv struct {
	*env
	srv   *s3test.Server
	creds []string
}

// s3blob returns the argv of one helper run.
func (x *dedupEnv) s3blob(op, prefix string, f blobFile, extra ...string) []string {
	argv := []string{x.s3blobBin, op, "-endpoint", x.srv.Endpoint, "-bucket", x.srv.Bucket, "-prefix", prefix,
		"-digest", f.d.String(), "-size", fmt.Sprint(f.size)}
	if op == "put" {
		argv = append(argv, "-file", f.path)
	}
	return append(argv, extra...)
}

// run runs the helper once, untimed or timed, and returns its counters.
func (x *dedupEnv) run(ctx context.Context, argv []string) (sample, map[string]int64, error) {
	stats := filepath.Join(x.tmp, "dedup-stats.json")
	_ = os.Remove(stats)
	s, err := measure(ctx, x.tmp, x.creds, append(argv, "-stats", stats)...)
	if err != nil {
		return s, nil, err
	}
	b, err := os.ReadFile(stats)
	if err != nil {
		return s, nil, err
	}
	var m map[string]int64
	return s, m, json.Unmarshal(b, &m)
}

func pct(a, b int64) float64 { return 100 * float64(a) / float64(b) }

// dedupRows measures the goals of issue 21.
func (e *env) dedupRows(ctx context.Context) ([]row, error) {
	gw, err := s3test.Binary()
	if err != nil {
		return nil, fmt.Errorf("%v; install it with: %s", err, s3test.InstallCommand)
	}
	srv, err := s3test.Launch(gw, filepath.Join(e.tmp, "s3-dedup"))
	if srv != nil {
		defer srv.Stop()
	}
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Join(e.tmp, "s3-dedup"))
	x := &dedupEnv{env: e, srv: srv,
		creds: []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + srv.Region}}
	dir := filepath.Join(e.tmp, "dedup")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ts := llamaShape(e.dedupSize)
	fmt.Fprintf(os.Stderr, "writing TinyLlama-shaped checkpoints of about %s\n", units.FormatBytes(e.dedupSize))
	ckpt := func(name string, version func(tensor) int) (blobFile, error) {
		p := filepath.Join(dir, name+".safetensors")
		d, n, err := writeCheckpoint(p, ts, version)
		return blobFile{p, d, n}, err
	}
	base, err := ckpt("base", func(tensor) int { return 0 })
	if err != nil {
		return nil, err
	}
	var rows []row
	// Three edits of a file the bucket and the other machine already have.
	jsonl := func() (blobFile, blobFile, error) {
		p1, p2 := filepath.Join(dir, "v1.jsonl"), filepath.Join(dir, "v2.jsonl")
		d1, n1, err := writeJSONL(p1, e.dedupSize)
		if err != nil {
			return blobFile{}, blobFile{}, err
		}
		d2, n2, err := writeJSONL(p2, n1+n1/20)
		return blobFile{p1, d1, n1}, blobFile{p2, d2, n2}, err
	}
	for i, c := range []struct {
		name string
		make func() (blobFile, blobFile, error)
	}{
		{"fine-tune changing 2 of 22 layers", func() (blobFile, blobFile, error) {
			v2, err := ckpt("finetune", func(t tensor) int { return b2i(t.layer == 3 || t.layer == 17) })
			return base, v2, err
		}},
		{"LoRA merge of q/v projections", func() (blobFile, blobFile, error) {
			v2, err := ckpt("lora", func(t tensor) int {
				return b2i(strings.Contains(t.name, "q_proj") || strings.Contains(t.name, "v_proj"))
			})
			return base, v2, err
		}},
		{"JSONL dataset grown by 5%", jsonl},
	} {
		v1, v2, err := c.make()
		if err != nil {
			return rows, err
		}
		r, err := x.editRows(ctx, fmt.Sprintf("edit%d", i), c.name, v1, v2)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	r, err := x.historyRows(ctx, ckpt)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	r, err = x.noSharedRows(ctx, ckpt)
	return append(rows, r...), err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// editRows pushes v1 then (timed) v2 from machine A, pulls v1 then (timed)
// v2 into machine B's cache, and reports the bytes moved.
func (x *dedupEnv) editRows(ctx context.Context, prefix, name string, v1, v2 blobFile) ([]row, error) {
	cacheB := filepath.Join(x.tmp, "dedup-cacheB")
	defer os.RemoveAll(cacheB)
	fmt.Fprintf(os.Stderr, "%s: %s then %s\n", name, units.FormatBytes(v1.size), units.FormatBytes(v2.size))
	if _, _, err := x.run(ctx, x.s3blob("put", prefix, v1)); err != nil {
		return nil, err
	}
	push, st, err := x.run(ctx, x.s3blob("put", prefix, v2))
	if err != nil {
		return nil, err
	}
	if _, _, err := x.run(ctx, x.s3blob("get", prefix, v1, "-cache", cacheB)); err != nil {
		return nil, err
	}
	pull, sp, err := x.run(ctx, x.s3blob("get", prefix, v2, "-cache", cacheB))
	if err != nil {
		return nil, err
	}
	bench := fmt.Sprintf("dedup: %s (%s)", name, units.FormatBytes(v2.size))
	return []row{
		summarize(bench, "cogumi push of the new version", []sample{push}, fmt.Sprintf(
			"uploaded %s of chunks = %.1f%% of the file (today 100%%); %d chunks new, %d already in the bucket; %s on the wire in %d requests",
			units.FormatBytes(st["ChunkBytesUp"]), pct(st["ChunkBytesUp"], v2.size), st["ChunksUp"], st["ChunksSkipped"],
			units.FormatBytes(st["BytesUp"]), st["Requests"])),
		summarize(bench, "cogumi pull on a machine with the old version", []sample{pull}, fmt.Sprintf(
			"downloaded %s of chunks = %.1f%% of the file (today 100%%); %d chunks copied from the local cache; %s on the wire",
			units.FormatBytes(sp["ChunkBytesDown"]), pct(sp["ChunkBytesDown"], v2.size), sp["ChunksLocal"], units.FormatBytes(sp["BytesDown"]))),
	}, nil
}

// historyRows pushes 10 successive versions of the checkpoint, each
// touching 2 layers, and compares the bucket's bytes with one version's.
func (x *dedupEnv) historyRows(ctx context.Context, ckpt func(string, func(tensor) int) (blobFile, error)) ([]row, error) {
	changed := map[int]int{} // layer -> the version that last changed it
	var one int64
	var total sample
	for v := range 10 {
		if v > 0 {
			changed[(v*7)%22], changed[(v*13+5)%22] = v, v
		}
		f, err := ckpt(fmt.Sprintf("hist%d", v), func(t tensor) int { return changed[t.layer] })
		if err != nil {
			return nil, err
		}
		one = f.size
		s, _, err := x.run(ctx, x.s3blob("put", "history", f))
		if err != nil {
			return nil, err
		}
		total.wall += s.wall
		total.cpu += s.cpu
		total.rssKiB = max(total.rssKiB, s.rssKiB)
		_ = os.Remove(f.path)
	}
	_, du, err := x.run(ctx, []string{x.s3blobBin, "du", "-endpoint", x.srv.Endpoint, "-bucket", x.srv.Bucket, "-prefix", "history", "-digest", cache.Digest{}.String()})
	if err != nil {
		return nil, err
	}
	return []row{summarize(fmt.Sprintf("dedup: 10 versions of a %s checkpoint, 2 layers changed each", units.FormatBytes(one)),
		"cogumi push of each version (times summed)", []sample{total}, fmt.Sprintf(
			"the bucket holds %s in %d objects = %.2fx one version (today 10x)", units.FormatBytes(du["bytes"]), du["objects"], float64(du["bytes"])/float64(one)))}, nil
}

// noSharedRows compares a push and a full pull of a checkpoint that shares
// nothing with the bucket (a new AWQ output), chunked and whole (today).
func (x *dedupEnv) noSharedRows(ctx context.Context, ckpt func(string, func(tensor) int) (blobFile, error)) ([]row, error) {
	f, err := ckpt("awq", func(tensor) int { return 99 })
	if err != nil {
		return nil, err
	}
	if err := warm(f.path); err != nil {
		return nil, err
	}
	cacheB := filepath.Join(x.tmp, "dedup-pull")
	defer os.RemoveAll(cacheB)
	tools := []tool{{name: "cogumi push, whole blob (before chunking)"}, {name: "cogumi push, chunked"}}
	for i := range tools {
		whole := i == 0
		tools[i].dir, tools[i].env = x.tmp, x.creds
		tools[i].prep = func(rep int) error {
			var extra []string
			if whole {
				extra = append(extra, "-whole")
			}
			tools[i].argv = x.s3blob("put", fmt.Sprintf("fresh-%v-%d", whole, rep), f, extra...)
			return nil
		}
	}
	pushes, err := compareArgv(ctx, x.reps, tools)
	if err != nil {
		return nil, err
	}
	get := func(whole bool) tool {
		t := tool{name: "cogumi pull into an empty cache, chunked", dir: x.tmp, env: x.creds,
			argv: x.s3blob("get", fmt.Sprintf("fresh-%v-0", whole), f, "-cache", cacheB),
			prep: func(int) error { return os.RemoveAll(cacheB) }}
		if whole {
			t.name = "cogumi pull into an empty cache, whole blob (before chunking)"
			t.argv = append(t.argv, "-whole")
		}
		return t
	}
	pulls, err := compare(ctx, x.reps, []tool{get(true), get(false)})
	if err != nil {
		return nil, err
	}
	bench := fmt.Sprintf("dedup: a %s checkpoint sharing no bytes with the bucket (S3 on 127.0.0.1)", units.FormatBytes(f.size))
	note := func(ss []sample) string { return fmt.Sprintf("%.0f MB/s at best", mbps(f.size, best(ss))) }
	return []row{
		summarize(bench, tools[0].name, pushes[0], note(pushes[0])),
		summarize(bench, tools[1].name, pushes[1], note(pushes[1])),
		summarize(bench, "cogumi pull into an empty cache, whole blob (before chunking)", pulls[0], note(pulls[0])),
		summarize(bench, "cogumi pull into an empty cache, chunked", pulls[1], note(pulls[1])),
	}, nil
}

// compareArgv is compare for tools whose prep rewrites their own argv in
// the slice: compare copies each tool before prep, so it would run the old
// argv.
func compareArgv(ctx context.Context, reps int, tools []tool) ([][]sample, error) {
	out := make([][]sample, len(tools))
	for rep := range reps {
		long := false
		for k := range tools {
			i := (k + rep) % len(tools)
			if err := tools[i].prep(rep); err != nil {
				return nil, err
			}
			s, err := measure(ctx, tools[i].dir, tools[i].env, tools[i].argv...)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tools[i].name, err)
			}
			out[i] = append(out[i], s)
			long = long || s.wall > longRun
		}
		if long {
			break
		}
	}
	return out, nil
}
