"""cogumi's calibrate rule: activation statistics of a Llama checkpoint's
linear layers on calibration text, for AWQ.

    python3 cogumi_calibrate.py MODEL_DIR TEXTS.jsonl OUT_DIR PARAMS.json

TEXTS.jsonl holds one {"text": ...} per example, in dataset order. Every
text is tokenised (BOS first) and the tokens are concatenated and cut into
`samples` sequences of `seq_len` tokens. Forward hooks on the linears that
read each distinct input (q_proj for q/k/v, o_proj, gate_proj for gate/up,
down_proj) accumulate the mean |x| per input channel over every token, and
keep the rows of `max_rows` token positions drawn uniformly with `seed` (the
same positions for every input). The model computes in `dtype` (float32
unless the rule says otherwise). OUT_DIR receives calibration.safetensors
(F32) and calibration.json, which say nothing of the machine: the device
and the times are printed to the build log and, when PARAMS names a
`facts` file, written there for the build's events.
"""

import json
import os
import sys
import time

import torch

import cogumi_llama
import cogumi_runtime
import cogumi_safetensors

# The linears whose input is recorded, each standing for every linear
# that reads the same input.
INPUTS = ["self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj"]


def fail(msg):
    print("calibrate: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def main(argv):
    if len(argv) != 5:
        fail("usage: cogumi_calibrate.py MODEL_DIR TEXTS.jsonl OUT_DIR PARAMS.json")
    model_dir, texts_path, out, params_path = argv[1:]
    with open(params_path, encoding="utf-8") as f:
        p = json.load(f)
    samples, seq_len, max_rows, seed = int(p["samples"]), int(p["seq_len"]), int(p["max_rows"]), int(p["seed"])
    dtype = p.get("dtype", "float32")
    device, device_desc = cogumi_llama.pick_device()
    print("calibrating on %s in %s with the %s backend" % (device_desc, dtype, cogumi_runtime.backend()), flush=True)
    started = time.time()
    try:
        model, config, tok = cogumi_runtime.load_model(model_dir, device, dtype)
    except cogumi_llama.CheckpointError as e:
        fail(str(e))
    if seq_len > int(config["max_position_embeddings"]):
        fail("seq_len %d is longer than the model's context (max_position_embeddings %d)" % (seq_len, config["max_position_embeddings"]))

    need = samples * seq_len
    tokens = []
    for text in cogumi_llama.read_texts(texts_path):
        if tok.bos is not None:
            tokens.append(tok.bos)
        tokens.extend(tok.encode(text))
        if len(tokens) >= need:
            break
    if len(tokens) < need:
        fail("the dataset has %d tokens; samples = %d x seq_len = %d needs %d: add text, or lower samples or seq_len"
             % (len(tokens), samples, seq_len, need))
    ids = torch.tensor(tokens[:need], dtype=torch.long).view(samples, seq_len)

    total = need
    rows = min(max_rows, total)
    g = torch.Generator().manual_seed(seed)
    picked = torch.randperm(total, generator=g)[:rows].sort().values  # flat positions sample*seq_len + t

    stats = {}
    hooks = []
    for i, layer in enumerate(model.model.layers):
        for name in INPUTS:
            mod = layer.get_submodule(name)
            key = "model.layers.%d.%s" % (i, name)
            stats[key] = {"sum": torch.zeros(mod.in_features, dtype=torch.float64, device=device),
                          "rows": torch.zeros(rows, mod.in_features, dtype=torch.float32)}
            hooks.append(mod.register_forward_hook(make_hook(stats[key])))

    loaded = time.time()
    with torch.no_grad():
        for s in range(samples):
            ctx_rows = picked[(picked >= s * seq_len) & (picked < (s + 1) * seq_len)]
            for st in stats.values():
                st["at"] = ctx_rows - s * seq_len
                st["dst"] = torch.nonzero((picked >= s * seq_len) & (picked < (s + 1) * seq_len))[:, 0]
            model(ids[s:s + 1].to(device))
    for h in hooks:
        h.remove()

    tensors = {}
    for key, st in stats.items():
        tensors[key + ".input_mean_abs"] = (st["sum"] / total).float().cpu().contiguous()
        tensors[key + ".input_rows"] = st["rows"].contiguous()
    os.makedirs(out, exist_ok=True)
    cogumi_safetensors.save_file(tensors, os.path.join(out, "calibration.safetensors"))
    meta = {"version": 1, "samples": samples, "seq_len": seq_len, "tokens": total, "rows": rows,
            "layers": len(model.model.layers), "dtype": dtype, "torch": cogumi_llama.torch_version()}
    if cogumi_runtime.backend() == "transformers":
        meta["runtime"] = cogumi_runtime.describe(dtype)
    with open(os.path.join(out, "calibration.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    done = time.time()
    print("calibrated %d layers on %d samples x %d tokens (%d rows kept) on %s in %.2f s (loading %.2f s)"
          % (meta["layers"], samples, seq_len, rows, device_desc, done - loaded, loaded - started), flush=True)
    if p.get("facts"):
        cogumi_llama.write_facts(p["facts"], {"device": device_desc, "load_seconds": loaded - started, "seconds": done - loaded})


def make_hook(st):
    def hook(module, inputs, output):
        x = inputs[0].detach()
        x2 = x.reshape(-1, x.shape[-1])
        st["sum"] += x2.abs().double().sum(0)
        if len(st["at"]):
            st["rows"][st["dst"]] = x2[st["at"].to(x2.device)].float().cpu()
    return hook


if __name__ == "__main__":
    main(sys.argv)
