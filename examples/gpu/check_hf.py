#!/usr/bin/env python3
"""Check a checkpoint written by train.py against Hugging Face transformers:
  python3 check_hf.py CHECKPOINT_DIR
loads it with transformers' LlamaForCausalLM and AutoTokenizer (where they
are installed) and compares their logits and token ids with tiny_llama's, on
the same text. Exits 1 on a mismatch; prints what it compared."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import cogumi_safetensors  # noqa: E402
from tiny_llama import ByteTokenizer, LlamaForCausalLM  # noqa: E402


def main(d):
    import json
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    ours = LlamaForCausalLM(config)
    state = {k: v.float() for k, v in cogumi_safetensors.load_file(os.path.join(d, "model.safetensors")).items()}
    ours.load_state_dict(state, strict=not config.get("tie_word_embeddings"))
    ours.eval()
    text = "The grey owl reads in the library at night."
    tok = ByteTokenizer.from_checkpoint(d, config)
    ids = torch.cat([torch.tensor([tok.bos]), tok.encode(text)])[None]
    try:
        import transformers
    except ImportError:
        print("transformers is not installed: nothing to compare")
        return 0
    hf_tok = transformers.AutoTokenizer.from_pretrained(d)
    hf_ids = hf_tok(text, return_tensors="pt")["input_ids"]
    print("transformers %s: token ids %s" % (transformers.__version__, "match" if torch.equal(hf_ids, ids) else "DIFFER"))
    hf = transformers.LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
    hf.eval()
    with torch.no_grad():
        a, b = ours(ids), hf(ids).logits
    diff = (a - b).abs().max().item()
    print("logits: max |ours - transformers| = %.3g over %s" % (diff, list(a.shape)))
    return 0 if torch.equal(hf_ids, ids) and diff < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
