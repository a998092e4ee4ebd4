"""Writes a SentencePiece tokenizer.model equivalent to a SentencePiece-style
tokenizer.json (Llama-2, Mistral: BPE with byte fallback), for tests of the
bare tokenizer.model path against the JavaScript reference.

    python3 spm_from_json.py tokenizer.json tokenizer.model

The ModelProto is written by hand (no protobuf module): the pieces in id
order, <unk> UNKNOWN, special tokens CONTROL, <0x..> BYTE, the others
NORMAL with score -(rank of the merge producing them), so that
SentencePiece's BPE, which merges the best-scored pair first, merges in
the tokenizer.json's order. The trainer spec says BPE with byte fallback;
the normalizer is the identity with a dummy prefix and escaped white space,
as in Llama-2's own tokenizer.model.
"""

import json
import struct
import sys


def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire):
    return varint(num << 3 | wire)


def message(num, b):
    return field(num, 2) + varint(len(b)) + b


def integer(num, v):
    return field(num, 0) + varint(v)


def float32(num, x):
    return field(num, 5) + struct.pack("<f", x)


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    text = {i: t for t, i in vocab.items()}
    special = {a["id"] for a in tok["added_tokens"] if a["special"]}
    unk = vocab[tok["model"]["unk_token"]]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    rank = {}
    for k, m in enumerate(merges):
        rank.setdefault(m.replace(" ", "", 1), k)
    out = b""
    for i in range(len(text)):
        t = text[i]
        if i == unk:
            kind, score = 2, 0.0
        elif i in special:
            kind, score = 3, 0.0
        elif len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            kind, score = 6, 0.0
        else:
            kind, score = 1, -float(rank.get(t, len(merges) + i))
        out += message(1, message(1, t.encode("utf-8")) + float32(2, score) + integer(3, kind))
    # trainer_spec: model_type BPE, byte_fallback, unk/bos/eos ids, no pad.
    out += message(2, integer(3, 2) + integer(35, 1) + integer(40, unk) + integer(41, 1) + integer(42, 2) + integer(43, (1 << 64) - 1))
    # normalizer_spec: identity, add_dummy_prefix, keep white space, escape it.
    out += message(3, message(1, b"identity") + integer(3, 1) + integer(4, 0) + integer(5, 1))
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
