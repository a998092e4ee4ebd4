"""cogumi's eval rule, torch runtime: the negative log-likelihood of every
example under a Llama checkpoint.

    python3 cogumi_eval.py MODEL_DIR TEXTS.jsonl RESULT.json [DTYPE [FACTS.json]]

TEXTS.jsonl holds one {"text": ...} per example (cogumi extracted them from
the dataset, so file:line errors are reported there). Each text is
tokenised with the checkpoint's tokenizer, BOS first, and scored in DTYPE
(float32 by default): the NLL of every token but the first, summed in
float64. RESULT.json: {"runtime": "torch 1.13.1 float32", "results":
[{"tokens": N, "nll": X}, ...]} in input order, where tokens counts the
predicted tokens. What this run observed (the device, the times) is
printed and written to FACTS.json, which the rule reports in the build's
events and never puts in the artifact.
"""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F

import cogumi_llama
import cogumi_runtime


def fail(msg):
    print("eval: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def score(model, ids, device):
    """Summed NLL (float64) of ids[1:] given their prefixes."""
    x = torch.tensor([ids], dtype=torch.long, device=device)
    with torch.no_grad():
        logits = model(x)[0, :-1].float()
        logp = F.log_softmax(logits, dim=-1)
        nll = -logp.gather(1, x[0, 1:, None])[:, 0]
    return float(nll.double().sum())


def main(argv):
    if len(argv) not in (4, 5, 6):
        fail("usage: cogumi_eval.py MODEL_DIR TEXTS.jsonl RESULT.json [DTYPE [FACTS.json]]")
    model_dir, texts_path, result_path = argv[1:4]
    dtype = argv[4] if len(argv) >= 5 else "float32"
    device, device_desc = cogumi_llama.pick_device()
    print("scoring on %s in %s with the %s backend" % (device_desc, dtype, cogumi_runtime.backend()), flush=True)
    loading = time.time()
    try:
        model, config, tok = cogumi_runtime.load_model(model_dir, device, dtype)
    except cogumi_llama.CheckpointError as e:
        fail(str(e))
    texts = cogumi_llama.read_texts(texts_path)
    started = time.time()
    results = []
    for i, text in enumerate(texts):
        ids = cogumi_llama.encode_example(tok, config, text)
        if len(ids) < 2:
            results.append({"tokens": 0, "nll": 0.0})
            continue
        results.append({"tokens": len(ids) - 1, "nll": score(model, ids, device)})
    seconds = time.time() - started
    out = {"runtime": cogumi_runtime.describe(dtype), "results": results}
    tmp = result_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f)
    os.replace(tmp, result_path)
    print("scored %d examples, %d tokens on %s in %.2f s (loading %.2f s)"
          % (len(results), sum(r["tokens"] for r in results), device_desc, seconds, started - loading), flush=True)
    if len(argv) == 6:
        cogumi_llama.write_facts(argv[5], {"device": device_desc, "load_seconds": started - loading, "seconds": seconds})


if __name__ == "__main__":
    main(sys.argv)
