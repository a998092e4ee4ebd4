package checkpoint

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
	"golang.org/x/text/unicode/norm"
)

// Encoder turns text into token ids exactly as Hugging Face tokenizers does
// with a tokenizer.json whose model is BPE: added tokens are split out of
// the raw text first, then each remaining segment is normalized,
// pre-tokenized and encoded by BPE (merges applied by rank, leftmost
// first), and the post-processor adds the special tokens.
//
// It implements the components the Llama family's tokenizers use (the
// NFC/NFD/NFKC/NFKD, Prepend, Replace and Lowercase normalizers; the Split,
// ByteLevel and Metaspace pre-tokenizers; the TemplateProcessing and
// ByteLevel post-processors) and refuses any other with an error naming it,
// rather than encoding differently. Split patterns run on regexp2, whose
// .NET syntax accepts the look-ahead these patterns use, as Oniguruma does
// for tokenizers. Added tokens are matched on the raw text, leftmost and
// longest first; their lstrip, rstrip and single_word flags are not
// applied (no Llama-family tokenizer sets them).
type Encoder struct {
	vocab     map[string]int
	ranks     map[[2]string]int
	ignore    bool // model.ignore_merges
	fallback  bool // model.byte_fallback
	unk       int  // -1 without an unknown token
	fuseUnk   bool
	added     []AddedToken // longest content first
	normalize []normalizer
	pre       []preTokenizer
	prefix    []int // post-processor's special tokens before the sequence
	suffix    []int // and after it
}

// piece is a part of a segment during pre-tokenization; first is set on
// the part that starts at offset 0 of the whole text (Metaspace's "first"
// prepend scheme looks at it).
type piece struct {
	text  string
	first bool
}

type normalizer func(string) string

type preTokenizer func([]piece) []piece

// NewEncoder prepares t's normalizer, pre-tokenizer, model and
// post-processor. It fails on components it does not implement.
func NewEncoder(t *HFTokenizer) (*Encoder, error) {
	if t.ModelType != "BPE" {
		return nil, fmt.Errorf("model.type %q: cogumi encodes BPE models only", t.ModelType)
	}
	if len(t.extra) > 0 {
		return nil, fmt.Errorf("model sets %s, which cogumi's encoder does not implement", strings.Join(t.extra, ", "))
	}
	e := &Encoder{
		vocab: make(map[string]int, len(t.Vocab)+len(t.AddedTokens)), ranks: make(map[[2]string]int, len(t.mergePairs)),
		ignore: t.IgnoreMerges, fallback: t.ByteFallback, unk: -1, fuseUnk: t.FuseUnk,
	}
	for tok, id := range t.Vocab {
		e.vocab[tok] = id
	}
	for i, p := range t.mergePairs {
		if _, dup := e.ranks[p]; !dup {
			e.ranks[p] = i
		}
	}
	if t.UnkToken != "" {
		id, ok := t.Vocab[t.UnkToken]
		if !ok {
			return nil, fmt.Errorf("model.unk_token %q is not in the vocabulary", t.UnkToken)
		}
		e.unk = id
	}
	e.added = addedByLength(t.AddedTokens)
	var err error
	if e.normalize, err = normalizers(t.Normalizer); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	if e.pre, err = preTokenizers(t.PreTokenizer); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if e.prefix, e.suffix, err = postProcessor(t.PostProcessor); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	return e, nil
}

// addedByLength orders added tokens longest first, so that the first one
// matching at a position is the longest.
func addedByLength(added []AddedToken) []AddedToken {
	out := make([]AddedToken, 0, len(added))
	for _, a := range added {
		if a.Content != "" {
			out = append(out, a)
		}
	}
	// A stable insertion sort keeps file order among equal lengths.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j].Content) > len(out[j-1].Content); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Encode returns the ids of text; addSpecial adds the post-processor's
// special tokens, as AutoTokenizer's encode does by default.
func (e *Encoder) Encode(text string, addSpecial bool) []int {
	var ids []int
	if addSpecial {
		ids = append(ids, e.prefix...)
	}
	for off := 0; off < len(text); {
		start, a := e.nextAdded(text, off)
		if start > off {
			ids = e.encodeSegment(ids, text[off:start], off == 0)
		}
		if a == nil {
			break
		}
		ids = append(ids, a.ID)
		off = start + len(a.Content)
	}
	if addSpecial {
		ids = append(ids, e.suffix...)
	}
	return ids
}

// nextAdded finds the leftmost added token at or after off, the longest at
// that position; it returns len(text) and nil when there is none.
func (e *Encoder) nextAdded(text string, off int) (int, *AddedToken) {
	for i := off; i < len(text); i++ {
		for k := range e.added {
			if strings.HasPrefix(text[i:], e.added[k].Content) {
				return i, &e.added[k]
			}
		}
	}
	return len(text), nil
}

func (e *Encoder) encodeSegment(ids []int, seg string, first bool) []int {
	for _, n := range e.normalize {
		seg = n(seg)
	}
	pieces := []piece{{seg, first}}
	for _, p := range e.pre {
		pieces = p(pieces)
	}
	for _, p := range pieces {
		ids = e.bpe(ids, p.text)
	}
	return ids
}

// symbol is one part of a word during merging, in a doubly linked list.
type symbol struct {
	text       string
	prev, next int
	alive      bool
}

// bpe appends the ids of one pre-token: tokenizers' BPE::merge_word, which
// applies the lowest-ranked merge first and, among equal ranks, the
// leftmost.
func (e *Encoder) bpe(ids []int, word string) []int {
	if word == "" {
		return ids
	}
	if id, ok := e.vocab[word]; ok && e.ignore {
		return append(ids, id)
	}
	syms := e.symbols(word)
	q := &mergeQueue{}
	push := func(l int) {
		r := syms[l].next
		if r < 0 {
			return
		}
		if rank, ok := e.ranks[[2]string{syms[l].text, syms[r].text}]; ok {
			heap.Push(q, candidate{rank: rank, pos: l, left: syms[l].text, right: syms[r].text})
		}
	}
	for i := range syms {
		push(i)
	}
	for q.Len() > 0 {
		c := heap.Pop(q).(candidate)
		l := c.pos
		r := syms[l].next
		// A candidate is stale once either side has merged with another.
		if !syms[l].alive || syms[l].text != c.left || r < 0 || syms[r].text != c.right {
			continue
		}
		syms[l].text += syms[r].text
		syms[r].alive = false
		syms[l].next = syms[r].next
		if n := syms[r].next; n >= 0 {
			syms[n].prev = l
		}
		if p := syms[l].prev; p >= 0 {
			push(p)
		}
		push(l)
	}
	lastUnk := false
	for i := 0; i >= 0; i = syms[i].next {
		id, ok := e.vocab[syms[i].text]
		if !ok {
			// Only an unknown character without byte fallback gets here.
			if e.unk < 0 || (e.fuseUnk && lastUnk) {
				continue
			}
			id = e.unk
		}
		ids = append(ids, id)
		lastUnk = !ok
	}
	return ids
}

// symbols splits a word into characters; with byte fallback a character
// missing from the vocabulary becomes its <0xXX> byte tokens.
func (e *Encoder) symbols(word string) []symbol {
	syms := make([]symbol, 0, utf8.RuneCountInString(word))
	for _, r := range word {
		s := string(r)
		if _, ok := e.vocab[s]; !ok && e.fallback && e.hasBytes(s) {
			for i := 0; i < len(s); i++ {
				syms = append(syms, symbol{text: fmt.Sprintf("<0x%02X>", s[i])})
			}
			continue
		}
		syms = append(syms, symbol{text: s})
	}
	for i := range syms {
		syms[i].prev, syms[i].next, syms[i].alive = i-1, i+1, true
	}
	syms[len(syms)-1].next = -1
	return syms
}

// hasBytes reports whether every byte of s has its <0xXX> token; tokenizers
// falls back to the unknown token otherwise.
func (e *Encoder) hasBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := e.vocab[fmt.Sprintf("<0x%02X>", s[i])]; !ok {
			return false
		}
	}
	return true
}

type candidate struct {
	rank, pos   int
	left, right string
}

// mergeQueue orders candidates by rank, then position.
type mergeQueue []candidate

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(candidate)) }
func (q *mergeQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// component is the common shape of tokenizer.json's normalizers,
// pre-tokenizers and post-processors; each reads the fields it needs.
type component struct {
	Type string `json:"type"`
	// Sequence
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	// Prepend
	Prepend string `json:"prepend"`
	// Replace, Split
	Pattern  *pattern `json:"pattern"`
	Content  string   `json:"content"`
	Behavior string   `json:"behavior"`
	Invert   bool     `json:"invert"`
	// ByteLevel, Metaspace
	AddPrefixSpace *bool  `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"`
	Replacement    string `json:"replacement"`
	PrependScheme  string `json:"prepend_scheme"`
	Split          *bool  `json:"split"`
	// TemplateProcessing
	Single        []templateItem             `json:"single"`
	SpecialTokens map[string]templateSpecial `json:"special_tokens"`
}

type pattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// compile returns the pattern as a regular expression: a String pattern
// matches itself literally.
func (p *pattern) compile() (*regexp2.Regexp, error) {
	switch {
	case p == nil:
		return nil, errors.New("no pattern")
	case p.String != nil:
		return regexp2.Compile(regexp2.Escape(*p.String), regexp2.None)
	case p.Regex != nil:
		re, err := regexp2.Compile(*p.Regex, regexp2.None)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", *p.Regex, err)
		}
		return re, nil
	}
	return nil, errors.New("pattern has neither String nor Regex")
}

type templateItem struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

type templateSpecial struct {
	IDs []int `json:"ids"`
}

func decode(raw json.RawMessage) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func normalizers(raw json.RawMessage) ([]normalizer, error) {
	c, err := decode(raw)
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var out []normalizer
		for _, r := range c.Normalizers {
			n, err := normalizers(r)
			if err != nil {
				return nil, err
			}
			out = append(out, n...)
		}
		return out, nil
	case "NFC":
		return []normalizer{norm.NFC.String}, nil
	case "NFD":
		return []normalizer{norm.NFD.String}, nil
	case "NFKC":
		return []normalizer{norm.NFKC.String}, nil
	case "NFKD":
		return []normalizer{norm.NFKD.String}, nil
	case "Lowercase":
		return []normalizer{strings.ToLower}, nil
	case "Prepend":
		p := c.Prepend
		return []normalizer{func(s string) string {
			if s == "" {
				return s // tokenizers prepends to non-empty text only
			}
			return p + s
		}}, nil
	case "Replace":
		re, err := c.Pattern.compile()
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		content := c.Content
		return []normalizer{func(s string) string {
			out, err := re.Replace(s, content, -1, -1)
			if err != nil {
				return s // only a match timeout fails, and none is set
			}
			return out
		}}, nil
	}
	return nil, fmt.Errorf("%q is not a normalizer cogumi implements", c.Type)
}

// gpt2Pattern is what ByteLevel splits on when use_regex is set: GPT-2's
// pattern, as tokenizers writes it.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

func preTokenizers(raw json.RawMessage) ([]preTokenizer, error) {
	c, err := decode(raw)
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var out []preTokenizer
		for _, r := range c.Pretokenizers {
			p, err := preTokenizers(r)
			if err != nil {
				return nil, err
			}
			out = append(out, p...)
		}
		return out, nil
	case "Split":
		if c.Invert {
			return nil, errors.New("Split with invert is not implemented")
		}
		re, err := c.Pattern.compile()
		if err != nil {
			return nil, fmt.Errorf("Split: %w", err)
		}
		switch c.Behavior {
		case "Isolated", "Removed":
			keep := c.Behavior == "Isolated"
			return []preTokenizer{func(ps []piece) []piece { return split(ps, re, keep) }}, nil
		}
		return nil, fmt.Errorf("Split behavior %q is not implemented", c.Behavior)
	case "ByteLevel":
		return []preTokenizer{byteLevel(c.AddPrefixSpace != nil && *c.AddPrefixSpace, c.UseRegex == nil || *c.UseRegex)}, nil
	case "Metaspace":
		return metaspace(c)
	}
	return nil, fmt.Errorf("%q is not a pre-tokenizer cogumi implements", c.Type)
}

// split cuts each piece at the matches of re; the matches are pieces of
// their own when keep is set (Isolated) and dropped otherwise (Removed).
func split(ps []piece, re *regexp2.Regexp, keep bool) []piece {
	var out []piece
	for _, p := range ps {
		last := 0
		add := func(s string, at int) {
			if s != "" {
				out = append(out, piece{s, p.first && at == 0})
			}
		}
		m, _ := re.FindStringMatch(p.text)
		for m != nil {
			i, n := m.ByteRange()
			add(p.text[last:i], last)
			if keep {
				add(p.text[i:i+n], i)
			}
			last = i + n
			m, _ = re.FindNextMatch(m)
		}
		add(p.text[last:], last)
	}
	return out
}

// byteLevel is GPT-2's pre-tokenizer: an optional leading space, the GPT-2
// split, then every byte written as its printable stand-in character.
func byteLevel(addPrefixSpace, useRegex bool) preTokenizer {
	var re *regexp2.Regexp
	if useRegex {
		re = regexp2.MustCompile(gpt2Pattern, regexp2.None) // a constant pattern
	}
	alphabet := byteAlphabet()
	return func(ps []piece) []piece {
		if addPrefixSpace {
			for i := range ps {
				if !strings.HasPrefix(ps[i].text, " ") {
					ps[i].text = " " + ps[i].text
				}
			}
		}
		if re != nil {
			ps = split(ps, re, true)
		}
		for i := range ps {
			var b strings.Builder
			for _, c := range []byte(ps[i].text) {
				b.WriteRune(alphabet[c])
			}
			ps[i].text = b.String()
		}
		return ps
	}
}

// byteAlphabet is GPT-2's bytes_to_unicode: printable bytes stand for
// themselves, the others for U+0100 onwards, in byte order.
func byteAlphabet() [256]rune {
	var m [256]rune
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// metaspace replaces spaces by the replacement character, prepends one
// where the scheme says (unless the piece starts with it already), and with
// split cuts before every replacement character.
func metaspace(c *component) ([]preTokenizer, error) {
	rep := c.Replacement
	if utf8.RuneCountInString(rep) != 1 {
		return nil, fmt.Errorf("Metaspace replacement %q is not one character", rep)
	}
	scheme := c.PrependScheme
	if scheme == "" {
		// Files written before tokenizers 0.14 say add_prefix_space.
		scheme = "never"
		if c.AddPrefixSpace == nil || *c.AddPrefixSpace {
			scheme = "always"
		}
	}
	if scheme != "always" && scheme != "first" && scheme != "never" {
		return nil, fmt.Errorf("Metaspace prepend_scheme %q is not always, first or never", scheme)
	}
	doSplit := c.Split == nil || *c.Split
	return []preTokenizer{func(ps []piece) []piece {
		for i := range ps {
			s := strings.ReplaceAll(ps[i].text, " ", rep)
			if (scheme == "always" || (scheme == "first" && ps[i].first)) && !strings.HasPrefix(s, rep) {
				s = rep + s
			}
			ps[i].text = s
		}
		if !doSplit {
			return ps
		}
		// tokenizers splits MergedWithNext: every replacement character
		// starts a new piece.
		var out []piece
		for _, p := range ps {
			first := p.first
			for w := range strings.SplitSeq(strings.ReplaceAll(p.text, rep, "\x00"+rep), "\x00") {
				if w != "" {
					out = append(out, piece{w, first})
					first = false
				}
			}
		}
		return out
	}}, nil
}

// postProcessor returns the special tokens a single sequence gets before
// and after it.
func postProcessor(raw json.RawMessage) (prefix, suffix []int, err error) {
	c, err := decode(raw)
	if err != nil || c == nil {
		return nil, nil, err
	}
	switch c.Type {
	case "Sequence":
		for _, r := range c.Processors {
			p, s, err := postProcessor(r)
			if err != nil {
				return nil, nil, err
			}
			prefix, suffix = append(prefix, p...), append(suffix, s...)
		}
		return prefix, suffix, nil
	case "ByteLevel":
		return nil, nil, nil // it moves offsets only
	case "TemplateProcessing":
		seen := false
		for _, it := range c.Single {
			switch {
			case it.Sequence != nil:
				seen = true
			case it.SpecialToken != nil:
				st, ok := c.SpecialTokens[it.SpecialToken.ID]
				if !ok {
					return nil, nil, fmt.Errorf("template names %q, which special_tokens lacks", it.SpecialToken.ID)
				}
				if seen {
					suffix = append(suffix, st.IDs...)
				} else {
					prefix = append(prefix, st.IDs...)
				}
			}
		}
		return prefix, suffix, nil
	}
	return nil, nil, fmt.Errorf("%q is not a post-processor cogumi implements", c.Type)
}
