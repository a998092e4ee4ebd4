#!/usr/bin/env python3
"""First-order MAML over cogumi's episodes: the 8 domains are the tasks.

Each line of episodes.jsonl (the dataset rule's episodes) is one task's
episode: {"task": "coding", "support": [5 rows], "query": [15 rows]}, rows
with a "text" field. One meta-step, for each of tasks_per_step episodes
(the tasks in turn):
  1. start from the meta-weights theta;
  2. inner loop: inner_steps SGD steps on the support set (fp32 weights on
     the GPU, so a small inner_lr is not rounded away) -> phi;
  3. the query loss's gradient at phi is the first-order MAML
     meta-gradient (FOMAML: second-order terms dropped);
then theta takes one AdamW step on the mean meta-gradient. The result is
theta: a checkpoint that adapts fast to each domain, saved in bf16.

Runs under cogumi's train rule (see llm_common.py for the contract and the
memory plan); a resume point is written every save_every meta-steps, so a
preempted Slurm job goes on where it stopped.
"""

import random
import time

import torch

import llm_common as lc

DEFAULTS = {"meta_steps": 500, "tasks_per_step": 8, "inner_steps": 1, "inner_lr": 1e-5, "outer_lr": 1e-5,
            "weight_decay": 0.0, "seq_len": 1024, "micro_batch": 5, "dtype": "bfloat16", "seed": 0,
            "save_every": 50, "log_every": 5}


def main():
    p = lc.params(DEFAULTS)
    dev = lc.device()
    episodes = {}
    for ep in lc.read_jsonl(lc.dataset_file("episodes.jsonl")):
        episodes.setdefault(ep["task"], []).append(ep)
    tasks = sorted(episodes)
    if not tasks:
        lc.fail("episodes.jsonl is empty")
    model, tok = lc.load(dev)
    opt = lc.HostAdamW(model, p["outer_lr"], p["weight_decay"])
    start = opt.resume()
    curve, t0 = [], time.time()
    for step in range(start, p["meta_steps"]):
        rng = random.Random("%d/%d" % (p["seed"], step))  # the same episodes after a resume
        q_losses = []
        for k in range(p["tasks_per_step"]):
            task = tasks[(step * p["tasks_per_step"] + k) % len(tasks)]
            ep = rng.choice(episodes[task])
            if k > 0:
                opt.to_model()  # back to theta (step() and load() leave theta in the model)
            for _ in range(p["inner_steps"]):
                lc.backward(model, tok, [r["text"] for r in ep["support"]], p["seq_len"], p["micro_batch"], dev)
                with torch.no_grad():
                    for w in opt.params:
                        if w.grad is not None:
                            w.add_(w.grad, alpha=-p["inner_lr"])  # phi = theta - inner_lr * grad
                            w.grad = None
            q = lc.backward(model, tok, [r["text"] for r in ep["query"]], p["seq_len"], p["micro_batch"], dev)
            opt.accumulate(1.0 / p["tasks_per_step"])  # the query gradient at phi
            q_losses.append(q)
        opt.step()  # theta <- AdamW(theta, mean meta-gradient)
        loss = sum(q_losses) / len(q_losses)
        curve.append({"step": step + 1, "query_loss": loss})
        if (step + 1) % p["log_every"] == 0:
            print("meta-step %d/%d query loss %.4f (%.1f s/step)" % (step + 1, p["meta_steps"], loss,
                  (time.time() - t0) / (step + 1 - start)), flush=True)
        if (step + 1) % p["save_every"] == 0:
            opt.save(step + 1)
    lc.save(model, tok, p["dtype"], {"params": p, "tasks": tasks, "episodes": {t: len(episodes[t]) for t in tasks},
                                     "curve": curve, "device": torch.cuda.get_device_name(dev),
                                     "torch": torch.__version__, "seconds": time.time() - t0})


if __name__ == "__main__":
    main()
