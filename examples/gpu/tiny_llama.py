"""A tiny Llama-style decoder and a byte-level tokenizer, in torch only.

The modules carry the names of transformers' LlamaForCausalLM, so the state
dict has the Hugging Face tensor names (model.layers.0.self_attn.q_proj.weight,
...). Imported by train.py; in a BUILD file it is one of the train target's
srcs, so a change to it retrains.
"""

import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

BOS_TEXT, EOS_TEXT = "<|begin_of_text|>", "<|end_of_text|>"
DEFAULT_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
    "vocab_size": 258, "bos_token_id": 256, "eos_token_id": 257,
    "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "rope_scaling": None, "attention_bias": False, "mlp_bias": False,
    "tie_word_embeddings": False, "initializer_range": 0.02, "torch_dtype": "float32",
    "use_cache": True,
}


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, the
    rest for U+0100 onwards; the order is GPT-2's token-id order."""
    order = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = list(order)
    n = 0
    for b in range(256):
        if b not in order:
            order.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(order, map(chr, chars)))


class ByteTokenizer:
    """Text as raw bytes: every byte is one token of a byte-level BPE
    vocabulary. Without merges this is exactly what such a tokenizer gives;
    a base's merged tokens are valid ids that this script just never emits."""

    def __init__(self, byte_ids, bos, eos):
        self.byte_ids, self.bos, self.eos = byte_ids, bos, eos
        self.table = torch.tensor(byte_ids, dtype=torch.long)

    @classmethod
    def default(cls):
        order = list(bytes_to_unicode())
        ids = [0] * 256
        for i, b in enumerate(order):
            ids[b] = i
        return cls(ids, 256, 257)

    @classmethod
    def from_checkpoint(cls, d, config):
        path = os.path.join(d, "tokenizer.json")
        if not os.path.exists(path):
            raise ValueError("base checkpoint %s has no tokenizer.json; this example trains byte-level BPE models only" % d)
        with open(path, encoding="utf-8") as f:
            tok = json.load(f)
        model = tok.get("model") or {}
        if model.get("type") != "BPE" or (tok.get("pre_tokenizer") or {}).get("type") not in ("ByteLevel", "Sequence"):
            raise ValueError("%s: not a byte-level BPE tokenizer; this example supports only those" % path)
        vocab = model.get("vocab") or {}
        ids = []
        for b, ch in bytes_to_unicode().items():
            if ch not in vocab:
                raise ValueError("%s: the vocabulary lacks the byte token %r" % (path, ch))
            ids.append((b, vocab[ch]))
        ids.sort()
        eos = config.get("eos_token_id")
        eos = eos[0] if isinstance(eos, list) else eos
        if config.get("bos_token_id") is None or eos is None:
            raise ValueError("%s: config.json needs bos_token_id and eos_token_id" % d)
        return cls([i for _, i in ids], config["bos_token_id"], eos)

    def encode(self, text):
        raw = torch.tensor(list(text.encode("utf-8")), dtype=torch.long)
        return self.table[raw] if len(raw) else raw


def write_tokenizer(out, config):
    """A Hugging Face tokenizer.json for the default byte-level vocabulary
    (256 byte tokens, no merges, two special tokens), as llama.cpp and
    cogumi's checkpoint reader expect for a BPE model."""
    alphabet = bytes_to_unicode()
    vocab = {ch: i for i, ch in enumerate(alphabet.values())}
    def special(s):
        return {"content": s, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [dict(special(BOS_TEXT), id=256), dict(special(EOS_TEXT), id=257)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": BOS_TEXT, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": BOS_TEXT, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": BOS_TEXT, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {BOS_TEXT: {"id": BOS_TEXT, "ids": [256], "tokens": [BOS_TEXT]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    write_json(os.path.join(out, "tokenizer.json"), tok)
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "add_bos_token": True, "add_eos_token": False, "bos_token": BOS_TEXT, "eos_token": EOS_TEXT,
        "clean_up_tokenization_spaces": False, "model_max_length": config["max_position_embeddings"],
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": {"256": special(BOS_TEXT), "257": special(EOS_TEXT)},
    })




class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        # In float32 as transformers does, whatever the weights' dtype.
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
        self.head_dim = c.get("head_dim") or c["hidden_size"] // self.heads
        h = c["hidden_size"]
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        # Grouped-query attention: kv head j serves query heads j*rep..j*rep+rep-1.
        rep = self.heads // self.kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim) + mask
        y = F.softmax(att.float(), dim=-1).to(q.dtype) @ v
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

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


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.model = LlamaModel(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        if c.get("tie_word_embeddings"):
            self.lm_head.weight = self.model.embed_tokens.weight
        head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def init_weights(self, generator):
        std = self.config["initializer_range"]
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                continue
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=generator) * std)

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


