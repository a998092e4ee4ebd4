"""Tests of cogumi_safetensors; run with `python3 -m unittest` in this
directory. Skipped when torch is not installed (Debian: python3-torch)."""

import gc
import json
import os
import struct
import tempfile
import unittest

try:
    import numpy as np
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

if torch is not None:
    import cogumi_safetensors as st


def raw_file(header, data=b"", pad=True):
    """Build a safetensors file by hand, bypassing the module under test."""
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + data


@unittest.skipIf(torch is None, "torch is not installed")
class SafetensorsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def path(self, name="t.safetensors"):
        return os.path.join(self.dir.name, name)

    def write(self, content, name="t.safetensors"):
        with open(self.path(name), "wb") as f:
            f.write(content)
        return self.path(name)

    def test_round_trip_every_dtype(self):
        g = torch.Generator().manual_seed(0)
        base = torch.randn(3, 5, generator=g)
        base[0, 0], base[0, 1], base[0, 2] = float("nan"), float("inf"), -0.0
        tensors = {
            "f32": base,
            "f64": base.double(),
            "f16": base.half(),
            "bf16": base.to(torch.bfloat16),
            "i64": torch.tensor([-(2 ** 63), 2 ** 63 - 1, 0]),
            "i32": torch.arange(-6, 6, dtype=torch.int32).reshape(3, 4),
            "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
            "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
            "u8": torch.arange(256, dtype=torch.uint8),
            "bool": torch.tensor([[True, False], [False, True]]),
            "scalar": torch.tensor(3.5),
            "empty": torch.zeros(0, 3),
            "transposed": base.t(),  # not contiguous
            "numpy": np.arange(6, dtype=np.float32).reshape(2, 3),
        }
        st.save_file(tensors, self.path(), metadata={"format": "pt"})
        got = st.load_file(self.path())
        self.assertEqual(sorted(got), sorted(tensors))
        for name, want in tensors.items():
            if isinstance(want, np.ndarray):
                want = torch.from_numpy(want)
            with self.subTest(name=name):
                self.assertEqual(got[name].dtype, want.dtype)
                self.assertEqual(tuple(got[name].shape), tuple(want.shape))
                # Compare bits, so that NaN and -0.0 count too.
                if want.dtype == torch.bfloat16:
                    a, b = got[name].view(torch.int16), want.contiguous().view(torch.int16)
                else:
                    a, b = got[name], want.contiguous()
                self.assertEqual(a.numpy().tobytes(), b.numpy().tobytes())
        self.assertEqual(st.load_metadata(self.path()), {"format": "pt"})

    def test_exact_bytes(self):
        st.save_file({"a": torch.tensor([1.0, 2.0])}, self.path())
        header = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
        header += b" " * (-(8 + len(header)) % 8)
        want = struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0)
        with open(self.path(), "rb") as f:
            self.assertEqual(f.read(), want)

    def test_layout(self):
        tensors = {"b.weight": torch.ones(3, dtype=torch.float16), "a.weight": torch.ones(2, 2),
                   "c": torch.ones(1, dtype=torch.int8), "model.layers.10.x": torch.zeros(5)}
        for meta in (None, {"k": "v" * 13}):
            st.save_file(tensors, self.path(), metadata=meta)
            with open(self.path(), "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
                rest = f.read()
            self.assertEqual((8 + n) % 8, 0, "data must start 8-byte aligned")
            names = [k for k in header if k != "__metadata__"]
            offsets = [header[k]["data_offsets"] for k in sorted(names)]
            pos = 0
            for begin, end in offsets:  # contiguous in name order
                self.assertEqual(begin, pos)
                pos = end
            self.assertEqual(pos, len(rest))
            self.assertEqual("__metadata__" in header, meta is not None)

    def test_misaligned_offsets_load(self):
        # A 1-element F16 first puts the F32 at offset 2: legal, unaligned.
        data = np.array([1.5], dtype="<f2").tobytes() + np.array([3.25, -1.0], dtype="<f4").tobytes()
        path = self.write(raw_file({
            "a": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [2, 10]},
        }, data))
        got = st.load_file(path)
        self.assertEqual(got["a"].tolist(), [1.5])
        self.assertEqual(got["b"].tolist(), [3.25, -1.0])

    def test_unpadded_header_loads(self):
        path = self.write(raw_file({"x": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}},
                                   struct.pack("<i", 7), pad=False))
        self.assertEqual(st.load_file(path)["x"].tolist(), [7])

    def test_tensors_outlive_the_mapping(self):
        st.save_file({"w": torch.arange(1000, dtype=torch.float32)}, self.path())
        w = st.load_file(self.path())["w"]
        gc.collect()
        os.remove(self.path())
        self.assertEqual(float(w.sum()), 499500.0)
        w += 1  # copy-on-write: writable, and the file is not changed

    def test_bad_files(self):
        good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
        cases = {
            "short": (b"\x01\x02", "too short"),
            "huge header": (struct.pack("<Q", 2 ** 40), "implausible"),
            "truncated header": (struct.pack("<Q", 100) + b"{}", "file ends"),
            "not json": (struct.pack("<Q", 8) + b"notjson!", "not JSON"),
            "not an object": (raw_file([1, 2]), "not a JSON object"),
            "data too short": (raw_file(good, b"\0" * 4), "do not hold F32[2]"),
            "data left over": (raw_file(good, b"\0" * 12), "4 bytes of data after"),
            "gap": (raw_file({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}, b"\0\0"), "gap or overlap"),
            "dtype": (raw_file({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"\0"), "unsupported dtype"),
            "entry": (raw_file({"a": {"dtype": "F32"}}), "lacks dtype, shape or data_offsets"),
            "shape": (raw_file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}), "bad shape"),
        }
        for name, (content, message) in cases.items():
            with self.subTest(name=name):
                path = self.write(content, name + ".safetensors")
                with self.assertRaises(st.SafetensorsError) as cm:
                    st.load_file(path)
                self.assertIn(message, str(cm.exception))
                self.assertIn(path, str(cm.exception))

    def test_save_errors_leave_nothing(self):
        with self.assertRaises(st.SafetensorsError):
            st.save_file({"a": torch.zeros(2, dtype=torch.complex64)}, self.path())
        with self.assertRaises(st.SafetensorsError):
            st.save_file({"a": torch.zeros(2)}, self.path(), metadata={"n": 1})
        with self.assertRaises(st.SafetensorsError):
            st.save_file({"__metadata__": torch.zeros(2)}, self.path())
        self.assertEqual(os.listdir(self.dir.name), [])

    def test_reference_library_agrees(self):
        try:
            from safetensors.torch import load_file as ref_load, save_file as ref_save
        except ImportError:
            self.skipTest("the safetensors package is not installed")
        tensors = {"w": torch.randn(4, 4).to(torch.bfloat16), "b": torch.arange(3)}
        st.save_file(tensors, self.path("ours.safetensors"))
        ref = ref_load(self.path("ours.safetensors"))
        ref_save(tensors, self.path("ref.safetensors"))
        ours = st.load_file(self.path("ref.safetensors"))
        for name in tensors:
            self.assertTrue(torch.equal(ref[name], tensors[name]))
            self.assertTrue(torch.equal(ours[name], tensors[name]))


if __name__ == "__main__":
    unittest.main()
