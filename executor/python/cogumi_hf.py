"""The transformers backend of cogumi's torch runtime (cogumi_runtime):
a checkpoint loaded with AutoModelForCausalLM and AutoTokenizer (its
tokenizer.json run as written, see Tokenizer), for
every architecture transformers runs.

The model is wrapped so that calling it on token ids returns the logits
and model.model.layers are the decoder layers, as with cogumi_llama; the
tokenizer, so that encode(text) gives the ids without special tokens and
bos is the token the tokenizer itself puts first (None where it puts
none, as Qwen's do): the calls calibrate, eval and lora make of either
backend.
"""

import torch
import torch.nn as nn

import cogumi_llama


class Model(nn.Module):
    """A transformers causal LM called on ids, returning logits."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.model = inner.model

    def forward(self, ids):
        return self.inner(input_ids=ids, use_cache=False).logits


class Tokenizer:
    """A text's ids without special tokens, and the BOS AutoTokenizer puts
    first.

    The ids come from the checkpoint's tokenizer.json as written, run by
    the tokenizers library, when there is one: transformers 5's
    LlamaTokenizer rebuilds the normalizer and pre-tokenizer from its own
    defaults and ignores the file's, so for Llama 2's tokenizer
    " Hello  world" loses the ▁ that SentencePiece, llama.cpp and the
    file itself give it. The built-in backend and llama.cpp follow the
    file; so does this one, and the two backends agree on ids.
    """

    def __init__(self, tok, pipeline=None):
        self.tok = tok
        self.pipeline = pipeline
        self.bos = first_special(tok)

    def encode(self, text):
        if self.pipeline is not None:
            return self.pipeline.encode(text, add_special_tokens=False).ids
        return self.tok.encode(text, add_special_tokens=False)


def load_tokenizer(d):
    """The Tokenizer of checkpoint directory d."""
    import os

    import tokenizers
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(d)
    path = os.path.join(d, "tokenizer.json")
    pipeline = tokenizers.Tokenizer.from_file(path) if os.path.exists(path) else None
    return Tokenizer(tok, pipeline)


def first_special(tok):
    """The token the tokenizer adds before a text, if it adds one: read
    from what it does, so a tokenizer_config.json's add_bos_token and a
    post-processor's template are both honoured."""
    plain = tok.encode("a", add_special_tokens=False)
    special = tok.encode("a", add_special_tokens=True)
    if len(special) > len(plain) and special[1:1 + len(plain)] == plain:
        return special[0]
    return None


def load_model(path, device, dtype="float32"):
    """The checkpoint under path as (Model, config dict, Tokenizer), on
    device, computing in dtype."""
    import transformers

    d = cogumi_llama.find_checkpoint(path)
    c = cogumi_llama.load_config(d)
    compute = cogumi_llama.DTYPES.get(dtype)
    if compute is None:
        raise cogumi_llama.CheckpointError("dtype %r: use one of %s" % (dtype, ", ".join(cogumi_llama.DTYPES)))
    cogumi_llama.check_dtype(device, compute)
    try:
        tok = load_tokenizer(d)
        # transformers 5 names the argument dtype; 4.x torch_dtype.
        try:
            inner = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=compute, attn_implementation="eager")
        except TypeError:
            inner = transformers.AutoModelForCausalLM.from_pretrained(d, torch_dtype=compute, attn_implementation="eager")
    except (OSError, ValueError, KeyError) as e:
        raise cogumi_llama.CheckpointError("%s: transformers cannot load it: %s" % (d, e)) from None
    inner.to(device)
    inner.eval()
    for p in inner.parameters():
        p.requires_grad_(False)
    return Model(inner), c, tok
