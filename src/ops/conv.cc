// SPDX-License-Identifier: MIT
// Fast conv2d/conv1d: im2col + one single-threaded sgemm per image and group, images in parallel
// (tested against conv_reference.cc). Why im2col and not a direct kernel: at the shapes of the
// image models (C up to 64, 3×3, 28×28) the GEMM is K = C·9 deep and OH·OW = 784 wide, where
// OpenBLAS runs near peak, and the im2col copy is a few percent of it (docs/images.md has the
// numbers).
#include <algorithm>
#include <cstring>
#include <vector>

#include "attn/ops/conv.h"
#include "core/parallel.h"
#include "ops/internal/blas.h"
#include "ops/internal/conv_checks.h"
#include "ops/internal/dense.h"

namespace attn::internal {

ConvDims conv2d_dims(const char* fn, const Shape& x, const Shape& w, const ops::Conv2dOptions& o) {
  if (o.stride_h < 1 || o.stride_w < 1)
    fail<ValueError>(fn, "stride must be >= 1, got (", o.stride_h, ", ", o.stride_w, ")");
  if (o.pad_h < 0 || o.pad_w < 0)
    fail<ValueError>(fn, "padding must be >= 0, got (", o.pad_h, ", ", o.pad_w, ")");
  if (o.dilation_h < 1 || o.dilation_w < 1)
    fail<ValueError>(fn, "dilation must be >= 1, got (", o.dilation_h, ", ", o.dilation_w, ")");
  if (o.groups < 1) fail<ValueError>(fn, "groups must be >= 1, got ", o.groups);
  check_geometry(fn, "stride", o.stride_h, o.stride_w);
  check_geometry(fn, "padding", o.pad_h, o.pad_w);
  check_geometry(fn, "dilation", o.dilation_h, o.dilation_w);
  ConvDims d{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, o.groups};
  if (d.C_in % d.G != 0 || d.C_out % d.G != 0)
    fail<ValueError>(fn, "groups = ", d.G, " must divide C_in = ", d.C_in, " (x has shape ",
                     x.str(), ") and C_out = ", d.C_out, " (w has shape ", w.str(), ")");
  if (w[1] != d.C_in / d.G)
    fail<ShapeError>(fn, "w has shape ", w.str(), " (C_out, C_in/groups, KH, KW) but x has shape ",
                     x.str(), ": C_in/groups = ", d.C_in / d.G);
  if (d.KH < 1 || d.KW < 1) fail<ShapeError>(fn, "w has shape ", w.str(), ": an empty kernel");
  auto out_size = [fn](int64_t in, int64_t pad, int64_t dil, int64_t k, int64_t stride) {
    const int64_t span = in + 2 * pad - dilated_extent(fn, dil, k);
    return span < 0 ? 0 : span / stride + 1;
  };
  d.OH = out_size(d.H, o.pad_h, o.dilation_h, d.KH, o.stride_h);
  d.OW = out_size(d.W, o.pad_w, o.dilation_w, d.KW, o.stride_w);
  if (d.OH < 1 || d.OW < 1)
    fail<ShapeError>(fn, "the kernel ", w.str(), " with dilation (", o.dilation_h, ", ",
                     o.dilation_w, ") and padding (", o.pad_h, ", ", o.pad_w,
                     ") does not fit x of shape ", x.str(), ": the output would be empty");
  return d;
}

}  // namespace attn::internal

namespace attn::ops {
namespace {

using internal::ConvDims;
using internal::Dense;
using internal::DenseOut;

bool is_pointwise(const ConvDims& d, const Conv2dOptions& p) {
  return d.KH == 1 && d.KW == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 &&
         p.pad_w == 0;
}

// col (cin_g·KH·KW, OH·OW) from the group's channels of one image (cin_g, H, W). Padding reads 0.
void im2col(const float* x, const ConvDims& d, const Conv2dOptions& p, float* col) {
  const int64_t N = d.OH * d.OW;
  for (int64_t c = 0; c < d.cin_g(); ++c)
    for (int64_t kh = 0; kh < d.KH; ++kh)
      for (int64_t kw = 0; kw < d.KW; ++kw) {
        float* row = col + ((c * d.KH + kh) * d.KW + kw) * N;
        const int64_t col_off = kw * p.dilation_w - p.pad_w;
        // Output columns whose input column lies inside the image: ow in [lo, hi).
        const int64_t lo = std::clamp<int64_t>((-col_off + p.stride_w - 1) / p.stride_w, 0, d.OW);
        const int64_t hi =
            std::clamp<int64_t>((d.W - col_off + p.stride_w - 1) / p.stride_w, lo, d.OW);
        for (int64_t oh = 0; oh < d.OH; ++oh) {
          float* dst = row + oh * d.OW;
          const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
          if (ih < 0 || ih >= d.H) {
            std::memset(dst, 0, static_cast<size_t>(d.OW) * sizeof(float));
            continue;
          }
          const float* src = x + (c * d.H + ih) * d.W;  // input column ow·stride + col_off
          std::fill(dst, dst + lo, 0.0f);
          if (p.stride_w == 1) {
            std::memcpy(dst + lo, src + lo + col_off, static_cast<size_t>(hi - lo) * sizeof(float));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * p.stride_w + col_off];
          }
          std::fill(dst + hi, dst + d.OW, 0.0f);
        }
      }
}

// dx (cin_g, H, W) += col2im(dcol): the adjoint of im2col.
void col2im_add(const float* dcol, const ConvDims& d, const Conv2dOptions& p, float* dx) {
  const int64_t N = d.OH * d.OW;
  for (int64_t c = 0; c < d.cin_g(); ++c)
    for (int64_t kh = 0; kh < d.KH; ++kh)
      for (int64_t kw = 0; kw < d.KW; ++kw) {
        const float* row = dcol + ((c * d.KH + kh) * d.KW + kw) * N;
        const int64_t col_off = kw * p.dilation_w - p.pad_w;
        const int64_t lo = std::clamp<int64_t>((-col_off + p.stride_w - 1) / p.stride_w, 0, d.OW);
        const int64_t hi =
            std::clamp<int64_t>((d.W - col_off + p.stride_w - 1) / p.stride_w, lo, d.OW);
        for (int64_t oh = 0; oh < d.OH; ++oh) {
          const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
          if (ih < 0 || ih >= d.H) continue;
          const float* src = row + oh * d.OW;
          float* dst = dx + (c * d.H + ih) * d.W;
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow * p.stride_w + col_off] += src[ow];
        }
      }
}

}  // namespace

Shape conv2d_output_shape(const char* fn, const Shape& x, const Shape& w,
                          const Conv2dOptions& options) {
  if (x.rank() != 4 || w.rank() != 4)
    fail<ShapeError>(fn, "x (B, C_in, H, W) and w (C_out, C_in/groups, KH, KW) must have rank 4, ",
                     "got ", x.str(), " and ", w.str());
  const ConvDims d = internal::conv2d_dims(fn, x, w, options);
  return Shape{d.B, d.C_out, d.OH, d.OW};
}

namespace {

void forward_impl(const char* fn, ConstTensorView x, ConstTensorView w, ConstTensorView bias,
                  const Conv2dOptions& p, TensorView out, const Context& ctx) {
  const ConvDims d = internal::check_conv2d_forward_args(fn, x, w, bias, p, out);
  const Dense xd(x), wd(w), bd(bias);
  DenseOut od(out);
  const int64_t K = d.cin_g() * d.KH * d.KW, N = d.OH * d.OW;
  const bool pointwise = is_pointwise(d, p);
  internal::parallel_for(
      ctx, d.B, static_cast<double>(d.C_out * N * K), [&](int64_t b, int worker) {
        float* col = pointwise ? nullptr : ctx.scratch(worker, K * N);
        for (int64_t g = 0; g < d.G; ++g) {
          const float* xg = xd.data + (b * d.C_in + g * d.cin_g()) * d.H * d.W;
          if (!pointwise) im2col(xg, d, p, col);
          float* og = od.data + (b * d.C_out + g * d.cout_g()) * N;
          internal::gemm_raw(false, false, d.cout_g(), N, K, 1.0f, wd.data + g * d.cout_g() * K, K,
                             pointwise ? xg : col, N, 0.0f, og, N);
        }
        if (bd.data)
          for (int64_t o = 0; o < d.C_out; ++o) {
            float* row = od.data + (b * d.C_out + o) * N;
            for (int64_t n = 0; n < N; ++n) row[n] += bd.data[o];
          }
      });
  od.flush_overwrite();
}

// dbias (C_out) += Σ over images and positions, one channel per task, in double.
void conv_bias_grad(const ConvDims& d, const float* dout, float* dbias, const Context& ctx) {
  const int64_t N = d.OH * d.OW;
  internal::parallel_for(ctx, d.C_out, static_cast<double>(d.B * N), [&](int64_t o, int) {
    double s = 0.0;
    for (int64_t b = 0; b < d.B; ++b) {
      const float* row = dout + (b * d.C_out + o) * N;
      for (int64_t n = 0; n < N; ++n) s += static_cast<double>(row[n]);
    }
    dbias[o] += static_cast<float>(s);
  });
}

// Fixed chunks of images for the weight gradient: their number depends on B alone.
int64_t weight_grad_chunks(int64_t B) { return std::min<int64_t>(B, 16); }

void backward_impl(const char* fn, ConstTensorView x, ConstTensorView w, ConstTensorView dout,
                   const Conv2dOptions& p, TensorView dx, TensorView dw, TensorView dbias,
                   const Context& ctx) {
  const ConvDims d = internal::check_conv2d_backward_args(fn, x, w, dout, p, dx, dw, dbias);
  const Dense xd(x), wd(w), gd(dout);
  DenseOut dxo(dx), dwo(dw), dbo(dbias);
  if (dbo.data) conv_bias_grad(d, gd.data, dbo.data, ctx);
  const int64_t K = d.cin_g() * d.KH * d.KW, N = d.OH * d.OW, WK = d.C_out * K;
  const bool pointwise = is_pointwise(d, p);
  const int64_t chunks = weight_grad_chunks(d.B);
  Tensor partial = dwo.data ? Tensor(Shape{chunks, WK}) : Tensor();
  if (dxo.data || dwo.data)
    internal::parallel_for(
        ctx, chunks, static_cast<double>(2 * d.C_out * N * K * d.B / chunks),
        [&](int64_t chunk, int worker) {
          float* col = ctx.scratch(worker, 2 * K * N);
          float* dcol = col + K * N;
          for (int64_t b = chunk * d.B / chunks; b < (chunk + 1) * d.B / chunks; ++b)
            for (int64_t g = 0; g < d.G; ++g) {
              const float* xg = xd.data + (b * d.C_in + g * d.cin_g()) * d.H * d.W;
              const float* gg = gd.data + (b * d.C_out + g * d.cout_g()) * N;
              const float* wg = wd.data + g * d.cout_g() * K;
              if (dwo.data) {  // partial_g (cout_g, K) += dout_g (cout_g, N) · colᵀ (N, K)
                if (!pointwise) im2col(xg, d, p, col);
                internal::gemm_raw(false, true, d.cout_g(), K, N, 1.0f, gg, N, pointwise ? xg : col,
                                   N, 1.0f, partial.data() + chunk * WK + g * d.cout_g() * K, K);
              }
              if (dxo.data) {  // dcol (K, N) = w_gᵀ (K, cout_g) · dout_g (cout_g, N)
                float* dxg = dxo.data + (b * d.C_in + g * d.cin_g()) * d.H * d.W;
                internal::gemm_raw(true, false, K, N, d.cout_g(), 1.0f, wg, K, gg, N,
                                   pointwise ? 1.0f : 0.0f, pointwise ? dxg : dcol, N);
                if (!pointwise) col2im_add(dcol, d, p, dxg);
              }
            }
        });
  if (dwo.data)  // the chunks' sums, in chunk order
    internal::parallel_for(ctx, (WK + 1023) / 1024, 1024.0 * static_cast<double>(chunks),
                           [&](int64_t block, int) {
                             const int64_t lo = block * 1024, hi = std::min(WK, lo + 1024);
                             for (int64_t i = lo; i < hi; ++i) {
                               float s = 0.0f;
                               for (int64_t c = 0; c < chunks; ++c) s += partial.data()[c * WK + i];
                               dwo.data[i] += s;
                             }
                           });
  dxo.flush_accumulate();
  dwo.flush_accumulate();
  dbo.flush_accumulate();
}

}  // namespace

void conv2d_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias,
                    const Conv2dOptions& options, TensorView out, const Context& ctx) {
  forward_impl("conv2d_forward", x, w, bias, options, out, ctx);
}

void conv2d_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout,
                     const Conv2dOptions& options, TensorView dx, TensorView dw, TensorView dbias,
                     const Context& ctx) {
  backward_impl("conv2d_backward", x, w, dout, options, dx, dw, dbias, ctx);
}

Conv2dOptions as_conv2d(const Conv1dOptions& o) {
  return Conv2dOptions{.stride_h = 1,
                       .stride_w = o.stride,
                       .pad_h = 0,
                       .pad_w = o.padding,
                       .dilation_h = 1,
                       .dilation_w = o.dilation,
                       .groups = o.groups};
}

namespace {
// The (B, C, 1, L) view of a (B, C, L) argument (or (C_out, C_in/groups, 1, K) of a kernel).
template <typename V>
V as_2d(const V& v, const char* fn, const char* name, const char* dims) {
  if (!v.defined()) return v;
  if (v.rank() != 3)
    fail<ShapeError>(fn, name, " must have rank 3 ", dims, " but has shape ", v.shape().str());
  return v.unsqueeze(2);
}
constexpr const char* kNCL = "(B, C, L)";
constexpr const char* kKernel = "(C_out, C_in/groups, K)";
}  // namespace

void conv1d_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias,
                    const Conv1dOptions& options, TensorView out, const Context& ctx) {
  const char* fn = "conv1d_forward";
  forward_impl(fn, as_2d(x, fn, "x", kNCL), as_2d(w, fn, "w", kKernel), bias, as_conv2d(options),
               as_2d(out, fn, "out", kNCL), ctx);
}

void conv1d_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout,
                     const Conv1dOptions& options, TensorView dx, TensorView dw, TensorView dbias,
                     const Context& ctx) {
  const char* fn = "conv1d_backward";
  backward_impl(fn, as_2d(x, fn, "x", kNCL), as_2d(w, fn, "w", kKernel),
                as_2d(dout, fn, "dout", kNCL), as_conv2d(options), as_2d(dx, fn, "dx", kNCL),
                as_2d(dw, fn, "dw", kKernel), dbias, ctx);
}

}  // namespace attn::ops
