"""What train_maml.py and recover.py share: cogumi's environment contract,
loading the checkpoint, token-weighted losses, an AdamW whose fp32 master
weights and state live in host memory, resume points, and saving.

Memory plan for Llama-3.1-8B on one 80 GB H100: the model's weights and
gradients are fp32 on the GPU (2 x 33 GB) and the forward and backward run
in bf16 under autocast with activation checkpointing (a few GB at 1024
tokens); AdamW's master copy, moments and gradient accumulator are fp32 in
host memory (4 x 33 GB, hence resources.memory). The checkpoint is saved in
bf16.

cogumi's contract (see examples/gpu/train.py in the cogumi repository):
COGUMI_INPUT_BASE (the checkpoint's artifact), COGUMI_INPUT_DATASET (an
artifact directory or one file of it), COGUMI_PARAMS (JSON), COGUMI_OUT,
COGUMI_RESUME_DIR (survives a failed or preempted attempt),
CUDA_VISIBLE_DEVICES (the GPU cogumi or Slurm gave the job).
"""

import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def fail(msg):
    sys.exit("%s: %s" % (os.path.basename(sys.argv[0]), msg))


def params(defaults):
    p = dict(defaults)
    if os.environ.get("COGUMI_PARAMS"):
        with open(os.environ["COGUMI_PARAMS"]) as f:
            given = json.load(f)
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            fail("unknown params %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(defaults))))
        p.update(given)
    return p


def find_checkpoint(root):
    """The one directory at or below root holding a config.json."""
    found = [d for d, _, files in os.walk(root, followlinks=True) if "config.json" in files]
    if len(found) != 1:
        fail("%s: want one checkpoint (a config.json), found %d" % (root, len(found)))
    return found[0]


def dataset_file(name):
    """COGUMI_INPUT_DATASET is a file, or a directory holding name."""
    path = os.environ["COGUMI_INPUT_DATASET"]
    return os.path.join(path, name) if os.path.isdir(path) else path


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def load(device):
    ckpt = find_checkpoint(os.environ["COGUMI_INPUT_BASE"])
    tok = AutoTokenizer.from_pretrained(ckpt)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32).to(device)
    model.gradient_checkpointing_enable()
    model.config.use_cache = False
    model.train()
    return model, tok


def backward(model, tok, texts, seq_len, micro, device, scale=1.0):
    """Accumulates scale x the token-weighted mean loss of texts into .grad;
    returns that loss."""
    batches = [texts[i:i + micro] for i in range(0, len(texts), micro)]
    encs = [tok(b, truncation=True, max_length=seq_len, padding=True, return_tensors="pt") for b in batches]
    total = sum(int(e["attention_mask"][:, 1:].sum()) for e in encs)  # predicted tokens
    loss_sum = 0.0
    for e in encs:
        ids, mask = e["input_ids"].to(device), e["attention_mask"].to(device)
        labels = ids.masked_fill(mask == 0, -100)
        n = int(mask[:, 1:].sum())
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss  # mean over its n tokens
        (loss * (scale * n / total)).backward()
        loss_sum += float(loss) * n
    return loss_sum / total


class HostAdamW:
    """AdamW over fp32 master weights in host memory. keep_zeros: weights
    that are zero at the start (a pruned checkpoint) stay exactly zero."""

    def __init__(self, model, lr, weight_decay=0.0, keep_zeros=False):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.master = [p.detach().float().cpu() for p in self.params]
        for m in self.master:
            m.grad = torch.zeros_like(m)
        self.masks = [(m != 0) if keep_zeros and bool((m == 0).any()) else None for m in self.master]
        self.opt = torch.optim.AdamW(self.master, lr=lr, weight_decay=weight_decay)

    def accumulate(self, scale=1.0):
        """Adds scale x the model's gradients to the master gradients."""
        for p, m in zip(self.params, self.master):
            if p.grad is not None:
                m.grad.add_(p.grad.float().cpu(), alpha=scale)
                p.grad = None

    def step(self):
        self.opt.step()
        with torch.no_grad():
            for m, mask in zip(self.master, self.masks):
                if mask is not None:
                    m.mul_(mask)
                m.grad.zero_()
        self.to_model()

    def to_model(self):
        with torch.no_grad():
            for p, m in zip(self.params, self.master):
                p.copy_(m, non_blocking=True)

    def save(self, step):
        d = os.environ.get("COGUMI_RESUME_DIR")
        if d:
            tmp = os.path.join(d, "resume.pt.tmp")
            torch.save({"step": step, "master": self.master, "opt": self.opt.state_dict()}, tmp)
            os.replace(tmp, os.path.join(d, "resume.pt"))  # a kill never leaves half a resume point

    def resume(self):
        """The step to start from: 0, or where a failed attempt left off."""
        d = os.environ.get("COGUMI_RESUME_DIR")
        path = os.path.join(d, "resume.pt") if d else ""
        if not path or not os.path.exists(path):
            return 0
        st = torch.load(path)
        with torch.no_grad():
            for m, saved in zip(self.master, st["master"]):
                m.copy_(saved)
        self.opt.load_state_dict(st["opt"])
        self.to_model()
        print("resumed at step %d from %s" % (st["step"], path), flush=True)
        return st["step"]


def device():
    if not torch.cuda.is_available():
        fail("no CUDA device: this script is for the GPU nodes (CUDA_VISIBLE_DEVICES=%r)"
             % os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    return torch.device("cuda")


def save(model, tok, dtype, metrics):
    out = os.environ["COGUMI_OUT"]
    model.config.use_cache = True
    model.to(getattr(torch, dtype)).save_pretrained(out, safe_serialization=True, max_shard_size="5GB")
    tok.save_pretrained(out)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
