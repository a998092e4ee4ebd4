#!/usr/bin/env python3
"""Train LoRA adapters on a frozen Llama checkpoint: cogumi's lora rule.

Uses only torch, the standard library and cogumi_safetensors, so it runs on
Debian's torch 1.13 on a CPU and on torch 2.x with CUDA. The rule hands it a
JSON file ($COGUMI_LORA_CONFIG):

  base_dir        the checkpoint directory (config.json, safetensors, tokenizer.json)
  base_label      the base's label, recorded as base_model_name_or_path
  dataset_label   the dataset's label, for messages
  dataset         a JSONL file ("text", or chat "messages"), a .txt file, or a
                  directory of them
  rank, alpha     LoRA rank r and lora_alpha (the update is alpha/r * B A)
  target_modules  projection names: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj
  params          lr, steps, seed, batch, seq_len, device (auto, cpu, cuda)

and it writes into $COGUMI_OUT the PEFT adapter (adapter_config.json,
adapter_model.safetensors with PEFT's tensor names, F32) and metrics.json.
The rule then writes adapter.gguf from them, in Go.

The model is a self-contained Llama forward that matches transformers'
LlamaForCausalLM (RMSNorm, RoPE with rope_theta, grouped-query attention,
SwiGLU). Every base weight is frozen; each target linear gets A (r x in,
PEFT's kaiming-uniform init) and B (out x r, zeros), and only A and B train.
On a CPU the result is deterministic for a seed (same torch, same machine).
"""

import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import cogumi_safetensors as safetensors

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
DEFAULT_PARAMS = {"lr": 1e-3, "steps": 100, "seed": 0, "batch": 8, "seq_len": 64, "log_every": 10,
                  "device": "auto"}
PREFIX = "base_model.model."


def fail(msg):
    print("lora: " + msg, file=sys.stderr, flush=True)
    sys.exit(2)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------ data


def dataset_files(path):
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        fail("dataset %s does not exist" % path)
    files = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".jsonl", ".txt"))]
    if not files:
        fail("dataset %s holds no .jsonl or .txt file" % path)
    return files


def example_text(rec, where):
    """The text of a row: "text", else chat "messages" as "<role>: <content>" lines."""
    if isinstance(rec, dict):
        if isinstance(rec.get("text"), str):
            return rec["text"]
        msgs = rec.get("messages")
        if isinstance(msgs, list) and all(isinstance(m, dict) for m in msgs):
            return "".join("%s: %s\n" % (m.get("role", ""), m.get("content", "")) for m in msgs)
    fail('%s: no "text" string field (or chat "messages")' % where)


def read_texts(path):
    texts = []
    for name in dataset_files(path):
        with open(name, encoding="utf-8") as f:
            if not name.endswith(".jsonl"):
                texts += [p.strip() for p in f.read().split("\n\n") if p.strip()]
                continue
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    fail("%s:%d: not JSON: %s" % (name, n, e))
                texts.append(example_text(rec, "%s:%d" % (name, n)))
    return texts


def bytes_to_unicode():
    """GPT-2's byte-level alphabet (byte -> the character standing for it)."""
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
    """Bytes mapped to ids through a byte-level BPE vocabulary (tokenizer.json),
    without merges: what the tiny models use."""

    def __init__(self, base, config):
        path = os.path.join(base, "tokenizer.json")
        if not os.path.exists(path):
            fail("base %s has no tokenizer.json; lora trains models with a byte-level BPE tokenizer" % base)
        with open(path, encoding="utf-8") as f:
            tok = json.load(f)
        model = tok.get("model") or {}
        if model.get("type") != "BPE":
            fail("%s: not a byte-level BPE tokenizer" % path)
        vocab = model.get("vocab") or {}
        table = [0] * 256
        for b, ch in bytes_to_unicode().items():
            if ch not in vocab:
                fail("%s: the vocabulary lacks the byte token %r" % (path, ch))
            table[b] = vocab[ch]
        self.table = torch.tensor(table, dtype=torch.long)
        eos = config.get("eos_token_id")
        self.eos = eos[0] if isinstance(eos, list) else eos
        self.bos = config.get("bos_token_id")
        if self.bos is None or self.eos is None:
            fail("base %s: config.json needs bos_token_id and eos_token_id" % base)

    def encode(self, text):
        raw = torch.tensor(list(text.encode("utf-8")), dtype=torch.long)
        return self.table[raw] if len(raw) else raw


# ----------------------------------------------------------------- model


class LoraLinear(nn.Module):
    """A frozen linear (weight [out, in], no bias) plus scaling * B A."""

    def __init__(self, weight, rank, scaling, generator):
        super().__init__()
        self.register_buffer("weight", weight)
        self.rank, self.scaling = rank, scaling
        if rank:
            out_f, in_f = weight.shape
            # PEFT: kaiming_uniform_(A, a=sqrt(5)), whose bound is
            # gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)):
            # 1 / sqrt(in). Drawn from our generator (torch 1.13's init
            # functions take none) so that a seed fixes the result.
            bound = 1.0 / math.sqrt(in_f)
            a = (torch.rand((rank, in_f), generator=generator, dtype=torch.float32) * 2 - 1) * bound
            self.lora_A = nn.Parameter(a)
            self.lora_B = nn.Parameter(torch.zeros(out_f, rank))

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.rank:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling
        return y


def rms_norm(x, w, eps):
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return w * h.to(x.dtype)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Llama(nn.Module):
    """transformers' LlamaForCausalLM forward, on frozen weights."""

    def __init__(self, config, weights, targets, rank, scaling, generator):
        super().__init__()
        c = config
        self.heads, self.kv_heads = c["num_attention_heads"], c.get("num_key_value_heads") or c["num_attention_heads"]
        self.head_dim = c.get("head_dim") or c["hidden_size"] // self.heads
        self.eps = float(c.get("rms_norm_eps", 1e-6))
        self.n_layers = c["num_hidden_layers"]
        self.register_buffer("embed", weights["model.embed_tokens.weight"])
        self.register_buffer("norm", weights["model.norm.weight"])
        lm = weights.get("lm_head.weight")
        if lm is None or c.get("tie_word_embeddings"):
            lm = weights["model.embed_tokens.weight"]
        self.register_buffer("lm_head", lm)
        self.layers = nn.ModuleList()
        self.lora = {}  # PEFT module name -> LoraLinear with adapters
        for i in range(self.n_layers):
            p = "model.layers.%d." % i
            layer = nn.Module()
            for name in ATTN + MLP:
                sub = "self_attn." if name in ATTN else "mlp."
                r = rank if name in targets else 0
                lin = LoraLinear(weights[p + sub + name + ".weight"], r, scaling, generator)
                setattr(layer, name, lin)
                if r:
                    self.lora[p + sub + name] = lin
            layer.register_buffer("attn_norm", weights[p + "input_layernorm.weight"])
            layer.register_buffer("mlp_norm", weights[p + "post_attention_layernorm.weight"])
            self.layers.append(layer)
        theta = float(c.get("rope_theta", 10000.0))
        inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def attention(self, l, x, cos, sin, mask):
        b, t, _ = x.shape
        q = l.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = l.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = l.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads  # kv head j serves query heads j*rep .. j*rep+rep-1
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim) + mask
        y = F.softmax(att.float(), dim=-1).to(q.dtype) @ v
        return l.o_proj(y.transpose(1, 2).reshape(b, t, -1))

    def forward(self, ids):
        t = ids.shape[1]
        pos = torch.arange(t, device=ids.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((t, t), float("-inf"), device=ids.device).triu(1)
        x = F.embedding(ids, self.embed)
        for l in self.layers:
            x = x + self.attention(l, rms_norm(x, l.attn_norm, self.eps), cos, sin, mask)
            h = rms_norm(x, l.mlp_norm, self.eps)
            x = x + l.down_proj(F.silu(l.gate_proj(h)) * l.up_proj(h))
        return F.linear(rms_norm(x, self.norm, self.eps), self.lm_head)


def load_weights(base):
    index = os.path.join(base, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    weights = {}
    for shard in shards:
        for name, t in safetensors.load_file(os.path.join(base, shard)).items():
            if not t.is_floating_point():
                fail("base %s: tensor %s has dtype %s; lora trains on a float checkpoint (before quantisation)"
                     % (base, name, t.dtype))
            weights[name] = t.float()
    return weights


# -------------------------------------------------------------- training


def pick_device(params):
    want = params["device"]
    if os.environ.get("COGUMI_REQUIRE_CUDA") == "1":
        want = "cuda"
    if want not in ("auto", "cpu", "cuda"):
        fail("params device %r: use auto, cpu or cuda" % want)
    if want == "cuda" and not torch.cuda.is_available():
        fail("CUDA is required but torch.cuda.is_available() is false (torch %s, CUDA_VISIBLE_DEVICES=%r)"
             % (torch.__version__, os.environ.get("CUDA_VISIBLE_DEVICES")))
    if want in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


def device_info(device):
    if device.type != "cuda":
        return {"device": "cpu", "device_name": platform.processor() or platform.machine(), "gpu_uuid": ""}
    props = torch.cuda.get_device_properties(device)
    uuid = str(getattr(props, "uuid", "") or "")  # torch prints it without nvidia-smi's "GPU-"
    return {"device": "cuda:%d (%s)" % (device.index or 0, props.name), "device_name": props.name,
            "gpu_uuid": uuid, "gpu_uuid_nvidia_smi": ("GPU-" + uuid) if uuid and not uuid.startswith("GPU-") else uuid}


def main():
    start = time.time()
    out = os.environ.get("COGUMI_OUT") or fail("COGUMI_OUT is not set")
    cfg_path = os.environ.get("COGUMI_LORA_CONFIG") or fail("COGUMI_LORA_CONFIG is not set")
    with open(cfg_path, encoding="utf-8") as f:
        job = json.load(f)
    os.makedirs(out, exist_ok=True)
    params = dict(DEFAULT_PARAMS)
    given = job.get("params") or {}
    unknown = set(given) - set(params)
    if unknown:
        fail("unknown params %s; lora takes %s" % (", ".join(sorted(unknown)), ", ".join(sorted(params))))
    params.update(given)
    rank, alpha = int(job["rank"]), float(job["alpha"])
    if rank <= 0:
        fail("rank %d: the rank must be at least 1" % rank)
    targets = list(job["target_modules"])
    bad = [t for t in targets if t not in ATTN + MLP]
    if bad:
        fail("target_modules %s: use names among %s" % (bad, ", ".join(ATTN + MLP)))

    base = job["base_dir"]
    with open(os.path.join(base, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if config.get("attention_bias") or config.get("mlp_bias") or config.get("rope_scaling"):
        fail("base %s uses biases or scaled RoPE, which lora does not implement" % base)
    tok = ByteTokenizer(base, config)

    texts = read_texts(job["dataset"])
    if not texts:
        fail("dataset %s holds no examples: lora needs at least one row with text (%s)"
             % (job.get("dataset_label") or job["dataset"], job["dataset"]))
    stream = torch.cat([torch.cat([torch.tensor([tok.bos]), tok.encode(t), torch.tensor([tok.eos])]) for t in texts])
    seq, batch, steps = int(params["seq_len"]), int(params["batch"]), int(params["steps"])
    if steps <= 0 or batch <= 0 or seq <= 0:
        fail("params steps, batch and seq_len must be positive (got %d, %d, %d)" % (steps, batch, seq))
    if len(stream) < seq + 2:
        # A small failures set: train on windows as long as the data allows.
        seq = len(stream) - 2
        if seq < 2:
            fail("dataset %s has %d tokens: too few to train on" % (job["dataset"], len(stream)))
        print("the dataset has %d tokens: seq_len lowered to %d" % (len(stream), seq), flush=True)

    device = pick_device(params)
    seed = int(params["seed"])
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(seed)
    scaling = alpha / rank
    model = Llama(config, load_weights(base), set(targets), rank, scaling, gen).to(device)
    trainable = [p for p in model.parameters()]
    n_train = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=float(params["lr"]), weight_decay=0.0)
    info = device_info(device)
    print("training %d LoRA parameters (rank %d, alpha %g, %d modules) on %s for %d steps, %d examples, %d tokens, batch %d x %d"
          % (n_train, rank, alpha, len(model.lora), info["device_name"], steps, len(texts), len(stream), batch, seq),
          flush=True)

    losses = []
    t0 = time.time()
    for step in range(1, steps + 1):
        starts = torch.randint(0, len(stream) - seq, (batch,), generator=gen)
        chunk = torch.stack([stream[s:s + seq + 1] for s in starts.tolist()]).to(device)
        logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % int(params["log_every"]) == 0 or step == steps:
            print("step %d/%d loss %.4f" % (step, steps, losses[-1]), flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.time() - t0

    tensors = {}
    for name, lin in model.lora.items():
        tensors[PREFIX + name + ".lora_A.weight"] = lin.lora_A.detach().cpu().float().contiguous()
        tensors[PREFIX + name + ".lora_B.weight"] = lin.lora_B.detach().cpu().float().contiguous()
    safetensors.save_file(tensors, os.path.join(out, "adapter_model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(out, "adapter_config.json"), {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": int(alpha) if alpha.is_integer() else alpha, "lora_dropout": 0.0,
        "bias": "none", "fan_in_fan_out": False, "target_modules": targets,
        "base_model_name_or_path": job.get("base_label", ""), "inference_mode": True,
    })
    end = time.time()
    tail = losses[-10:]
    write_json(os.path.join(out, "metrics.json"), dict(
        info, version=1, loss_first=losses[0], loss_last=losses[-1], loss=sum(tail) / len(tail), losses=losses,
        steps=steps, examples=len(texts), tokens=len(stream), batch=batch, seq_len=seq, lr=float(params["lr"]),
        seed=seed, rank=rank, alpha=alpha, target_modules=targets, trainable_parameters=n_train,
        seconds=end - start, train_seconds=train_seconds, torch=str(torch.__version__),
        python=platform.python_version(), cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES")))
    print("done: loss %.4f -> %.4f after %d steps in %.1f s" % (losses[0], losses[-1], steps, end - start), flush=True)


if __name__ == "__main__":
    main()
