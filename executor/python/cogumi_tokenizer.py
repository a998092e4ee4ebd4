"""The tokenizers of the Llama family, token for token as Hugging Face
tokenizers encodes (transformers' AutoTokenizer, add_special_tokens aside).

A checkpoint's tokenizer is one of:

- tokenizer.json with a BPE model, byte-level (Llama-3, 3.1, 3.2: a Split
  regex and a ByteLevel pre-tokenizer, ignore_merges) or SentencePiece-style
  (Llama-2, TinyLlama, Mistral: a Prepend/Replace normalizer or a Metaspace
  pre-tokenizer, byte fallback). This is what transformers loads when the
  file is there, so it is preferred to tokenizer.model.
- tokenizer.model alone: a SentencePiece model, read with Debian's
  python3-sentencepiece, as transformers' LlamaTokenizer reads it.

In both, the added tokens written in the text (special tokens such as
<|eot_id|> or </s>) are split out first and become their own ids; the text
between them is encoded on its own. A module that a tokenizer needs and
that is missing (regex for \\p{L} patterns, sentencepiece) is an error
naming the Debian package: there is no approximate fallback.
"""

import heapq
import json
import os
import re
import unicodedata


class TokenizerError(ValueError):
    pass


def _need(module, package):
    try:
        return __import__(module)
    except ImportError:
        raise TokenizerError("this tokenizer needs the Python module %r: apt-get install %s" % (module, package)) from None


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: byte -> the character standing for it."""
    order = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = list(order)
    n = 0
    for b in range(256):
        if b not in order:
            order.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(order, map(chr, chars)))


# ByteLevel's own split when use_regex is true (GPT-2's pattern).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def load(d, config):
    """The tokenizer of the checkpoint directory d (config is its
    config.json)."""
    tj, tm = os.path.join(d, "tokenizer.json"), os.path.join(d, "tokenizer.model")
    tc = {}
    if os.path.exists(os.path.join(d, "tokenizer_config.json")):
        with open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8") as f:
            tc = json.load(f)
    if os.path.exists(tj):
        with open(tj, encoding="utf-8") as f:
            return JSONTokenizer(json.load(f), tc, config, tj)
    if os.path.exists(tm):
        return SentencePieceTokenizer(tm, tc, config)
    raise TokenizerError("%s: no tokenizer.json or tokenizer.model" % d)


def _token_text(v):
    """A tokenizer_config token: a string or an AddedToken {"content": ...}."""
    if isinstance(v, dict):
        return v.get("content")
    return v if isinstance(v, str) else None


class AddedTokens:
    """Splits text on added tokens, leftmost-longest as tokenizers'
    AddedVocabulary does, honouring lstrip and rstrip."""

    def __init__(self, tokens):
        # tokens: [(content, id, lstrip, rstrip)]
        tokens = sorted({t[0]: t for t in tokens if t[0]}.values(), key=lambda t: -len(t[0]))
        self.ids = [t[1] for t in tokens]
        parts = []
        for content, _, lstrip, rstrip in tokens:
            parts.append("(%s%s%s)" % (r"\s*" if lstrip else "", re.escape(content), r"\s*" if rstrip else ""))
        self.pattern = re.compile("|".join(parts)) if parts else None

    def split(self, text):
        """[(start, segment, None) or (start, text, id)] in order, without
        empty segments."""
        if self.pattern is None:
            return [(0, text, None)] if text else []
        out, at = [], 0
        for m in self.pattern.finditer(text):
            if m.start() > at:
                out.append((at, text[at:m.start()], None))
            out.append((m.start(), m.group(0), self.ids[m.lastindex - 1]))
            at = m.end()
        if at < len(text):
            out.append((at, text[at:], None))
        return out


class Tokenizer:
    """What the runtime uses: encode(text) without special tokens, and bos,
    the id put first when the tokenizer adds special tokens (None when it
    adds none)."""

    bos = None
    added = AddedTokens([])

    def encode(self, text):
        out = []
        for start, seg, tid in self.added.split(text):
            if tid is not None:
                out.append(tid)
            else:
                out.extend(self._encode_segment(seg, start))
        return out

    def _encode_segment(self, text, start):
        raise NotImplementedError


# ---------------------------------------------------------- tokenizer.json


class JSONTokenizer(Tokenizer):
    """A tokenizers tokenizer.json with a BPE model."""

    def __init__(self, tok, tc, config, path):
        self.path = path
        model = tok.get("model") or {}
        if model.get("type") != "BPE":
            raise TokenizerError("%s: tokenizer model %r is not supported (BPE only: the Llama family's)" % (path, model.get("type")))
        for k in ("continuing_subword_prefix", "end_of_word_suffix"):
            if model.get(k):
                raise TokenizerError("%s: BPE %s is not supported" % (path, k))
        if model.get("dropout"):
            raise TokenizerError("%s: BPE dropout %r is not supported" % (path, model["dropout"]))
        self.vocab = model.get("vocab") or {}
        self.ranks = {}
        for i, m in enumerate(model.get("merges") or []):
            pair = tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)
            if len(pair) != 2 or pair[0] + pair[1] not in self.vocab:
                raise TokenizerError("%s: bad merge %r" % (path, m))
            self.ranks.setdefault(pair, i)
        self.ignore_merges = bool(model.get("ignore_merges"))
        self.byte_fallback = bool(model.get("byte_fallback"))
        self.fuse_unk = bool(model.get("fuse_unk"))
        self.unk = self.vocab.get(model.get("unk_token")) if model.get("unk_token") is not None else None
        self.normalizers = _steps(tok.get("normalizer"), path, "normalizer")
        self.pre_tokenizers = _steps(tok.get("pre_tokenizer"), path, "pre_tokenizer")
        for n in self.normalizers:
            _check_normalizer(n, path)
        self.splits = [self._pre_tokenizer(p) for p in self.pre_tokenizers]
        added = []
        for a in tok.get("added_tokens") or []:
            added.append((a.get("content"), a["id"], bool(a.get("lstrip")), bool(a.get("rstrip"))))
        self.added = AddedTokens(added)
        self.cache = {}
        self.bos = _bos(tok, tc, config, {a[0]: a[1] for a in added} | self.vocab)

    def _pre_tokenizer(self, p):
        """A function from a piece (and whether it starts the text) to its
        pieces."""
        kind = p.get("type")
        if kind == "ByteLevel":
            byte_char = bytes_to_unicode()
            split = None
            # Without merges every character is a symbol of its own and no
            # whole piece is looked up: the split cannot change the ids.
            if p.get("use_regex", True) and (self.ranks or self.ignore_merges):
                split = _need("regex", "python3-regex").compile(GPT2_PATTERN)
            prefix = bool(p.get("add_prefix_space"))

            def byte_level(s, first):
                if prefix and not s.startswith(" "):
                    s = " " + s
                pieces = split.findall(s) if split is not None else [s]
                return ["".join(byte_char[b] for b in x.encode("utf-8")) for x in pieces if x]
            return byte_level
        if kind == "Split":
            pat = p.get("pattern") or {}
            if "Regex" in pat:
                rx = _need("regex", "python3-regex").compile(pat["Regex"])
            elif "String" in pat:
                rx = re.compile(re.escape(pat["String"]))
            else:
                raise TokenizerError("%s: Split pattern %r is not supported" % (self.path, pat))
            behavior, invert = p.get("behavior"), bool(p.get("invert"))
            if behavior not in ("Isolated", "Removed") or invert:
                raise TokenizerError("%s: Split behavior %r (invert %r) is not supported (Isolated, Removed)" % (self.path, behavior, invert))

            def split(s, first):
                out, at = [], 0
                for m in rx.finditer(s):
                    if m.start() == m.end():
                        continue
                    if m.start() > at:
                        out.append(s[at:m.start()])
                    if behavior == "Isolated":
                        out.append(m.group(0))
                    at = m.end()
                if at < len(s):
                    out.append(s[at:])
                return out
            return split
        if kind == "Metaspace":
            rep = p.get("replacement", "\u2581")
            scheme = p.get("prepend_scheme")
            if scheme is None:  # tokenizers before 0.14: add_prefix_space
                scheme = "always" if p.get("add_prefix_space", True) else "never"
            if scheme not in ("always", "first", "never"):
                raise TokenizerError("%s: Metaspace prepend_scheme %r is not supported" % (self.path, scheme))
            split_on = p.get("split", True)

            def metaspace(s, first):
                s = s.replace(" ", rep)
                if (scheme == "always" or scheme == "first" and first) and not s.startswith(rep):
                    s = rep + s
                if not split_on:
                    return [s]
                out, at = [], 0  # MergedWithNext: each replacement starts a piece
                for i, c in enumerate(s):
                    if c == rep and i > at:
                        out.append(s[at:i])
                        at = i
                out.append(s[at:])
                return out
            return metaspace
        raise TokenizerError("%s: pre_tokenizer %r is not supported (ByteLevel, Split, Metaspace)" % (self.path, kind))

    def _encode_segment(self, text, start):
        for n in self.normalizers:
            text = _normalize(n, text)
        # Each piece with whether it starts the text (Metaspace's "first").
        pieces = [(text, start == 0)] if text else []
        for f in self.splits:
            pieces = [(q, first and k == 0) for x, first in pieces for k, q in enumerate(f(x, first)) if q]
        out = []
        for piece, _ in pieces:
            ids = self.cache.get(piece)
            if ids is None:
                ids = self._bpe(piece)
                if len(piece) < 256:
                    self.cache[piece] = ids
            out.extend(ids)
        return out

    def _symbols(self, word):
        """The word's characters as vocabulary entries: byte pieces for a
        character not in the vocabulary (byte_fallback), else unk."""
        out = []
        for c in word:
            if c in self.vocab:
                out.append(c)
                continue
            if self.byte_fallback:
                bs = ["<0x%02X>" % b for b in c.encode("utf-8")]
                if all(b in self.vocab for b in bs):
                    out.extend(bs)
                    continue
            if self.unk is None:
                raise TokenizerError("%s: %r is not in the vocabulary and there is no unk_token" % (self.path, c))
            if self.fuse_unk and out and out[-1] is None:
                continue
            out.append(None)  # unk: never merged
        return out

    def _bpe(self, word):
        """tokenizers' BPE merge loop: the lowest-ranked pair first, the
        leftmost on ties, until no pair of neighbours has a merge."""
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        syms = self._symbols(word)
        n = len(syms)
        nxt, prv = list(range(1, n + 1)), list(range(-1, n - 1))
        heap = []
        for i in range(n - 1):
            r = self.ranks.get((syms[i], syms[i + 1]))
            if r is not None:
                heap.append((r, i))
        heapq.heapify(heap)
        while heap:
            r, i = heapq.heappop(heap)
            j = nxt[i] if syms[i] is not False else n
            if j >= n or syms[j] is False or self.ranks.get((syms[i], syms[j])) != r:
                continue  # stale: one side was merged since
            syms[i] = syms[i] + syms[j]
            syms[j] = False
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                pr = self.ranks.get((syms[prv[i]], syms[i]))
                if pr is not None:
                    heapq.heappush(heap, (pr, prv[i]))
            if nxt[i] < n:
                nr = self.ranks.get((syms[i], syms[nxt[i]]))
                if nr is not None:
                    heapq.heappush(heap, (nr, i))
        return [self.unk if s is None else self.vocab[s] for s in syms if s is not False]


def _steps(v, path, what):
    if not v:
        return []
    if v.get("type") == "Sequence":
        key = "normalizers" if what == "normalizer" else "pretokenizers"
        return [s for x in v.get(key) or [] for s in _steps(x, path, what)]
    return [v]


_FORMS = {"NFC", "NFD", "NFKC", "NFKD"}


def _check_normalizer(n, path):
    kind = n.get("type")
    if kind in _FORMS or kind in ("Prepend", "Lowercase"):
        return
    if kind == "Replace" and "String" in (n.get("pattern") or {}):
        return
    raise TokenizerError("%s: normalizer %r is not supported (Prepend, Replace with a String, NFC/NFD/NFKC/NFKD, Lowercase)"
                         % (path, kind if kind != "Replace" else n))


def _normalize(n, s):
    kind = n.get("type")
    if kind in _FORMS:
        return unicodedata.normalize(kind, s)
    if kind == "Lowercase":
        return s.lower()
    if kind == "Prepend":
        return n["prepend"] + s if s else s
    return s.replace(n["pattern"]["String"], n["content"])


def _bos(tok, tc, config, ids):
    """The BOS id when encoding adds special tokens, as transformers decides:
    tokenizer_config's add_bos_token when given (LlamaTokenizerFast rewrites
    its post-processor from it), else the post-processor's template. A
    tokenizer.json without a post-processor (cogumi's older tiny models)
    takes config.json's bos_token_id."""
    if isinstance(tc.get("add_bos_token"), bool):
        if not tc["add_bos_token"]:
            return None
        name = _token_text(tc.get("bos_token"))
        if name in ids:
            return ids[name]
        return _config_bos(config)
    pp = tok.get("post_processor")
    if not pp:
        return _config_bos(config)
    for p in ([pp] if pp.get("type") != "Sequence" else pp.get("processors") or []):
        if p.get("type") == "TemplateProcessing":
            single = p.get("single") or []
            first = single[0] if single else {}
            if "SpecialToken" in first:
                name = first["SpecialToken"]["id"]
                special = (p.get("special_tokens") or {}).get(name) or {}
                return (special.get("ids") or [ids.get(name)])[0]
            return None
        if p.get("type") in ("BertProcessing", "RobertaProcessing"):
            return ids.get((p.get("cls") or [None])[0])
    return None


def _config_bos(config):
    bos = config.get("bos_token_id")
    if isinstance(bos, list):
        bos = bos[0] if bos else None
    return bos


# --------------------------------------------------------- tokenizer.model


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece tokenizer.model as transformers' LlamaTokenizer uses
    it: added tokens (the model's control and unknown pieces, and
    tokenizer_config's added_tokens_decoder) split out first, every other
    segment encoded by SentencePiece. With "legacy": false in
    tokenizer_config, only a segment at the start of the text gets the
    dummy prefix."""

    def __init__(self, path, tc, config):
        spm = _need("sentencepiece", "python3-sentencepiece")
        self.path = path
        try:
            self.sp = spm.SentencePieceProcessor(model_file=path)
        except (OSError, RuntimeError) as e:
            raise TokenizerError("%s: not a SentencePiece model: %s" % (path, e)) from None
        sp = self.sp
        added = [(sp.IdToPiece(i), i, False, False) for i in range(sp.GetPieceSize()) if sp.IsControl(i) or sp.IsUnknown(i)]
        for k, v in (tc.get("added_tokens_decoder") or {}).items():
            added.append((_token_text(v), int(k), bool(v.get("lstrip")), bool(v.get("rstrip"))))
        added_json = os.path.join(os.path.dirname(path), "added_tokens.json")
        if os.path.exists(added_json):
            with open(added_json, encoding="utf-8") as f:
                added += [(k, int(v), False, False) for k, v in json.load(f).items()]
        self.added = AddedTokens(added)
        self.legacy = tc.get("legacy") is not False
        ids = {a[0]: a[1] for a in added}
        self.bos = None
        if tc.get("add_bos_token", True):
            name = _token_text(tc.get("bos_token"))
            self.bos = ids.get(name, sp.bos_id() if sp.bos_id() >= 0 else _config_bos(config))

    def _encode_segment(self, text, start):
        if self.legacy or start == 0:
            return self.sp.encode(text)
        # transformers' non-legacy trick: encode after the unknown piece,
        # so that no dummy prefix is added, and drop the unknown's ids.
        unk = self.sp.IdToPiece(self.sp.unk_id())
        skip = len(self.sp.encode(unk))
        return self.sp.encode(unk + text)[skip:]
