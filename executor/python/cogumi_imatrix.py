"""cogumi's imatrix rule: the importance matrix of a Llama checkpoint on
calibration text, accumulated as llama.cpp's llama-imatrix accumulates it
(tools/imatrix/imatrix.cpp of the release node-llama-cpp bundles).

    python3 cogumi_imatrix.py MODEL_DIR TEXT.txt OUT.safetensors PARAMS.json

TEXT.txt is tokenised as one text, BOS first when the tokenizer adds one
(llama-imatrix's common_tokenize(..., add_special = true)). At least two
chunks of `chunk_size` tokens are needed, as llama-imatrix asks; the tokens
are cut into len // chunk_size chunks (at most `chunks` when it is above
0), the rest dropped, and the first token of every chunk is replaced by BOS.
Each chunk is one forward pass from an empty context. Forward hooks on the
linears sum, per input column, the square of every input row of every token
(llama-imatrix asks for the logits of all tokens, so every position counts)
and count the tokens. The linears that read the same input (q/k/v, gate/up)
share one sum, written once under each of their names. lm_head
(output.weight) is counted only when `process_output` is true and the
checkpoint has its own output matrix: with tied embeddings llama.cpp
multiplies by token_embd.weight, which llama-imatrix never collects.

OUT.safetensors holds, per llama.cpp tensor name (blk.N.attn_q.weight,
...), "<name>.in_sum2" (F32, the sums) and "<name>.counts" (F32, one
value: the tokens), and metadata "chunk_count" and "tokens". The Go rule
writes the GGUF from it. The checkpoint loads through cogumi_runtime (the
builtin Llama forward or transformers, as the toolchain's backend says). The
device and times go to the build log and, when PARAMS names a `facts` file,
there.
"""

import json
import sys
import time

import torch

import cogumi_llama
import cogumi_runtime
import cogumi_safetensors

# The Hugging Face linears of one decoder layer whose input is recorded,
# each with the llama.cpp tensors that read that input.
INPUTS = [
    ("self_attn.q_proj", ["attn_q", "attn_k", "attn_v"]),
    ("self_attn.o_proj", ["attn_output"]),
    ("mlp.gate_proj", ["ffn_gate", "ffn_up"]),
    ("mlp.down_proj", ["ffn_down"]),
]


def fail(msg):
    print("imatrix: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def main(argv):
    if len(argv) != 5:
        fail("usage: cogumi_imatrix.py MODEL_DIR TEXT.txt OUT.safetensors PARAMS.json")
    model_dir, text_path, out, params_path = argv[1:]
    with open(params_path, encoding="utf-8") as f:
        p = json.load(f)
    chunk_size, max_chunks = int(p["chunk_size"]), int(p.get("chunks", 0))
    process_output = bool(p.get("process_output", False))
    dtype = p.get("dtype", "float32")
    device, device_desc = cogumi_llama.pick_device()
    print("imatrix on %s in %s with the %s backend" % (device_desc, dtype, cogumi_runtime.backend()), flush=True)
    started = time.time()
    try:
        model, config, tok = cogumi_runtime.load_model(model_dir, device, dtype)
    except cogumi_llama.CheckpointError as e:
        fail(str(e))

    if chunk_size > int(config["max_position_embeddings"]):
        print("imatrix: warning: the model was trained on only %d context tokens (max_position_embeddings); chunk_size is %d"
              % (config["max_position_embeddings"], chunk_size), flush=True)
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    tokens = ([tok.bos] if tok.bos is not None else []) + list(tok.encode(text))
    if len(tokens) < 2 * chunk_size:
        fail("the dataset has %d tokens; llama-imatrix needs at least two chunks of chunk_size = %d, %d tokens: add text or lower chunk_size"
             % (len(tokens), chunk_size, 2 * chunk_size))
    n_chunk = len(tokens) // chunk_size
    if max_chunks > 0:
        n_chunk = min(n_chunk, max_chunks)

    sums = {}
    hooks = []
    for i, layer in enumerate(model.model.layers):
        for hf, names in INPUTS:
            try:
                mod = layer.get_submodule(hf)
            except AttributeError:
                fail("decoder layer %d has no %s: the imatrix rule handles dense Llama-family layers (no experts)" % (i, hf))
            st = {"sum": torch.zeros(mod.in_features, dtype=torch.float64, device=device), "n": 0,
                  "names": ["blk.%d.%s.weight" % (i, n) for n in names]}
            sums[hf + str(i)] = st
            hooks.append(mod.register_forward_hook(make_hook(st)))
    head = getattr(model, "inner", model).lm_head  # cogumi_hf wraps the transformers model
    tied = head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    if process_output and not tied:
        st = {"sum": torch.zeros(head.in_features, dtype=torch.float64, device=device), "n": 0,
              "names": ["output.weight"]}
        sums["output"] = st
        hooks.append(head.register_forward_hook(make_hook(st)))

    loaded = time.time()
    with torch.no_grad():
        for c in range(n_chunk):
            ids = list(tokens[c * chunk_size:(c + 1) * chunk_size])
            if tok.bos is not None:
                ids[0] = tok.bos
            model(torch.tensor([ids], dtype=torch.long, device=device))
    for h in hooks:
        h.remove()

    tensors = {}
    for st in sums.values():
        s = st["sum"].float().cpu().contiguous()
        if not torch.isfinite(s).all():
            fail("non-finite values in the inputs of %s: the model overflows in %s" % (st["names"][0], dtype))
        for name in st["names"]:
            tensors[name + ".in_sum2"] = s
            tensors[name + ".counts"] = torch.tensor([float(st["n"])], dtype=torch.float32)
    cogumi_safetensors.save_file(tensors, out, {"chunk_count": str(n_chunk), "tokens": str(len(tokens))})
    done = time.time()
    print("imatrix of %d linears over %d chunks of %d tokens (%d tokens in the text) on %s in %.2f s (loading %.2f s)"
          % (len(tensors) // 2, n_chunk, chunk_size, len(tokens), device_desc, done - loaded, loaded - started), flush=True)
    if p.get("facts"):
        cogumi_llama.write_facts(p["facts"], {"device": device_desc, "load_seconds": loaded - started, "seconds": done - loaded})


def make_hook(st):
    def hook(module, inputs, output):
        x = inputs[0].detach()
        x2 = x.reshape(-1, x.shape[-1]).double()
        st["sum"] += (x2 * x2).sum(0)
        st["n"] += x2.shape[0]
    return hook


if __name__ == "__main__":
    main(sys.argv)
