#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ctest's entry to the Python suite: exit 77 (skipped) when pytest is not installed, else pytest's code."""
import sys

try:
    import pytest
except ImportError:
    print("python3-pytest is not installed: skipping the Python tests")
    sys.exit(77)

sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
