# SPDX-License-Identifier: MIT
"""A minimal safetensors writer (the format: 8-byte little-endian header length, JSON header, raw bytes),
so the fixture and export scripts need only numpy, not the safetensors package."""
import json
import struct

import numpy as np

DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("float16"): "F16"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, numpy array) or (name, ("BF16", uint16 array)); written in this order."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors:
        if isinstance(arr, tuple):
            dtype, arr = arr
        else:
            dtype = DTYPES[arr.dtype]
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
