"""Writes a small random-weight Llama checkpoint around a real tokenizer:

    python3 tiny_checkpoint.py OUT TOKENIZER_DIR [F32|BF16|F16]

OUT receives the tokenizer files of TOKENIZER_DIR (tokenizer.json,
tokenizer_config.json, tokenizer.model: those present), config.json with
the tokenizer's real vocabulary size and a tiny body (hidden 32, one layer)
and model.safetensors, seeded. A checkpoint for tests of the rules with
real vocabularies: the weights mean nothing."""

import json
import os
import shutil
import sys

import torch

import cogumi_safetensors


def vocab(d):
    """The vocabulary size and the BOS and EOS ids of the tokenizer in d."""
    if not os.path.exists(os.path.join(d, "tokenizer.json")):
        import sentencepiece
        sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
        return sp.GetPieceSize(), sp.bos_id(), sp.eos_id()
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    with open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8") as f:
        tc = json.load(f)
    ids = dict(tok["model"]["vocab"])
    ids.update({a["content"]: a["id"] for a in tok.get("added_tokens") or []})

    def token(k):
        v = tc.get(k)
        return ids[v["content"] if isinstance(v, dict) else v]
    return max(ids.values()) + 1, token("bos_token"), token("eos_token")


def main(out, src, dtype="BF16"):
    os.makedirs(out, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), out)
    (n, bos, eos), h, inter, heads, kv = vocab(src), 32, 64, 4, 2
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": n, "hidden_size": h,
              "intermediate_size": inter, "num_hidden_layers": 1, "num_attention_heads": heads,
              "num_key_value_heads": kv, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "tie_word_embeddings": False, "bos_token_id": bos, "eos_token_id": eos,
              "torch_dtype": {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[dtype]}
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    g = torch.Generator().manual_seed(1)
    hd = h // heads
    shapes = {"model.embed_tokens.weight": [n, h], "lm_head.weight": [n, h], "model.norm.weight": [h],
              "model.layers.0.input_layernorm.weight": [h], "model.layers.0.post_attention_layernorm.weight": [h],
              "model.layers.0.self_attn.q_proj.weight": [heads * hd, h], "model.layers.0.self_attn.k_proj.weight": [kv * hd, h],
              "model.layers.0.self_attn.v_proj.weight": [kv * hd, h], "model.layers.0.self_attn.o_proj.weight": [h, heads * hd],
              "model.layers.0.mlp.gate_proj.weight": [inter, h], "model.layers.0.mlp.up_proj.weight": [inter, h],
              "model.layers.0.mlp.down_proj.weight": [h, inter]}
    want = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}[dtype]
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            t = torch.ones(shape)
        else:
            t = torch.randn(shape, generator=g) * 0.05
        tensors[name] = t.to(want).contiguous()
    cogumi_safetensors.save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})


if __name__ == "__main__":
    main(*sys.argv[1:])
