package tinyllama

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/safetensors"
)

func TestWriteOpensAsCheckpoint(t *testing.T) {
	for _, o := range []Options{
		{DType: safetensors.BF16, Tokenizer: SentencePiece},
		{DType: safetensors.F16, Tokenizer: BPE, Shards: 2},
		{DType: safetensors.F32, Tokenizer: SentencePiece, Shards: 2, TieEmbeddings: true},
	} {
		t.Run(string(o.DType)+"-"+string(o.Tokenizer), func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, o); err != nil {
				t.Fatal(err)
			}
			m, err := checkpoint.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			c := m.Config()
			if c.HiddenSize != 256 || c.IntermediateSize != 512 || c.NumHiddenLayers != 2 || c.NumAttentionHeads != 4 ||
				c.NumKeyValueHeads != 2 || c.MaxPositionEmbeddings != 256 || c.VocabSize < 300 || c.VocabSize > 512 {
				t.Errorf("config = %+v", c)
			}
			wantTensors := 21
			if o.TieEmbeddings {
				wantTensors = 20
			}
			if got := len(m.Tensors()); got != wantTensors {
				t.Errorf("%d tensors, want %d", got, wantTensors)
			}
			for _, tr := range m.Tensors() {
				if tr.DType != o.DType {
					t.Errorf("tensor %s has dtype %s", tr.Name, tr.DType)
				}
			}
			if want := o.Shards == 2; m.Sharded() != want || (want && len(m.Shards()) != 2) {
				t.Errorf("Sharded() = %v, shards %v", m.Sharded(), m.Shards())
			}
			wantKind := checkpoint.SentencePieceTokenizer
			if o.Tokenizer == BPE {
				wantKind = checkpoint.BPETokenizer
			}
			if m.TokenizerKind() != wantKind {
				t.Errorf("TokenizerKind() = %v", m.TokenizerKind())
			}
			// Weights: mean about 0, std about 0.02.
			row := make([]float32, c.HiddenSize)
			var sum, sq float64
			const rows = 64
			for r := range rows {
				if err := m.ReadF32Rows("model.layers.1.mlp.up_proj.weight", r, 1, row); err != nil {
					t.Fatal(err)
				}
				for _, v := range row {
					sum += float64(v)
					sq += float64(v) * float64(v)
				}
			}
			n := float64(rows * c.HiddenSize)
			if mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n)); math.Abs(mean) > 0.002 || math.Abs(std-0.02) > 0.002 {
				t.Errorf("up_proj mean %v std %v, want about 0 and 0.02", mean, std)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := Write(d, Options{Seed: 7, Shards: 2, Tokenizer: BPE}); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(c, Options{Seed: 7, Tokenizer: BPE}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(a)
	for _, e := range entries {
		x, _ := os.ReadFile(filepath.Join(a, e.Name()))
		y, _ := os.ReadFile(filepath.Join(b, e.Name()))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs", e.Name())
		}
	}
	// Sharding moves tensors between files but never changes their values.
	ms, err := checkpoint.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	m1, err := checkpoint.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	for _, tr := range m1.Tensors() {
		x, _ := m1.Bytes(tr.Name)
		y, _ := ms.Bytes(tr.Name)
		if !bytes.Equal(x, y) {
			t.Errorf("tensor %s differs between 1 and 2 shards", tr.Name)
		}
	}
}

func TestSentencePieceParsesBack(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	sp, err := checkpoint.ReadSentencePiece(filepath.Join(dir, "tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	want := spmPieces()
	if len(sp.Pieces) != len(want) {
		t.Fatalf("%d pieces, want %d", len(sp.Pieces), len(want))
	}
	for i, p := range sp.Pieces {
		if p.Piece != want[i].text || p.Score != want[i].score || int(p.Type) != want[i].typ {
			t.Fatalf("piece %d = %+v, want %+v", i, p, want[i])
		}
	}
	if sp.ModelType != 2 || !sp.ByteFallback || sp.UnkID != 0 || sp.BOSID != 1 || sp.EOSID != 2 || sp.PadID != -1 ||
		!sp.AddDummyPrefix || sp.RemoveExtraWhitespaces {
		t.Errorf("trainer/normalizer settings = %+v", sp)
	}
	if sp.Pieces[3].Piece != "<0x00>" || sp.Pieces[258].Piece != "<0xFF>" || sp.Pieces[258].Type != checkpoint.TokenByte {
		t.Errorf("byte pieces misplaced: %+v %+v", sp.Pieces[3], sp.Pieces[258])
	}
	// llama.cpp's SentencePiece tokenizer merges the adjacent pair whose
	// concatenation is a piece with the highest score, until none is left.
	scores := map[string]float32{}
	for _, p := range sp.Pieces {
		if p.Type == checkpoint.TokenNormal {
			scores[p.Piece] = p.Score
		}
	}
	var syms []string
	for _, r := range "▁" + strings.ReplaceAll("Hello the cat was here", " ", "▁") {
		syms = append(syms, string(r))
	}
	for {
		best := -1
		for i := 0; i+1 < len(syms); i++ {
			if s, ok := scores[syms[i]+syms[i+1]]; ok && (best < 0 || s > scores[syms[best]+syms[best+1]]) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		syms = slices.Replace(syms, best, best+2, syms[best]+syms[best+1])
	}
	if want := []string{"▁Hello", "▁the", "▁cat", "▁was", "▁he", "r", "e"}; !slices.Equal(syms, want) {
		t.Errorf("tokenized as %q, want %q", syms, want)
	}
}

func TestBPETokenizer(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, Options{Tokenizer: BPE}); err != nil {
		t.Fatal(err)
	}
	tok, err := checkpoint.ReadTokenizerJSON(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if pre, err := tok.LlamaCppPre(); pre != "gpt-2" || err != nil {
		t.Errorf("LlamaCppPre() = %q, %v", pre, err)
	}
	if tok.Vocab["!"] != 0 || tok.Vocab["Ġ"] != 220 || tok.Vocab["Ġthe"] == 0 {
		t.Errorf("byte tokens not in GPT-2 order: ! %d, Ġ %d", tok.Vocab["!"], tok.Vocab["Ġ"])
	}
	if len(tok.AddedTokens) != 2 || tok.AddedTokens[0].Content != "<|begin_of_text|>" || !tok.AddedTokens[0].Special {
		t.Errorf("added tokens = %+v", tok.AddedTokens)
	}
	// Every merge joins two existing tokens into an existing token.
	rank := map[[2]string]int{}
	for i, m := range tok.Merges {
		l, r, ok := strings.Cut(m, " ")
		_, okl := tok.Vocab[l]
		_, okr := tok.Vocab[r]
		_, okm := tok.Vocab[l+r]
		if !ok || !okl || !okr || !okm {
			t.Fatalf("merge %d %q is not between vocabulary tokens", i, m)
		}
		rank[[2]string{l, r}] = i
	}
	// GPT-2 pre-tokenization of "Hello the cat" gives "Hello", " the", " cat";
	// byte-level BPE applies the lowest-ranked merge first.
	var got []string
	for _, word := range regexp.MustCompile(` ?[A-Za-z]+`).FindAllString("Hello the cat", -1) {
		var syms []string
		for _, r := range strings.ReplaceAll(word, " ", "Ġ") {
			syms = append(syms, string(r))
		}
		for {
			best, bestRank := -1, 0
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := rank[[2]string{syms[i], syms[i+1]}]; ok && (best < 0 || r < bestRank) {
					best, bestRank = i, r
				}
			}
			if best < 0 {
				break
			}
			syms = slices.Replace(syms, best, best+2, syms[best]+syms[best+1])
		}
		got = append(got, syms...)
	}
	if want := []string{"Hello", "Ġthe", "Ġcat"}; !slices.Equal(got, want) {
		t.Errorf("tokenized as %q, want %q", got, want)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{{DType: "I8"}, {Tokenizer: "wordpiece"}, {Shards: 3}, {Heads: 3}} {
		if err := Write(t.TempDir(), o); err == nil {
			t.Errorf("Write(%+v) succeeded", o)
		}
	}
}
