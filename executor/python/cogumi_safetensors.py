"""Read and write safetensors files with numpy and torch only.

cogumi stages this module into every python action (on PYTHONPATH) because
PyTorch 1.13, the version Debian ships, cannot read safetensors and Debian
has no package for the `safetensors` library. It implements the format as
the reference library writes it:

    8 bytes   little-endian u64 N, the header's length
    N bytes   UTF-8 JSON: {"__metadata__": {str: str},
                           name: {"dtype": "F32", "shape": [..],
                                  "data_offsets": [begin, end]}, ...}
              padded with spaces so that the data starts 8-byte aligned
    data      every tensor's bytes, little-endian, C order, with no gaps

Works on torch 1.13 and 2.x (torch.frombuffer exists since 1.10).
"""

import json
import mmap
import os
import struct
import sys

import numpy as np
import torch

__all__ = ["load_file", "save_file", "load_metadata", "SafetensorsError"]

# safetensors dtype name -> (torch dtype, bytes per element)
_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_NAMES = {dt: name for name, (dt, _) in _DTYPES.items()}

# The reference library refuses headers over 100 MB; so does this module, so
# that a corrupt length cannot make it allocate gigabytes.
_MAX_HEADER = 100_000_000


class SafetensorsError(ValueError):
    """A file that is not valid safetensors, or a tensor that cannot be saved."""


def _read_header(f, path):
    raw = f.read(8)
    if len(raw) != 8:
        raise SafetensorsError("%s: too short for a safetensors file (%d bytes)" % (path, len(raw)))
    (n,) = struct.unpack("<Q", raw)
    if n > _MAX_HEADER:
        raise SafetensorsError("%s: header length %d is implausible (not a safetensors file?)" % (path, n))
    text = f.read(n)
    if len(text) != n:
        raise SafetensorsError("%s: header says %d bytes, file ends after %d" % (path, n, len(text)))
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError("%s: header is not JSON: %s" % (path, e)) from None
    if not isinstance(header, dict):
        raise SafetensorsError("%s: header is not a JSON object" % path)
    return header, 8 + n


def load_metadata(path):
    """Return the file's __metadata__ (a dict of str to str; {} if none)."""
    with open(path, "rb") as f:
        header, _ = _read_header(f, path)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise SafetensorsError("%s: __metadata__ is not an object" % path)
    return meta


def _check_entries(path, header, data_len):
    """Validate every entry as the reference library does: known dtype, sizes
    that match the shape, and offsets that cover the data exactly once."""
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(("dtype", "shape", "data_offsets")) - set(info):
            raise SafetensorsError("%s: tensor %r: entry lacks dtype, shape or data_offsets" % (path, name))
        if info["dtype"] not in _DTYPES:
            raise SafetensorsError("%s: tensor %r: unsupported dtype %r (supported: %s)"
                                   % (path, name, info["dtype"], ", ".join(sorted(_DTYPES))))
        shape, offs = info["shape"], info["data_offsets"]
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise SafetensorsError("%s: tensor %r: bad shape %r" % (path, name, shape))
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)):
            raise SafetensorsError("%s: tensor %r: bad data_offsets %r" % (path, name, offs))
        begin, end = offs
        numel = 1
        for d in shape:
            numel *= d
        want = numel * _DTYPES[info["dtype"]][1]
        if not 0 <= begin <= end <= data_len or end - begin != want:
            raise SafetensorsError("%s: tensor %r: data_offsets %r do not hold %s%r (%d bytes) within %d bytes of data"
                                   % (path, name, offs, info["dtype"], shape, want, data_len))
        spans.append((begin, end, name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise SafetensorsError("%s: tensor %r starts at byte %d of the data, expected %d (gap or overlap)"
                                   % (path, name, begin, pos))
        pos = end
    if pos != data_len:
        raise SafetensorsError("%s: %d bytes of data after the last tensor" % (path, data_len - pos))


def load_file(path, device="cpu"):
    """Load every tensor of a safetensors file: {name: torch.Tensor}.

    The file is memory-mapped (copy-on-write), so tensors are paged in as they
    are used rather than read at once; aligned tensors share the mapping, a
    tensor whose offset does not suit its dtype is copied.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        header, start = _read_header(f, path)
        size = os.fstat(f.fileno()).st_size
        _check_entries(path, header, size - start)
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if size > 0 else b""
    out = {}
    for name in sorted(k for k in header if k != "__metadata__"):
        info = header[name]
        dtype, width = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = info["shape"]
        if end == begin:
            t = torch.empty(shape, dtype=dtype)
        elif (start + begin) % width == 0 and sys.byteorder == "little":
            t = torch.frombuffer(buf, dtype=dtype, count=(end - begin) // width, offset=start + begin).reshape(shape)
        else:
            raw = bytearray(buf[start + begin:start + end])
            if sys.byteorder != "little" and width > 1:
                raw = bytearray(np.frombuffer(raw, dtype="<u%d" % width).byteswap().tobytes())
            t = torch.frombuffer(raw, dtype=dtype).reshape(shape)
        if device != "cpu":
            t = t.to(device)
        out[name] = t
    return out


def _tensor_bytes(name, t):
    """Return (dtype name, shape, little-endian bytes) of a tensor or array."""
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(t))
    if not isinstance(t, torch.Tensor):
        raise SafetensorsError("tensor %r: %s is not a torch.Tensor or numpy array" % (name, type(t).__name__))
    if t.dtype not in _NAMES:
        raise SafetensorsError("tensor %r: dtype %s is not supported (supported: %s)"
                               % (name, t.dtype, ", ".join(sorted(_DTYPES))))
    if t.is_sparse:
        raise SafetensorsError("tensor %r: sparse tensors cannot be saved; call .to_dense()" % name)
    t = t.detach().to("cpu").contiguous()
    width = _DTYPES[_NAMES[t.dtype]][1]
    # numpy has no bfloat16: reinterpret its bits as int16 (same width).
    arr = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
    if sys.byteorder != "little" and width > 1:
        arr = arr.byteswap()
    return _NAMES[t.dtype], list(t.shape), arr.tobytes()


def save_file(tensors, path, metadata=None):
    """Write tensors ({name: tensor}) to path as safetensors, in name order.

    metadata, if given, is a dict of str to str stored as __metadata__. The
    file is written beside path and renamed into place, so a crash never
    leaves a truncated file under the final name.
    """
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError("metadata must be a dict of str to str")
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    pos = 0
    for name in sorted(tensors):
        if not isinstance(name, str) or name == "__metadata__":
            raise SafetensorsError("tensor name %r is not allowed" % (name,))
        dtype, shape, data = _tensor_bytes(name, tensors[name])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + len(data)]}
        blobs.append(data)
        pos += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    path = os.fspath(path)
    tmp = "%s.tmp%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for data in blobs:
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
