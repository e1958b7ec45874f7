// SPDX-License-Identifier: MIT
// SIMD rows of layer norm (src/ops/layer_norm_kernels.cc, Highway with runtime dispatch), for rows
// whose elements are contiguous. Internal: ops/layer_norm.cc takes these for unit strides and its
// scalar loops otherwise.
#pragma once

#include <cstdint>

namespace attn::internal::kernels {

// One row of C elements: mean μ and variance σ² of x in double (Σx, then Σ(x − μ)²), rstd =
// 1/√(σ² + eps); out[c] = (x[c] − μ)·rstd, times w[c] and plus b[c] where given (float). w, b may
// be null; out may be x. *mean and *rstd get μ and rstd rounded to float.
void layer_norm_row(const float* x, int64_t C, double eps, const float* w, const float* b,
                    float* out, float* mean, float* rstd);

// The backward of one row: xhat = (x − mean)·rstd, g = dy·w (dy when w is null);
// dx[c] += rstd·(g − mean(g) − xhat·mean(g·xhat)) with both means summed in double, when dx is not
// null; pw[c] += dy·xhat and pw[C + c] += dy, in double, when pw is not null.
void layer_norm_backward_row(const float* x, const float* dy, int64_t C, float mean, float rstd,
                             const float* w, float* dx, double* pw);

}  // namespace attn::internal::kernels
