#!/usr/bin/env python3
"""Print a summary of a safetensors file as the Python `safetensors` package
reads it, to compare with what cogumi's Go writer meant to write.

Usage: python3 check_safetensors.py FILE [EXPECTED]

One line per tensor, sorted by name: NAME DTYPE [SHAPE] sha256:HEX (of the
tensor's raw little-endian bytes), then one `metadata {...}` line. With
EXPECTED (written by `go test ./safetensors -run TestPythonCheckFixture`,
see python_check_test.go), it also compares and exits 1 on a difference.
Uses torch when it is installed (needed for BF16), numpy otherwise.
"""
import hashlib
import json
import sys

from safetensors import safe_open


def load(path):
    try:
        import torch
        from safetensors.torch import load_file
    except ImportError:
        from safetensors.numpy import load_file
        arrays = load_file(path)
        names = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64",
                 "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
        return {k: (names[str(a.dtype)], list(a.shape), a.tobytes()) for k, a in arrays.items()}
    names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
             torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
             torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
    out = {}
    for k, t in load_file(path).items():
        flat = t.contiguous().reshape(-1)
        raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        out[k] = (names[t.dtype], list(t.shape), raw)
    return out


def summary(path):
    lines = []
    for name, (dtype, shape, raw) in sorted(load(path).items()):
        shape_s = "[" + ", ".join(str(d) for d in shape) + "]"
        lines.append(f"{name} {dtype} {shape_s} sha256:{hashlib.sha256(raw).hexdigest()}")
    with safe_open(path, framework="np") as f:
        meta = f.metadata() or {}
    lines.append("metadata " + json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    return "\n".join(lines) + "\n"


def main():
    got = summary(sys.argv[1])
    sys.stdout.write(got)
    if len(sys.argv) > 2:
        with open(sys.argv[2], encoding="utf-8") as f:
            want = f.read()
        if got != want:
            sys.stdout.write("MISMATCH; expected:\n" + want)
            sys.exit(1)
        print("OK: the Python safetensors package reads what cogumi wrote")


if __name__ == "__main__":
    main()
