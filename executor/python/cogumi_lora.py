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
  dtype           the frozen base's compute dtype: float32, bfloat16, float16
                  (the adapters train in float32)
  facts           where to write what this run observed (device, times)

and it writes into $COGUMI_OUT the PEFT adapter (adapter_config.json,
adapter_model.safetensors with PEFT's tensor names, F32) and metrics.json
(the loss curve and the settings: nothing about the machine, which is
printed and written to `facts` for the build's events instead). The rule
then writes adapter.gguf from them, in Go.

The model and tokenizer are cogumi_llama's (the forward eval and calibrate
use, matching transformers' LlamaForCausalLM). Every base weight is frozen; each target linear gets A (r x in,
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

import cogumi_llama
import cogumi_runtime
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


class LoraLinear(nn.Module):
    """A frozen linear (the base's weight [out, in] and bias) plus scaling * B A."""

    def __init__(self, base, rank, scaling, generator):
        super().__init__()
        self.register_buffer("weight", base.weight.detach())
        self.register_buffer("bias", None if base.bias is None else base.bias.detach())
        self.rank, self.scaling = rank, scaling
        if rank:
            out_f, in_f = self.weight.shape
            # PEFT: kaiming_uniform_(A, a=sqrt(5)), whose bound is
            # gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)):
            # 1 / sqrt(in). Drawn from our generator (torch 1.13's init
            # functions take none) so that a seed fixes the result.
            bound = 1.0 / math.sqrt(in_f)
            a = (torch.rand((rank, in_f), generator=generator, dtype=torch.float32) * 2 - 1) * bound
            self.lora_A = nn.Parameter(a)
            self.lora_B = nn.Parameter(torch.zeros(out_f, rank))

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if self.rank:
            d = F.linear(F.linear(x.to(self.lora_A.dtype), self.lora_A), self.lora_B) * self.scaling
            y = y + d.to(y.dtype)
        return y


def add_lora(model, targets, rank, scaling, generator):
    """Wraps the target linears of every decoder layer in place; returns them
    by their PEFT module name, in layer order."""
    lora = {}
    for i, layer in enumerate(model.model.layers):
        for name in ATTN + MLP:
            if name not in targets:
                continue
            parent, sub = (layer.self_attn, "self_attn.") if name in ATTN else (layer.mlp, "mlp.")
            lin = LoraLinear(getattr(parent, name), rank, scaling, generator)
            setattr(parent, name, lin)
            lora["model.layers.%d.%s%s" % (i, sub, name)] = lin
    return lora


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
    device = pick_device(params)
    dtype = job.get("dtype", "float32")
    try:
        # The model and tokenizer eval and calibrate use: one Llama forward.
        model, config, tok = cogumi_runtime.load_model(base, device, dtype)
    except cogumi_llama.CheckpointError as e:
        fail(str(e))
    eos = config.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) else eos
    if eos is None:
        fail("base %s: config.json names no eos_token_id" % base)

    texts = read_texts(job["dataset"])
    if not texts:
        fail("dataset %s holds no examples: lora needs at least one row with text (%s)"
             % (job.get("dataset_label") or job["dataset"], job["dataset"]))
    # Each text as the tokenizer frames it (BOS first where it adds one:
    # Llama does, Qwen does not), then EOS.
    bos = [tok.bos] if tok.bos is not None else []
    stream = torch.tensor([i for t in texts for i in bos + tok.encode(t) + [eos]], dtype=torch.long)
    seq, batch, steps = int(params["seq_len"]), int(params["batch"]), int(params["steps"])
    if steps <= 0 or batch <= 0 or seq <= 0:
        fail("params steps, batch and seq_len must be positive (got %d, %d, %d)" % (steps, batch, seq))
    if len(stream) < seq + 2:
        # A small failures set: train on windows as long as the data allows.
        seq = len(stream) - 2
        if seq < 2:
            fail("dataset %s has %d tokens: too few to train on" % (job["dataset"], len(stream)))
        print("the dataset has %d tokens: seq_len lowered to %d" % (len(stream), seq), flush=True)

    seed = int(params["seed"])
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(seed)
    scaling = alpha / rank
    for p in model.parameters():
        p.requires_grad_(False)
    lora = add_lora(model, set(targets), rank, scaling, gen)
    model = model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=float(params["lr"]), weight_decay=0.0)
    info = device_info(device)
    print("training %d LoRA parameters (rank %d, alpha %g, %d modules) on %s (base in %s) for %d steps, %d examples, %d tokens, batch %d x %d"
          % (n_train, rank, alpha, len(lora), info["device"], dtype, steps, len(texts), len(stream), batch, seq),
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
    for name, lin in lora.items():
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
        version=1, loss_first=losses[0], loss_last=losses[-1], loss=sum(tail) / len(tail), losses=losses,
        steps=steps, examples=len(texts), tokens=len(stream), batch=batch, seq_len=seq, lr=float(params["lr"]),
        seed=seed, rank=rank, alpha=alpha, target_modules=targets, trainable_parameters=n_train, dtype=dtype,
        torch=cogumi_llama.torch_version(), python=platform.python_version(),
        **({"runtime": cogumi_runtime.describe(dtype)} if cogumi_runtime.backend() == "transformers" else {})))
    if job.get("facts"):
        cogumi_llama.write_facts(job["facts"], dict(
            info, seconds=end - start, train_seconds=train_seconds, cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES")))
    print("done: loss %.4f -> %.4f after %d steps in %.1f s" % (losses[0], losses[-1], steps, end - start), flush=True)


if __name__ == "__main__":
    main()
