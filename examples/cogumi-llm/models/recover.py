#!/usr/bin/env python3
"""Recovery fine-tune of a pruned checkpoint, keeping its zeros.

Plain causal-LM training on the "text" rows of a JSONL file (train.jsonl).
It must run on the float checkpoint, after prune and before AWQ and GGUF
export: a 4-bit GGUF cannot be fine-tuned. With keep_zeros (the default),
every weight that is zero in the input stays exactly zero (the update is
masked after each optimiser step), so the sparsity prune reported still
holds. See llm_common.py for the contract and the memory plan.
"""

import random
import time

import torch

import llm_common as lc

DEFAULTS = {"steps": 1000, "batch": 16, "micro_batch": 4, "seq_len": 1024, "lr": 1e-5, "weight_decay": 0.0,
            "keep_zeros": True, "dtype": "bfloat16", "seed": 0, "save_every": 250, "log_every": 10}


def main():
    p = lc.params(DEFAULTS)
    dev = lc.device()
    texts = [r["text"] for r in lc.read_jsonl(lc.dataset_file("train.jsonl"))]
    model, tok = lc.load(dev)
    opt = lc.HostAdamW(model, p["lr"], p["weight_decay"], keep_zeros=p["keep_zeros"])
    zeros = sum(int((m == 0).sum()) for m in opt.master)
    start = opt.resume()
    curve, t0 = [], time.time()
    for step in range(start, p["steps"]):
        batch = random.Random("%d/%d" % (p["seed"], step)).sample(texts, p["batch"])
        loss = lc.backward(model, tok, batch, p["seq_len"], p["micro_batch"], dev)
        opt.accumulate()
        opt.step()
        curve.append({"step": step + 1, "loss": loss})
        if (step + 1) % p["log_every"] == 0:
            print("step %d/%d loss %.4f" % (step + 1, p["steps"], loss), flush=True)
        if (step + 1) % p["save_every"] == 0:
            opt.save(step + 1)
    kept = sum(int((m == 0).sum()) for m in opt.master)
    if p["keep_zeros"] and kept < zeros:
        lc.fail("zeros went from %d to %d" % (zeros, kept))
    lc.save(model, tok, p["dtype"], {"params": p, "zeros": kept, "curve": curve, "torch": torch.__version__,
                                     "device": torch.cuda.get_device_name(dev), "seconds": time.time() - t0})


if __name__ == "__main__":
    main()
