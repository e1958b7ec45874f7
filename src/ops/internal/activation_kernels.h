// SPDX-License-Identifier: MIT
// SIMD rows of the GELU (src/ops/activation_kernels.cc, Highway with runtime dispatch). Internal.
#pragma once

#include <cstdint>

namespace attn::internal::kernels {

// y[i] = GELU(x[i]) = x·Φ(x) for i < n, with Φ(x) = 1 - ½·erfc(x/√2) for x >= 0 and ½·erfc(|x|/√2)
// below, erfc by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7, so |error| <= 1e-7·|x| plus
// float rounding). NaN gives NaN, +inf gives +inf, -inf gives NaN (-inf · 0, as x·Φ(x) in IEEE).
// y may be x.
void gelu_row(const float* x, float* y, int64_t n);
// dx[i] += g[i] · GELU'(x[i]), GELU'(x) = Φ(x) + x·φ(x), Φ as above.
void gelu_backward_row(const float* x, const float* g, float* dx, int64_t n);

}  // namespace attn::internal::kernels
