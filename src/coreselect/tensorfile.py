"""A safetensors file's tensors read by memory map: where each lies, from the file's header.

The record cache (:mod:`coreselect.recordcache`) gathers a few rows of many chunks; the
safetensors library reads a tensor whole, this maps it and reads only the rows asked for.

>>> import tempfile
>>> from safetensors.numpy import save_file
>>> p = Path(tempfile.mkdtemp()) / "c.safetensors"
>>> save_file({"x": np.arange(6, dtype=np.float32).reshape(3, 2)}, str(p))
>>> slot = read_header(p)["x"]
>>> slot.shape, slot.map(p)[2].tolist()
((3, 2), [4.0, 5.0])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: safetensors dtype names numpy holds (BF16 and BOOL are not among them).
NUMPY_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
                "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8}


@dataclass(frozen=True)
class TensorSlot:
    """Where one tensor of a chunk lies in its file (read with :meth:`map`)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int

    def map(self, path: Path) -> np.ndarray:
        return np.memmap(path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape)


def read_header(path: Path) -> dict[str, TensorSlot]:
    """The tensors of a safetensors file (dtype, shape, byte offset), checked against its size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n <= 0 or 8 + n > size:
            raise ValueError("bad header length")
        header = json.loads(f.read(n))
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(NUMPY_DTYPES[info["dtype"]])
        shape = tuple(int(d) for d in info["shape"])
        start, end = (int(x) for x in info["data_offsets"])
        if end - start != int(np.prod(shape)) * dtype.itemsize or 8 + n + end > size or start < 0 or not shape[0]:
            raise ValueError(f"{name}: bad offsets")
        out[name] = TensorSlot(dtype, shape, 8 + n + start)
    return out


__all__ = ["NUMPY_DTYPES", "TensorSlot", "read_header"]
