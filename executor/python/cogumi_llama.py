"""A Llama decoder, its tokenizer and checkpoint loading, in torch only.

Shared by cogumi's calibrate and eval rules (cogumi_calibrate.py,
cogumi_eval.py). The forward pass is transformers' LlamaForCausalLM:
RMSNorm (in float32), rotary embeddings (rope_theta, "llama3" rope
scaling), grouped-query attention with a causal mask and a SwiGLU MLP. The
linears are torch.nn.Linear modules with Hugging Face names, so forward
hooks see every projection's input.

Checkpoints are read with cogumi_safetensors (Debian's torch 1.13 cannot
read safetensors). The tokenizer is the checkpoint's tokenizer.json
(byte-level BPE, with or without merges); SentencePiece tokenizer.model is
refused with a clear error.
"""

import json
import math
import os
import platform
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

import cogumi_safetensors

# Sequences longer than this are cut to their first MAX_TOKENS tokens (and
# to the model's max_position_embeddings): the llama.cpp runner uses the same
# bound, so both runtimes score the same tokens.
MAX_TOKENS = 4096


class CheckpointError(ValueError):
    pass


def find_checkpoint(path):
    """The directory holding config.json: path itself, or the single
    directory below it that does (an artifact holding one checkpoint)."""
    if os.path.isfile(os.path.join(path, "config.json")):
        return path
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        if "config.json" in files:
            found.append(root)
    if len(found) != 1:
        raise CheckpointError("%s: expected one checkpoint directory (with config.json), found %d" % (path, len(found)))
    return found[0]


def load_config(d):
    with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
        c = json.load(f)
    if c.get("model_type") not in ("llama", "mistral"):
        raise CheckpointError("%s/config.json: model_type %r is not supported; cogumi's torch runtime runs Llama models (model_type \"llama\")"
                              % (d, c.get("model_type")))
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        if not isinstance(c.get(k), int):
            raise CheckpointError("%s/config.json: %s is missing" % (d, k))
    c.setdefault("num_key_value_heads", c["num_attention_heads"])
    c.setdefault("rms_norm_eps", 1e-6)
    c.setdefault("rope_theta", 10000.0)
    c.setdefault("max_position_embeddings", 2048)
    if not c.get("head_dim"):
        c["head_dim"] = c["hidden_size"] // c["num_attention_heads"]
    if c.get("hidden_act", "silu") != "silu":
        raise CheckpointError("%s/config.json: hidden_act %r is not supported (silu only)" % (d, c.get("hidden_act")))
    return c


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


# GPT-2's pre-tokenizer pattern, written for Python's re (no \p classes):
# [^\W\d_] is a letter, \d a digit.
_GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+"""


class Tokenizer:
    """Byte-level BPE as tokenizers' BPE model applies it: the text is split
    by the pre-tokenizer's pattern, each piece becomes its bytes' characters
    and the merges are applied in rank order. Without merges (cogumi's tiny
    models) every byte is one token and the split does not matter."""

    def __init__(self, vocab, merges, split, ignore_merges, bos):
        self.vocab = vocab
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.split = split
        self.ignore_merges = ignore_merges
        self.bos = bos
        self.byte_char = bytes_to_unicode()
        self.byte_ids = [vocab.get(self.byte_char[b]) for b in range(256)]
        self.cache = {}

    @classmethod
    def from_checkpoint(cls, d, config):
        path = os.path.join(d, "tokenizer.json")
        if not os.path.exists(path):
            if os.path.exists(os.path.join(d, "tokenizer.model")):
                raise CheckpointError("%s: only a SentencePiece tokenizer.model; cogumi's torch runtime reads byte-level BPE "
                                      "tokenizer.json files: convert the checkpoint with a gguf target and evaluate the GGUF" % d)
            raise CheckpointError("%s: no tokenizer.json" % d)
        with open(path, encoding="utf-8") as f:
            tok = json.load(f)
        model = tok.get("model") or {}
        if model.get("type") != "BPE":
            raise CheckpointError("%s: tokenizer model %r is not supported (byte-level BPE only)" % (path, model.get("type")))
        pre = tok.get("pre_tokenizer") or {}
        pres = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
        if not any(p.get("type") == "ByteLevel" for p in pres):
            raise CheckpointError("%s: not a byte-level BPE tokenizer (no ByteLevel pre-tokenizer)" % path)
        vocab = model.get("vocab") or {}
        merges = []
        for m in model.get("merges") or []:
            pair = tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)
            if len(pair) != 2:
                raise CheckpointError("%s: bad merge %r" % (path, m))
            merges.append(pair)
        split = None
        for p in pres:
            if p.get("type") == "Split" and isinstance(p.get("pattern"), dict) and "Regex" in p["pattern"]:
                split = _compile(p["pattern"]["Regex"])
        if split is None:
            split = re.compile(_GPT2_SPLIT)
        bos = config.get("bos_token_id")
        if isinstance(bos, list):
            bos = bos[0] if bos else None
        t = cls(vocab, merges, split, bool(model.get("ignore_merges")), bos)
        missing = [b for b in range(256) if t.byte_ids[b] is None]
        if missing and not merges:
            raise CheckpointError("%s: the vocabulary lacks the byte token %r" % (path, t.byte_char[missing[0]]))
        return t

    def encode(self, text):
        """Token ids of text, without special tokens."""
        if not self.ranks:
            return [self.byte_ids[b] for b in text.encode("utf-8")]
        out = []
        for piece in self.split.findall(text):
            if not piece:
                continue
            word = "".join(self.byte_char[b] for b in piece.encode("utf-8"))
            ids = self.cache.get(word)
            if ids is None:
                ids = self._bpe(word)
                self.cache[word] = ids
            out.extend(ids)
        return out

    def _bpe(self, word):
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        parts = list(word)
        while len(parts) > 1:
            best, rank = None, None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (rank is None or r < rank):
                    best, rank = i, r
            if best is None:
                break
            a, b = parts[best], parts[best + 1]
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = []
        for p in parts:
            if p not in self.vocab:
                raise CheckpointError("tokenizer: %r is not in the vocabulary" % p)
            ids.append(self.vocab[p])
        return ids


def _compile(pattern):
    """A tokenizers Split regex. It needs the regex module (\\p{L} classes);
    without it, GPT-2's pattern written for re splits the same way for
    ASCII text."""
    try:
        import regex
        return regex.compile(pattern)
    except ImportError:
        return re.compile(_GPT2_SPLIT)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        h, bias = c["hidden_size"], bool(c.get("attention_bias"))
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=bias)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads  # kv head j serves query heads j*rep .. j*rep+rep-1
        if rep > 1:
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim) + mask
        y = F.softmax(att.float(), dim=-1).to(q.dtype) @ v
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i, bias = c["hidden_size"], c["intermediate_size"], bool(c.get("mlp_bias"))
        self.gate_proj = nn.Linear(h, i, bias=bias)
        self.up_proj = nn.Linear(h, i, bias=bias)
        self.down_proj = nn.Linear(i, h, bias=bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


def inv_frequencies(c):
    hd = c["head_dim"]
    inv = 1.0 / (float(c["rope_theta"]) ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    rs = c.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default")) if rs else "default"
    if kind == "default":
        return inv
    if kind != "llama3":
        raise CheckpointError("config.json: rope_scaling type %r is not supported (default or llama3)" % kind)
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.model = LlamaModel(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        if c.get("tie_word_embeddings"):
            self.lm_head.weight = self.model.embed_tokens.weight
        self.register_buffer("inv_freq", inv_frequencies(c), persistent=False)

    def forward(self, ids):
        t = ids.shape[1]
        pos = torch.arange(t, device=ids.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((t, t), float("-inf"), device=ids.device).triu(1)
        x = self.model.embed_tokens(ids)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


def load_model(path, device):
    """The checkpoint under path as a float32 LlamaForCausalLM on device,
    its config and its tokenizer."""
    d = find_checkpoint(path)
    c = load_config(d)
    tok = Tokenizer.from_checkpoint(d, c)
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    model = LlamaForCausalLM(c)
    state = model.state_dict()
    if c.get("tie_word_embeddings"):
        state.pop("lm_head.weight", None)
    seen = set()
    for shard in shards:
        p = os.path.join(d, shard)
        if not os.path.exists(p):
            raise CheckpointError("%s: weights file %s is missing" % (d, shard))
        for name, t in cogumi_safetensors.load_file(p).items():
            if name not in state:
                if name == "lm_head.weight" and c.get("tie_word_embeddings"):
                    continue
                raise CheckpointError("%s: unexpected tensor %s for a Llama model" % (p, name))
            if tuple(t.shape) != tuple(state[name].shape):
                raise CheckpointError("%s: %s has shape %s, config.json says %s" % (p, name, list(t.shape), list(state[name].shape)))
            with torch.no_grad():
                state[name].copy_(t.float())
            seen.add(name)
    missing = sorted(set(state) - seen)
    if missing:
        raise CheckpointError("%s: tensors missing from the weights: %s" % (d, ", ".join(missing[:5])))
    model.eval()
    return model.to(device), c, tok


def pick_device():
    """cuda:0 when cogumi gave the action a GPU and torch sees it, else the
    CPU; and the device's description for reports."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "") != "" and torch.cuda.is_available():
        return torch.device("cuda:0"), "cuda:0 (%s)" % torch.cuda.get_device_name(0)
    return torch.device("cpu"), "cpu (%s)" % (platform.processor() or platform.machine())


def torch_version():
    return str(torch.__version__).split("+")[0]


def read_texts(path):
    """The texts cogumi extracted from a dataset: one JSON object per line
    with a "text" field."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line)["text"])
    return out


def encode_example(tok, c, text):
    """Token ids of one example as both runtimes score it: BOS first, cut to
    the context bound."""
    ids = ([tok.bos] if tok.bos is not None else []) + tok.encode(text)
    return ids[:min(MAX_TOKENS, int(c["max_position_embeddings"]))]
