#!/usr/bin/env python3
"""Train a tiny Llama-style decoder: cogumi's GPU example.

Uses only torch and the standard library (plus cogumi_safetensors, which
cogumi stages on PYTHONPATH), so it runs on Debian's torch 1.13 on a CPU and
on torch 2.x with CUDA. It reads cogumi's environment contract:

  COGUMI_OUT             where the checkpoint goes, in Hugging Face layout:
                         config.json, model.safetensors, tokenizer files,
                         generation_config.json, and metrics.json
  COGUMI_INPUT_DATASET   a JSONL file (a "text" field per line), a .txt file,
                         or a directory of them
  COGUMI_INPUT_BASE      optional checkpoint directory to start from (its
                         config, weights and byte-level BPE tokenizer)
  COGUMI_PARAMS          optional JSON file: lr, epochs, steps, seed, batch,
                         seq_len, log_every, resume_every, device (auto, cpu,
                         cuda), dtype (of the saved weights: float32,
                         bfloat16, float16; default: the base's, or float32),
                         config (overrides of the default model config for a
                         model trained from scratch, e.g. a smaller draft),
                         keep_sparsity (with a base: its zero weights stay
                         zero, for a recovery fine-tune after pruning)
  COGUMI_RESUME_DIR      optional directory kept across failed attempts: a
                         resume checkpoint is saved there every resume_every
                         steps and training continues from it
  CUDA_VISIBLE_DEVICES   the GPUs cogumi gave this action
  COGUMI_REQUIRE_CUDA=1  fail unless CUDA is available (as params device=cuda)

On a CPU the result is deterministic for a seed (same torch, same machine
type). The model (tiny_llama.py, beside this file): RMSNorm, rotary
embeddings, grouped-query attention and a SwiGLU MLP, with the module names
of transformers' LlamaForCausalLM so that the state dict has the Hugging Face
tensor names.
"""

import hashlib
import json
import math
import os
import platform
import random
import shutil
import sys
import time

import torch
import torch.nn.functional as F

from tiny_llama import DEFAULT_CONFIG, ByteTokenizer, LlamaForCausalLM, write_json, write_tokenizer

try:
    import cogumi_safetensors as safetensors
except ImportError:  # run by hand from a checkout: use the repository's copy
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import cogumi_safetensors as safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PARAMS = {"lr": 3e-3, "steps": None, "epochs": None, "seed": 0, "batch": 16, "seq_len": 64,
                  "log_every": 20, "resume_every": 50, "device": "auto", "dtype": None,
                  "config": None, "keep_sparsity": False}
SAVE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def fail(msg):
    print("train.py: " + msg, file=sys.stderr, flush=True)
    sys.exit(2)


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


def read_texts(path):
    texts = []
    for name in dataset_files(path):
        with open(name, encoding="utf-8") as f:
            if not name.endswith(".jsonl"):
                texts.append(f.read())
                continue
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    fail("%s:%d: not JSON: %s" % (name, n, e))
                text = rec.get("text") if isinstance(rec, dict) else None
                if not isinstance(text, str):
                    fail('%s:%d: no "text" string field' % (name, n))
                texts.append(text)
    return texts


# ----------------------------------------------------------------- training



def load_params():
    params = dict(DEFAULT_PARAMS)
    path = os.environ.get("COGUMI_PARAMS")
    if path:
        with open(path, encoding="utf-8") as f:
            given = json.load(f)
        unknown = set(given) - set(params)
        if unknown:
            print("train.py: ignoring unknown params %s" % ", ".join(sorted(unknown)), flush=True)
        params.update({k: v for k, v in given.items() if k in params})
    return params


def pick_device(params):
    want = params["device"]
    if os.environ.get("COGUMI_REQUIRE_CUDA") == "1":
        want = "cuda"
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
    # torch prints the UUID without nvidia-smi's "GPU-" prefix.
    uuid = str(getattr(props, "uuid", "") or "")
    # Every device the action was given (a gpus = 2 target sees two), by UUID.
    visible = [str(getattr(torch.cuda.get_device_properties(i), "uuid", "") or "")
               for i in range(torch.cuda.device_count())]
    return {"device": "cuda", "device_name": torch.cuda.get_device_name(device), "gpu_uuid": uuid,
            "gpu_uuid_nvidia_smi": ("GPU-" + uuid) if uuid and not uuid.startswith("GPU-") else uuid,
            "cuda_device_count": torch.cuda.device_count(), "visible_gpu_uuids": visible}


def load_base(model, base):
    index = os.path.join(base, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    tensors = {}
    for shard in shards:
        tensors.update(safetensors.load_file(os.path.join(base, shard)))
    state = model.state_dict()
    if model.config.get("tie_word_embeddings"):
        state.pop("lm_head.weight", None)
        tensors.pop("lm_head.weight", None)
    missing, extra = sorted(set(state) - set(tensors)), sorted(set(tensors) - set(state))
    if missing or extra:
        fail("base %s does not fit the model: missing %s, unexpected %s" % (base, missing[:5], extra[:5]))
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(state[name].shape):
            fail("base %s: %s has shape %s, the config says %s" % (base, name, list(t.shape), list(state[name].shape)))
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)


def save_checkpoint(model, out, dtype, base):
    dt = SAVE_DTYPES[dtype]
    state = model.state_dict()
    if model.config.get("tie_word_embeddings"):
        state.pop("lm_head.weight")
    safetensors.save_file({k: v.to(dt) for k, v in state.items()}, os.path.join(out, "model.safetensors"),
                          metadata={"format": "pt"})
    config = dict(model.config, torch_dtype=dtype)
    write_json(os.path.join(out, "config.json"), config)
    write_json(os.path.join(out, "generation_config.json"),
               {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]})
    if base:
        for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
            if os.path.exists(os.path.join(base, name)):
                shutil.copyfile(os.path.join(base, name), os.path.join(out, name))
    else:
        write_tokenizer(out, config)


def main():
    start = time.time()
    out = os.environ.get("COGUMI_OUT") or fail("COGUMI_OUT is not set")
    os.makedirs(out, exist_ok=True)
    params = load_params()
    device = pick_device(params)
    seed = int(params["seed"])
    random.seed(seed)
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)

    base = os.environ.get("COGUMI_INPUT_BASE") or None
    if base:
        with open(os.path.join(base, "config.json"), encoding="utf-8") as f:
            config = dict(DEFAULT_CONFIG, **json.load(f))
        if config.get("attention_bias") or config.get("mlp_bias") or config.get("rope_scaling"):
            fail("base %s uses biases or scaled RoPE, which this example does not implement" % base)
        try:
            tok = ByteTokenizer.from_checkpoint(base, config)
        except ValueError as e:
            fail(str(e))
    else:
        config, tok = dict(DEFAULT_CONFIG), ByteTokenizer.default()
        if params["config"]:
            # A from-scratch model of another shape (a smaller draft model).
            config.update(params["config"])
            config["head_dim"] = config["hidden_size"] // config["num_attention_heads"]
    if base and params["config"]:
        fail("params config applies to a model trained from scratch, not to a base's fine-tune")

    data_path = os.environ.get("COGUMI_INPUT_DATASET") or os.path.join(HERE, "data", "tiny.jsonl")
    stream = torch.cat([torch.cat([torch.tensor([tok.bos]), tok.encode(t), torch.tensor([tok.eos])])
                        for t in read_texts(data_path)])
    # Saved as the base was (bf16 stays bf16), unless params say otherwise.
    if params["dtype"] is None:
        params["dtype"] = config.get("torch_dtype") if config.get("torch_dtype") in SAVE_DTYPES else "float32"
    if params["dtype"] not in SAVE_DTYPES:
        fail("params dtype %r: use one of %s" % (params["dtype"], ", ".join(SAVE_DTYPES)))
    seq, batch = int(params["seq_len"]), int(params["batch"])
    if len(stream) < seq + 2:
        fail("dataset %s has %d tokens, fewer than seq_len %d" % (data_path, len(stream), seq))
    steps = params["steps"]
    if steps is None:
        epochs = params["epochs"] if params["epochs"] is not None else 1
        steps = max(1, math.ceil(epochs * (len(stream) // seq) / batch))
    steps = int(steps)

    gen = torch.Generator().manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.init_weights(gen)
    if base:
        load_base(model, base)
    model.to(device)
    # A recovery fine-tune after pruning keeps the pruned weights at zero:
    # the masks of the base's zeros are re-applied after every step.
    masks = {}
    if params["keep_sparsity"]:
        if not base:
            fail("params keep_sparsity needs a base checkpoint (the pruned model)")
        masks = {n: (p != 0) for n, p in model.named_parameters() if p.dim() == 2 and "layers." in n and (p == 0).any()}
    opt = torch.optim.AdamW(model.parameters(), lr=float(params["lr"]), weight_decay=0.0)
    n_params = sum(p.numel() for p in model.parameters())

    # The resume state is only valid for the same run: same params, model
    # and data. A stale one (params changed) is ignored, not resumed.
    fp = hashlib.sha256(json.dumps([params, config, str(torch.__version__)], sort_keys=True).encode()
                        + stream.numpy().tobytes()).hexdigest()
    resume_dir = os.environ.get("COGUMI_RESUME_DIR")
    resume_path = os.path.join(resume_dir, "resume.pt") if resume_dir else None
    step, resumed_from, losses = 0, None, []
    if resume_path and os.path.exists(resume_path):
        state = torch.load(resume_path, map_location="cpu")
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["data_rng"])
            step, losses, resumed_from = state["step"], state["losses"], state["step"]
            print("resuming from step %d (%s)" % (step, resume_path), flush=True)
        else:
            print("ignoring %s: it belongs to another run" % resume_path, flush=True)

    info = device_info(device)
    print("training %d parameters on %s (%s) for %d steps, %d tokens, batch %d x %d"
          % (n_params, info["device_name"], device, steps, len(stream), batch, seq), flush=True)
    fail_after = int(os.environ.get("TRAIN_FAIL_AFTER_STEPS", "0"))  # tests simulate a crash
    model.train()
    t0 = time.time()
    while step < steps:
        starts = torch.randint(0, len(stream) - seq - 1, (batch,), generator=gen)
        chunk = torch.stack([stream[s:s + seq + 1] for s in starts.tolist()]).to(device)
        logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if masks:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if n in masks:
                        p.mul_(masks[n])
        step += 1
        losses.append(loss.item())
        if step % int(params["log_every"]) == 0 or step == steps:
            print("step %d/%d loss %.4f" % (step, steps, losses[-1]), flush=True)
        if resume_path and step % int(params["resume_every"]) == 0 and step < steps:
            os.makedirs(resume_dir, exist_ok=True)
            torch.save({"fingerprint": fp, "step": step, "losses": losses, "model": model.state_dict(),
                        "optimizer": opt.state_dict(), "data_rng": gen.get_state()}, resume_path + ".tmp")
            os.replace(resume_path + ".tmp", resume_path)
        if fail_after and step == fail_after:
            fail("TRAIN_FAIL_AFTER_STEPS=%d: failing on purpose" % fail_after)

    if device.type == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.time() - t0
    save_checkpoint(model.cpu(), out, params["dtype"], base)
    end = time.time()
    tail = losses[-10:]
    metrics = dict(info, loss=sum(tail) / len(tail), first_loss=losses[0], steps=steps, resumed_from=resumed_from,
                   seconds=end - start, train_seconds=train_seconds, start=start, end=end, parameters=n_params,
                   tokens=len(stream), torch=str(torch.__version__), python=platform.python_version(),
                   cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                   sparsity_kept=(sum(int((~m).sum()) for m in masks.values()) if masks else None))
    write_json(os.path.join(out, "metrics.json"), metrics)
    print("done: loss %.4f after %d steps in %.1f s" % (metrics["loss"], steps, metrics["seconds"]), flush=True)


if __name__ == "__main__":
    main()
