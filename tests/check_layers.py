#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails if a file includes a header of a higher layer (docs/design.md):
core < io < audio, ops < dist (optional, MPI) < nn < train < frontends (tools, python, examples, bench). Frontends may include only
public headers (attn/...), never src/ internals; the one exception is named in INTERNAL_ALLOWED."""
import pathlib
import re
import sys

LAYER = {"core": 0, "io": 1, "ops": 2, "audio": 2, "dist": 2.5, "nn": 3, "train": 4}
# bench_tiles measures the fused kernel's micro-kernel itself against OpenBLAS, which only the internal
# header exposes.
INTERNAL_ALLOWED = {("bench/bench_tiles.cc", "ops/internal/attention_kernels.h")}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def layer_of_header(path):
    """attn/ops/x.h -> ops; attn/tensor.h -> core; ops/internal/x.h (src) -> ops."""
    parts = path.split("/")
    if parts[0] == "attn":
        if len(parts) == 2:
            return "core"
        return parts[1] if parts[1] in LAYER else None
    return parts[0] if parts[0] in LAYER else None


def main(root):
    root = pathlib.Path(root)
    errors = []
    checked = 0
    for layer in LAYER:
        for folder in (root / "src" / layer, root / "include" / "attn" / layer):
            for f in sorted(folder.rglob("*")) if folder.exists() else []:
                if f.suffix not in (".h", ".cc", ".cpp"):
                    continue
                checked += 1
                for inc in INCLUDE.findall(f.read_text()):
                    other = layer_of_header(inc)
                    if other is None or other == layer:
                        continue
                    if LAYER[other] > LAYER[layer] or (LAYER[other] == LAYER[layer]):
                        errors.append(f"{f.relative_to(root)}: layer '{layer}' includes '{inc}' of layer '{other}'")
    for folder in ("tools", "python", "examples", "bench"):
        for f in sorted((root / folder).rglob("*")) if (root / folder).exists() else []:
            if f.suffix not in (".h", ".cc", ".cpp"):
                continue
            checked += 1
            for inc in INCLUDE.findall(f.read_text()):
                rel = str(f.relative_to(root))
                if layer_of_header(inc) is not None and not inc.startswith("attn/") and (rel, inc) not in INTERNAL_ALLOWED:
                    errors.append(f"{f.relative_to(root)}: frontend includes internal header '{inc}'")
    # core headers at include/attn/*.h
    for f in sorted((root / "include" / "attn").glob("*.h")):
        checked += 1
        for inc in INCLUDE.findall(f.read_text()):
            other = layer_of_header(inc)
            if other not in (None, "core") and f.name != "attn.h":
                errors.append(f"{f.relative_to(root)}: core header includes '{inc}' of layer '{other}'")
    if checked == 0:
        print("check_layers: no files found under", root)
        return 1
    for e in errors:
        print(e)
    print(f"check_layers: {checked} files, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
