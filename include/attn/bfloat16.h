// SPDX-License-Identifier: MIT
// bfloat16: a storage type (the top 16 bits of an IEEE float32: sign, 8 exponent bits, 7 mantissa
// bits). Values convert to float exactly; floats convert to bf16 by rounding to nearest even, as
// PyTorch's .to(torch.bfloat16) and the CPUs' vcvtneps2bf16 do. NaN stays NaN (quiet), ±inf stays
// ±inf, and a finite float past the largest bf16 (3.39e38) rounds to ±inf. There is no arithmetic
// on bf16: kernels widen to float (docs/kernels.md, "bf16 storage").
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace attn {

struct bf16 {
  uint16_t bits;  // no initialiser: a trivial type (tensors zero and copy it with memset/memmove)

  bf16() = default;
  explicit bf16(float x) : bits(round_from(x)) {}
  explicit operator float() const { return to_float(bits); }
  explicit operator double() const { return static_cast<double>(to_float(bits)); }

  static bf16 from_bits(uint16_t b) {
    bf16 h;
    h.bits = b;
    return h;
  }
  static float to_float(uint16_t b) {
    const uint32_t u = static_cast<uint32_t>(b) << 16;
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
  }
  // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate. A NaN keeps
  // its sign and gets the quiet bit, so a NaN payload in the low 16 bits cannot round to inf.
  static uint16_t round_from(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
  }
};
static_assert(sizeof(bf16) == 2 && std::is_trivial_v<bf16>);

}  // namespace attn
