"""The torch runtime's backends: how calibrate, imatrix, eval and lora load a
checkpoint and its tokenizer.

cogumi chooses the backend (toolchain "python" { backend = ... }) and
passes it in COGUMI_TORCH_BACKEND: "builtin" is cogumi_llama (its own
Llama-family forward and tokenizers, torch only), "transformers" is
cogumi_hf (AutoModelForCausalLM and AutoTokenizer). "auto", which cogumi
passes only where it could not probe the interpreter (a version declared
for a cluster), picks transformers when it can be imported, as the probe
does. Both backends give a model called on token ids that returns logits,
whose decoder layers are model.model.layers with Hugging Face's module
names, and a tokenizer with encode(text) and bos.
"""

import importlib.util
import os

import cogumi_llama

BACKENDS = ("auto", "transformers", "builtin")


def backend():
    """The backend to load with: transformers or builtin."""
    asked = os.environ.get("COGUMI_TORCH_BACKEND", "") or "auto"
    if asked not in BACKENDS:
        raise cogumi_llama.CheckpointError("COGUMI_TORCH_BACKEND %r: use one of %s" % (asked, ", ".join(BACKENDS)))
    if asked == "auto":
        return "transformers" if importlib.util.find_spec("transformers") is not None else "builtin"
    return asked


def load_model(path, device, dtype="float32"):
    """The checkpoint under path (model, config, tokenizer) on device in
    dtype, through the chosen backend."""
    if backend() == "transformers":
        import cogumi_hf
        return cogumi_hf.load_model(path, device, dtype)
    return cogumi_llama.load_model(path, device, dtype)


def describe(dtype):
    """The runtime as the artifacts name it: "torch 2.6.0 float32", or with
    transformers "transformers 5.0.0 torch 2.6.0 float32"."""
    torch = "torch %s %s" % (cogumi_llama.torch_version(), dtype)
    if backend() == "transformers":
        import transformers
        return "transformers %s %s" % (transformers.__version__, torch)
    return torch
