// SPDX-License-Identifier: MIT
// Layer norm over the last dimension, the fast path beside layer_norm_reference.cc: float storage,
// double accumulation of each row's mean and variance (a handful of adds per element), rows in
// parallel; contiguous rows through SIMD row kernels (ops/internal/layer_norm_kernels.h), strided
// ones through the plain loops below.
//
// Work split: rows go in fixed chunks of about kChunkElements elements, so a small tensor is one
// task (no fork/join for it) and the chunking never depends on the thread count. The backward's
// dweight and dbias are summed per chunk, then the chunks are added in order: bitwise the same for
// any thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attn/ops/layer_norm.h"
#include "core/parallel.h"
#include "ops/internal/layer_norm_kernels.h"
#include "ops/internal/norm_checks.h"
#include "ops/internal/rows.h"

namespace attn::ops {

namespace {

// Small enough that the rows of a small model's batch (32 × 12 rows of 64) make several tasks for
// two threads to share, large enough that a task outweighs its fork/join.
constexpr int64_t kChunkElements = 4096;
// Work of one element in multiply-add equivalents, for the threading threshold.
constexpr double kElementCost = 6.0;

// weight(c) and bias(c) as pointers with a stride (a view's operator() recomputes its offset per
// call); null when undefined.
struct Affine {
  const float *w = nullptr, *b = nullptr;
  int64_t ws = 0, bs = 0;
  Affine(ConstTensorView weight, ConstTensorView bias) {
    if (weight.defined()) w = weight.data(), ws = weight.stride(0);
    if (bias.defined()) b = bias.data(), bs = bias.stride(0);
  }
};

struct RowChunks {
  int64_t rows, per_chunk, count;
  RowChunks(int64_t rows_, int64_t C)
      : rows(rows_),
        per_chunk(std::max<int64_t>(1, kChunkElements / std::max<int64_t>(C, 1))),
        count((rows_ + per_chunk - 1) / per_chunk) {}
  int64_t begin(int64_t chunk) const { return chunk * per_chunk; }
  int64_t end(int64_t chunk) const { return std::min(rows, (chunk + 1) * per_chunk); }
};

template <typename T>
std::vector<int64_t> offsets_of(const BasicView<T>& v) {
  std::vector<int64_t> o;
  for_each_offset(v, [&](int64_t off) { o.push_back(off); });
  return o;
}

}  // namespace

void layer_norm_forward(ConstTensorView x, ConstTensorView weight, ConstTensorView bias, double eps,
                        TensorView out, TensorView mean, TensorView rstd, const Context& ctx) {
  internal::check_layer_norm_forward_args(x, weight, bias, eps, out, mean, rstd);
  const int64_t C = x.dim(-1), xs = x.stride(-1), os = out.stride(-1);
  const auto xr = internal::row_offsets(x), orow = internal::row_offsets(out);
  const auto mr = offsets_of(mean), rr = offsets_of(rstd);
  const RowChunks chunks(static_cast<int64_t>(xr.size()), C);
  const Affine a(weight, bias);
  const double work = kElementCost * static_cast<double>(chunks.per_chunk * C);
  const bool contiguous = xs == 1 && os == 1 && (!a.w || a.ws == 1) && (!a.b || a.bs == 1);
  internal::parallel_for(ctx, chunks.count, work, [&](int64_t chunk, int) {
    for (int64_t r = chunks.begin(chunk); r < chunks.end(chunk); ++r) {
      const float* xp = x.data() + xr[static_cast<size_t>(r)];
      if (contiguous) {
        internal::kernels::layer_norm_row(
            xp, C, eps, a.w, a.b, out.data() + orow[static_cast<size_t>(r)],
            mean.data() + mr[static_cast<size_t>(r)], rstd.data() + rr[static_cast<size_t>(r)]);
        continue;
      }
      double sum = 0.0;
      for (int64_t c = 0; c < C; ++c) sum += static_cast<double>(xp[c * xs]);
      const double m = sum / static_cast<double>(C);
      double sq = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        const double d = static_cast<double>(xp[c * xs]) - m;
        sq += d * d;
      }
      const float mf = static_cast<float>(m),
                  s = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(C) + eps));
      float* op = out.data() + orow[static_cast<size_t>(r)];
      for (int64_t c = 0; c < C; ++c) {
        float y = (xp[c * xs] - mf) * s;
        if (a.w) y *= a.w[c * a.ws];
        if (a.b) y += a.b[c * a.bs];
        op[c * os] = y;
      }
      mean.data()[mr[static_cast<size_t>(r)]] = mf;
      rstd.data()[rr[static_cast<size_t>(r)]] = s;
    }
  });
}

// Forward: xhat = (x − μ)·σ⁻¹, y = xhat ⊙ w + b. With g = dy ⊙ w (or dy without weight):
//   dx = σ⁻¹ · (g − mean(g) − xhat · mean(g ⊙ xhat)),   dw = Σ_rows dy ⊙ xhat,   db = Σ_rows dy.
void layer_norm_backward(ConstTensorView x, ConstTensorView weight, ConstTensorView mean,
                         ConstTensorView rstd, ConstTensorView dout, TensorView dx,
                         TensorView dweight, TensorView dbias, const Context& ctx) {
  internal::check_layer_norm_backward_args(x, weight, mean, rstd, dout, dx, dweight, dbias);
  const int64_t C = x.dim(-1), xs = x.stride(-1), gs = dout.stride(-1);
  const auto xr = internal::row_offsets(x), gr = internal::row_offsets(dout);
  const auto dxr = dx.defined() ? internal::row_offsets(dx) : std::vector<int64_t>{};
  const auto mr = offsets_of(mean), rr = offsets_of(rstd);
  const RowChunks chunks(static_cast<int64_t>(xr.size()), C);
  const bool params = dweight.defined() || dbias.defined();
  // Per chunk: Σ dy ⊙ xhat (first C) and Σ dy (next C), in double.
  std::vector<double> partial(params ? static_cast<size_t>(chunks.count * 2 * C) : 0, 0.0);
  const Affine a(weight, ConstTensorView());
  const double work = 2 * kElementCost * static_cast<double>(chunks.per_chunk * C);
  const int64_t ds = dx.defined() ? dx.stride(-1) : 1;
  const bool contiguous = xs == 1 && gs == 1 && ds == 1 && (!a.w || a.ws == 1);
  internal::parallel_for(ctx, chunks.count, work, [&](int64_t chunk, int) {
    std::vector<float> xhat(contiguous ? 0 : static_cast<size_t>(C)),
        g(contiguous ? 0 : static_cast<size_t>(C));
    double* pw = params ? partial.data() + chunk * 2 * C : nullptr;
    for (int64_t r = chunks.begin(chunk); r < chunks.end(chunk); ++r) {
      const auto ur = static_cast<size_t>(r);
      const float m = mean.data()[mr[ur]], s = rstd.data()[rr[ur]];
      const float* xp = x.data() + xr[ur];
      const float* gp = dout.data() + gr[ur];
      if (contiguous) {
        internal::kernels::layer_norm_backward_row(
            xp, gp, C, m, s, a.w, dx.defined() ? dx.data() + dxr[ur] : nullptr, pw);
        continue;
      }
      double g_sum = 0.0, gx_sum = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        const auto uc = static_cast<size_t>(c);
        const float dy = gp[c * gs];
        xhat[uc] = (xp[c * xs] - m) * s;
        g[uc] = a.w ? dy * a.w[c * a.ws] : dy;
        g_sum += static_cast<double>(g[uc]);
        gx_sum += static_cast<double>(g[uc]) * static_cast<double>(xhat[uc]);
        if (pw) {
          pw[c] += static_cast<double>(dy) * static_cast<double>(xhat[uc]);
          pw[C + c] += static_cast<double>(dy);
        }
      }
      if (!dx.defined()) continue;
      const float g_mean = static_cast<float>(g_sum / static_cast<double>(C));
      const float gx_mean = static_cast<float>(gx_sum / static_cast<double>(C));
      float* dp = dx.data() + dxr[ur];
      for (int64_t c = 0; c < C; ++c) {
        const auto uc = static_cast<size_t>(c);
        dp[c * ds] += s * (g[uc] - g_mean - xhat[uc] * gx_mean);
      }
    }
  });
  if (!params) return;
  for (int64_t c = 0; c < C; ++c) {
    double w = 0.0, b = 0.0;
    for (int64_t chunk = 0; chunk < chunks.count; ++chunk) {
      w += partial[static_cast<size_t>(chunk * 2 * C + c)];
      b += partial[static_cast<size_t>(chunk * 2 * C + C + c)];
    }
    if (dweight.defined()) dweight(c) += static_cast<float>(w);
    if (dbias.defined()) dbias(c) += static_cast<float>(b);
  }
}

}  // namespace attn::ops
