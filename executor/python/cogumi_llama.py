"""A Llama-family decoder, its tokenizer and checkpoint loading, in torch only.

Shared by cogumi's calibrate, imatrix and eval rules (cogumi_calibrate.py,
cogumi_imatrix.py, cogumi_eval.py). The forward pass is transformers' LlamaForCausalLM:
RMSNorm (in float32), rotary embeddings (rope_theta, "llama3" rope
scaling), grouped-query attention with a causal mask and a SwiGLU MLP. The
linears are torch.nn.Linear modules with Hugging Face names, so forward
hooks see every projection's input.

The same forward runs the other families cogumi supports, as transformers
runs them: Mistral (Llama's modules; its sliding window, which llama.cpp
ignores too, only matters beyond MAX_TOKENS for Mistral 7B v0.1), Qwen2
(biases on q_proj, k_proj and v_proj, none on o_proj) and Qwen3 (an RMSNorm
over head_dim, q_norm and k_norm, applied to each head of the projected
queries and keys before RoPE; attention_bias as Llama's).

Checkpoints are read with cogumi_safetensors (Debian's torch 1.13 cannot
read safetensors), straight into modules built on the meta device: no
random initialisation, no float32 copy of a 16-bit checkpoint on the host.
The model then computes in the dtype the rule asks for (float32 by
default), whatever the device. The tokenizer is cogumi_tokenizer's: every
tokenizer the Llama family ships.
"""

import json
import math
import os
import platform
import resource

import torch
import torch.nn as nn
import torch.nn.functional as F

import cogumi_safetensors
import cogumi_tokenizer

# Sequences longer than this are cut to their first MAX_TOKENS tokens (and
# to the model's max_position_embeddings): the llama.cpp runner uses the same
# bound, so both runtimes score the same tokens.
MAX_TOKENS = 4096


# The modules are built on the meta device (shapes only, no memory, no
# random initialisation); load_model puts the checkpoint's tensors in.
META = torch.device("meta")

# The compute dtypes a rule may ask for (its dtype attribute).
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


# The families the forward runs: model_type -> architecture. cogumi's Go
# side (model/checkpoint/arch.go) describes their tensors; this list must
# name the same families.
FAMILIES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
            "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}


def load_config(d):
    with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
        c = json.load(f)
    if c.get("model_type") not in FAMILIES:
        raise CheckpointError("%s/config.json: model_type %r is not supported; cogumi's torch runtime runs %s"
                              % (d, c.get("model_type"), ", ".join("%s (model_type %s)" % (a, t) for t, a in FAMILIES.items())))
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


def load_tokenizer(d, config):
    """The checkpoint's tokenizer (cogumi_tokenizer): encode(text) and bos."""
    try:
        return cogumi_tokenizer.load(d, config)
    except cogumi_tokenizer.TokenizerError as e:
        raise CheckpointError(str(e)) from None


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, device=META))
        self.eps = eps

    def forward(self, x):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def attention_biases(c):
    """Which attention projections carry biases: (q/k/v, o). Qwen2 always
    biases q, k and v (its config has no attention_bias); Llama and Qwen3
    bias all four when attention_bias is set; Mistral never."""
    kind = c["model_type"]
    if kind == "qwen2":
        return True, False
    with_key = kind in ("llama", "qwen3") and bool(c.get("attention_bias"))
    return with_key, with_key


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        h = c["hidden_size"]
        qkv_bias, o_bias = attention_biases(c)
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=qkv_bias, device=META)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=qkv_bias, device=META)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=qkv_bias, device=META)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=o_bias, device=META)
        self.q_norm = self.k_norm = None
        if c["model_type"] == "qwen3":
            self.q_norm = RMSNorm(self.head_dim, c["rms_norm_eps"])
            self.k_norm = RMSNorm(self.head_dim, c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim)
        if self.q_norm is not None:
            # Qwen3: each head normalised over head_dim, before RoPE.
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
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
        h, i = c["hidden_size"], c["intermediate_size"]
        bias = c["model_type"] == "llama" and bool(c.get("mlp_bias"))
        self.gate_proj = nn.Linear(h, i, bias=bias, device=META)
        self.up_proj = nn.Linear(h, i, bias=bias, device=META)
        self.down_proj = nn.Linear(i, h, bias=bias, device=META)

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
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"], device=META)
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
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False, device=META)
        if c.get("tie_word_embeddings"):
            self.lm_head.weight = self.model.embed_tokens.weight
        self.register_buffer("inv_freq", inv_frequencies(c), persistent=False)

    def forward(self, ids):
        t = ids.shape[1]
        pos = torch.arange(t, device=ids.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.model.embed_tokens(ids)
        mask = torch.full((t, t), float("-inf"), device=ids.device, dtype=x.dtype).triu(1)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


def load_model(path, device, dtype="float32"):
    """The checkpoint under path as a LlamaForCausalLM computing in dtype
    (a DTYPES name) on device, its config and its tokenizer. Each tensor
    goes from the (memory-mapped) file to the device in its stored dtype
    and is cast there: the host never holds a float32 copy of a 16-bit
    checkpoint, and nothing is initialised only to be overwritten."""
    d = find_checkpoint(path)
    c = load_config(d)
    tok = load_tokenizer(d, c)
    compute = DTYPES.get(dtype)
    if compute is None:
        raise CheckpointError("dtype %r: use one of %s" % (dtype, ", ".join(DTYPES)))
    check_dtype(device, compute)
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    model = LlamaForCausalLM(c)
    want = dict(model.named_parameters())  # a tied lm_head is embed_tokens
    seen = set()
    for shard in shards:
        p = os.path.join(d, shard)
        if not os.path.exists(p):
            raise CheckpointError("%s: weights file %s is missing" % (d, shard))
        for name, t in cogumi_safetensors.load_file(p).items():
            if name not in want:
                if name == "lm_head.weight" and c.get("tie_word_embeddings"):
                    continue
                raise CheckpointError("%s: unexpected tensor %s for a %s model" % (p, name, FAMILIES[c["model_type"]]))
            if tuple(t.shape) != tuple(want[name].shape):
                raise CheckpointError("%s: %s has shape %s, config.json says %s" % (p, name, list(t.shape), list(want[name].shape)))
            if not t.is_floating_point():
                raise CheckpointError("%s: %s has dtype %s; the torch runtime reads float checkpoints" % (p, name, t.dtype))
            owner, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(owner), leaf, nn.Parameter(t.to(device).to(compute), requires_grad=False))
            seen.add(name)
    missing = sorted(set(want) - seen)
    if missing:
        raise CheckpointError("%s: tensors missing from the weights: %s" % (d, ", ".join(missing[:5])))
    if c.get("tie_word_embeddings"):
        model.lm_head.weight = model.model.embed_tokens.weight
    model.inv_freq = model.inv_freq.to(device)  # stays float32, as in transformers
    model.eval()
    return model, c, tok


def check_dtype(device, dtype):
    """A clear error where this torch cannot multiply dtype on device
    (float16 on a CPU, before torch 2.2)."""
    try:
        x = torch.ones(2, 2, dtype=dtype, device=device)
        F.linear(x, x)
    except RuntimeError as e:
        raise CheckpointError("dtype %s cannot run on %s with torch %s (%s): use bfloat16 or float32, or give the target a GPU"
                              % (str(dtype).replace("torch.", ""), device, torch_version(), e)) from None


def pick_device():
    """cuda:0 when cogumi gave the action a GPU and torch sees it, else the
    CPU; and the device's description for reports."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "") != "" and torch.cuda.is_available():
        return torch.device("cuda:0"), "cuda:0 (%s)" % torch.cuda.get_device_name(0)
    return torch.device("cpu"), "cpu (%s)" % (platform.processor() or platform.machine())


def write_facts(path, facts):
    """What a run observed (its device, its times, its peak host and GPU
    memory), for the build's log and events: never part of an artifact,
    whose key ignores the machine."""
    facts = dict(facts, peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        facts["gpu_peak_bytes"] = torch.cuda.max_memory_allocated()
    with open(path, "w", encoding="utf-8") as f:
        json.dump(facts, f)


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
