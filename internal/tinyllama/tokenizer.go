package tinyllama

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// words are the whole words both tokenizers can produce in one token: common
// English, plus what test prompts use.
func words() []string {
	return strings.Fields(`the of and to in is it that was for on are with as he be at by this
		had not but from or have an they you we she said what all there one so up out if about
		who will can no time when story cat dog day sun`)
}

// startWords also exist without the leading space, as the first word of a
// prompt is written.
func startWords() []string { return []string{"The", "Once", "Hello", "It", "A", "In"} }

// SentencePiece types, as in sentencepiece_model.proto.
const (
	spNormal  = 1
	spUnknown = 2
	spControl = 3
	spByte    = 6
)

type spPiece struct {
	text  string
	score float32
	typ   int
}

// spmPieces lays out a Llama-style SentencePiece vocabulary: <unk>, <s>,
// </s>, the 256 byte-fallback pieces, then normal pieces. Every normal piece
// of two or more characters has all its prefixes in the vocabulary, so that
// the BPE merges of llama.cpp and sentencepiece can build it from single
// characters; longer pieces get lower scores (merged later), as in a trained
// model, and single characters come last.
func spmPieces() []spPiece {
	pieces := []spPiece{{"<unk>", 0, spUnknown}, {"<s>", 0, spControl}, {"</s>", 0, spControl}}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, spPiece{fmt.Sprintf("<0x%02X>", b), 0, spByte})
	}
	multi := map[string]bool{}
	add := func(w string) {
		r := []rune(w)
		for n := 2; n <= len(r); n++ {
			multi[string(r[:n])] = true
		}
	}
	for _, w := range words() {
		add("▁" + w)
	}
	for _, w := range startWords() {
		add("▁" + w)
	}
	chars := map[string]bool{"▁": true}
	for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()" {
		chars[string(c)] = true
	}
	for _, p := range sortedByLength(multi) {
		pieces = append(pieces, spPiece{p, -float32(len(pieces) - 259), spNormal})
	}
	for _, p := range sortedByLength(chars) {
		pieces = append(pieces, spPiece{p, -float32(len(pieces) - 259), spNormal})
	}
	return pieces
}

// sortedByLength orders a set by length in runes, then text: a prefix always
// comes before the pieces built on it.
func sortedByLength(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		li, lj := utf8.RuneCountInString(out[i]), utf8.RuneCountInString(out[j])
		if li != lj {
			return li < lj
		}
		return out[i] < out[j]
	})
	return out
}

// protobuf encoding helpers: just what a ModelProto needs.
func pbKey(b []byte, field, wire int) []byte { return binary.AppendUvarint(b, uint64(field<<3|wire)) }

func pbVarint(b []byte, field int, v int64) []byte {
	// int32 fields encode negatives as 10-byte sign-extended varints.
	return binary.AppendUvarint(pbKey(b, field, 0), uint64(v))
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(pbKey(b, field, 2), uint64(len(v)))
	return append(b, v...)
}

func pbFloat(b []byte, field int, v float32) []byte {
	return binary.LittleEndian.AppendUint32(pbKey(b, field, 5), math.Float32bits(v))
}

// sentencePieceModel serialises a sentencepiece.ModelProto with Llama's
// settings: a BPE model with byte fallback, unk/bos/eos = 0/1/2, no pad, an
// identity normalizer that adds a dummy prefix and keeps extra whitespace.
func sentencePieceModel(pieces []spPiece) []byte {
	var out []byte
	for _, p := range pieces {
		var m []byte
		m = pbBytes(m, 1, []byte(p.text))
		m = pbFloat(m, 2, p.score)
		m = pbVarint(m, 3, int64(p.typ))
		out = pbBytes(out, 1, m)
	}
	var ts []byte
	ts = pbVarint(ts, 3, 2) // model_type = BPE
	ts = pbVarint(ts, 4, int64(len(pieces)))
	ts = pbVarint(ts, 35, 1) // byte_fallback
	ts = pbVarint(ts, 40, 0) // unk_id
	ts = pbVarint(ts, 41, 1) // bos_id
	ts = pbVarint(ts, 42, 2) // eos_id
	ts = pbVarint(ts, 43, -1)
	ts = pbBytes(ts, 45, []byte("<unk>"))
	ts = pbBytes(ts, 46, []byte("<s>"))
	ts = pbBytes(ts, 47, []byte("</s>"))
	out = pbBytes(out, 2, ts)
	var ns []byte
	ns = pbBytes(ns, 1, []byte("identity"))
	ns = pbVarint(ns, 3, 1) // add_dummy_prefix
	ns = pbVarint(ns, 4, 0) // remove_extra_whitespaces
	ns = pbVarint(ns, 5, 1) // escape_whitespaces
	return pbBytes(out, 3, ns)
}

// byteLevelAlphabet is GPT-2's bytes_to_unicode: printable bytes map to
// themselves, the rest to U+0100 onwards. The order (printable first) is
// also GPT-2's token-id order for the byte tokens.
func byteLevelAlphabet() (order []byte, char [256]rune) {
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			order, char[b] = append(order, byte(b)), rune(b)
		}
	}
	for b := 0; b < 256; b++ {
		if !printable(b) {
			order, char[b] = append(order, byte(b)), rune(256+n)
			n++
		}
	}
	return order, char
}

// bpeSpecials are the added tokens of the BPE tokenizer, Llama 3's names.
func bpeSpecials() []string { return []string{"<|begin_of_text|>", "<|end_of_text|>"} }

// bpeVocab builds a GPT-2 style byte-level BPE: the 256 byte tokens, then one
// token per merge. Each word (with "Ġ", the space byte, in front, and a few
// without) is built by chained merges from its first character.
func bpeVocab() (tokens []string, merges [][2]string) {
	order, char := byteLevelAlphabet()
	for _, b := range order {
		tokens = append(tokens, string(char[b]))
	}
	enc := func(s string) string {
		var sb strings.Builder
		for i := 0; i < len(s); i++ {
			sb.WriteRune(char[s[i]])
		}
		return sb.String()
	}
	results := map[string]bool{}
	for _, w := range words() {
		r := []rune(enc(" " + w))
		for n := 2; n <= len(r); n++ {
			results[string(r[:n])] = true
		}
	}
	for _, w := range startWords() {
		r := []rune(enc(w))
		for n := 2; n <= len(r); n++ {
			results[string(r[:n])] = true
		}
	}
	for _, res := range sortedByLength(results) {
		r := []rune(res)
		merges = append(merges, [2]string{string(r[:len(r)-1]), string(r[len(r)-1:])})
		tokens = append(tokens, res)
	}
	return tokens, merges
}

// tokenizerJSON renders a Hugging Face tokenizer.json for the BPE
// vocabulary, with the vocabulary in id order (json.Marshal of a map would
// sort it by text).
func tokenizerJSON(tokens []string, merges [][2]string) ([]byte, error) {
	str := func(s string) string {
		var b bytes.Buffer
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		_ = e.Encode(s) // a string always encodes
		return strings.TrimSuffix(b.String(), "\n")
	}
	var b bytes.Buffer
	b.WriteString(`{"version":"1.0","truncation":null,"padding":null,"added_tokens":[`)
	specials := bpeSpecials()
	for i, s := range specials {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"content":%s,"single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}`,
			len(tokens)+i, str(s))
	}
	bos := str(specials[0])
	fmt.Fprintf(&b, `],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},`+
		`"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":%s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}}],`+
		`"pair":[{"SpecialToken":{"id":%s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":%s,"type_id":1}},{"Sequence":{"id":"B","type_id":1}}],`+
		`"special_tokens":{%s:{"id":%s,"ids":[%d],"tokens":[%s]}}},`+
		`"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},`+
		`"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,`+
		`"fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":{`,
		bos, bos, bos, bos, bos, len(tokens), bos)
	for i, t := range tokens {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d", str(t), i)
	}
	b.WriteString(`},"merges":[`)
	for i, m := range merges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(str(m[0] + " " + m[1]))
	}
	b.WriteString("]}}\n")
	// Round-trip through the standard decoder: the hand-built text must be
	// valid JSON before anyone else reads it.
	var check any
	if err := json.Unmarshal(b.Bytes(), &check); err != nil {
		return nil, fmt.Errorf("tinyllama: built an invalid tokenizer.json: %w", err)
	}
	return b.Bytes(), nil
}
