package checkpoint

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the llama.cpp tables below
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// llama.cpp's data, copied from the version cogumi's tests run (see each
// file's header for its provenance). Updating llama.cpp means updating them.
var (
	//go:embed llamacpp/chktxt.txt
	chkTxt string // the converter's check text, byte for byte
	//go:embed llamacpp/pre_hashes.tsv
	preHashes string
	//go:embed llamacpp/pre_names.txt
	preNames string
)

// UnknownPreTokenizerError is returned for a byte-level BPE tokenizer whose
// pre-tokenizer llama.cpp would not recognise. llama.cpp's converter
// refuses such a tokenizer, because a GGUF naming the wrong pre-tokenizer
// loads silently and splits text differently from the checkpoint.
type UnknownPreTokenizerError struct {
	Digest       string // sha256 of the check text's ids; "" when they could not be computed
	Reason       string // why they could not be, when Digest is ""
	PreTokenizer string // the pre_tokenizer object, compact JSON
}

func (e *UnknownPreTokenizerError) Error() string {
	var why string
	if e.Digest != "" {
		why = "the digest of its token ids for llama.cpp's check text is " + e.Digest +
			", which llama.cpp's converter does not list (get_vocab_base_pre)"
	} else {
		why = "cogumi cannot compute its token ids for llama.cpp's check text: " + e.Reason
	}
	return fmt.Sprintf("the BPE pre-tokenizer %s is not one llama.cpp knows: %s; "+
		"llama.cpp would split text differently from the checkpoint's tokenizer. "+
		"If it splits text as one of llama.cpp's pre-tokenizers does, name that one with the gguf rule's "+
		"tokenizer_pre attribute (for example tokenizer_pre = \"llama-bpe\" for Llama 3's, \"gpt-2\" for GPT-2's)",
		e.PreTokenizer, why)
}

// LlamaCppPre returns tokenizer.ggml.pre for a byte-level BPE tokenizer,
// identified as llama.cpp's converter identifies it: the sha256 of
// str(ids), ids being the tokenizer's encoding of the converter's check
// text with special tokens, looked up in the converter's table.
//
// A digest the table lacks still names a pre-tokenizer when the
// tokenizer's normalizer, pre-tokenizer and ignore_merges are exactly those
// of GPT-2 ("gpt-2") or Llama 3 ("llama-bpe"): llama.cpp then splits text
// as the tokenizer does whatever its vocabulary, which is what small
// tokenizers trained with those pre-tokenizers (cogumi's test models)
// need. Anything else is an *UnknownPreTokenizerError.
func (t *HFTokenizer) LlamaCppPre() (string, error) {
	unknown := &UnknownPreTokenizerError{PreTokenizer: compactJSON(t.PreTokenizer)}
	enc, err := NewEncoder(t)
	if err != nil {
		unknown.Reason = err.Error()
	} else {
		unknown.Digest = CheckDigest(enc.Encode(chkTxt, true))
		if pre, ok := lookupPreDigest(unknown.Digest); ok {
			return pre, nil
		}
	}
	if pre, ok := t.knownLayout(); ok {
		return pre, nil
	}
	return "", unknown
}

// CheckDigest is how the converter fingerprints a tokenization: the sha256
// of Python's str() of the list of ids.
func CheckDigest(ids []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(id))
	}
	b.WriteByte(']')
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// CheckText returns llama.cpp's check text.
func CheckText() string { return chkTxt }

// lookupPreDigest finds a digest in the converter's table. The converter
// tests its digests with one if after another, so the last match wins.
func lookupPreDigest(digest string) (string, bool) {
	pre, found := "", false
	for line := range strings.SplitSeq(preHashes, "\n") {
		fields := strings.Split(line, "\t")
		if len(fields) >= 2 && fields[0] == digest {
			pre, found = fields[1], true
		}
	}
	return pre, found
}

// KnownLlamaCppPre reports whether llama.cpp loads a GGUF whose
// tokenizer.ggml.pre is name; it refuses any other.
func KnownLlamaCppPre(name string) bool {
	for line := range strings.SplitSeq(preNames, "\n") {
		if line == name && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// llama3Split is Llama 3's split pattern, as its tokenizer.json writes it.
const llama3Split = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// knownLayout recognises the normalizer, pre-tokenizer and ignore_merges of
// GPT-2 and Llama 3, compared as JSON values with the flags that change
// nothing (trim_offsets) left out.
func (t *HFTokenizer) knownLayout() (string, bool) {
	if !isNull(t.Normalizer) {
		return "", false
	}
	var pre any
	if json.Unmarshal(t.PreTokenizer, &pre) != nil {
		return "", false
	}
	dropTrimOffsets(pre)
	gpt2 := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}
	llama3 := map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": llama3Split}, "behavior": "Isolated", "invert": false},
		map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
	}}
	switch {
	case !t.IgnoreMerges && jsonEqual(pre, gpt2):
		return "gpt-2", true
	case t.IgnoreMerges && jsonEqual(pre, llama3):
		return "llama-bpe", true
	}
	return "", false
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// dropTrimOffsets removes trim_offsets from every ByteLevel object: it
// moves offsets, never ids.
func dropTrimOffsets(v any) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "trim_offsets")
		for _, x := range v {
			dropTrimOffsets(x)
		}
	case []any:
		for _, x := range v {
			dropTrimOffsets(x)
		}
	}
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// compactJSON renders a component for a message: compact, and cut short
// when long.
func compactJSON(raw json.RawMessage) string {
	if isNull(raw) {
		return "null"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return "(invalid JSON)"
	}
	s := strings.ReplaceAll(b.String(), `\u003c`, "<") // readable, as written
	if r := []rune(s); len(r) > 400 {
		s = string(r[:400]) + "..."
	}
	return s
}
