// SPDX-License-Identifier: MIT
// The `attn._attn` extension: numpy arrays in and out, zero-copy for float32 of any non-negative
// strides. The Python layer (python/attn/*.py) gives PyTorch's argument names and broadcasting;
// this file only turns arrays into views, releases the GIL while kernels run, and maps attn::Error
// to Python exceptions.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "attn/attn.h"
#include "audio_bindings.h"
#include "module_bindings.h"

namespace py = pybind11;

namespace attn::python {

namespace {

template <typename T>
BasicView<const T> const_view(const py::array& a, const char* name) {
  // The Python layer converts; this guards the extension against a caller that did not.
  if (!a.dtype().is(py::dtype::of<T>()))
    fail<ValueError>("attn", name, " has dtype ", std::string(py::str(a.dtype())), " but ",
                     sizeof(T) == 4 ? "float32" : "float64", " (the dtype of query) is expected");
  if (a.ndim() > kMaxRank)
    fail<ShapeError>("attn", name, " has rank ", a.ndim(), "; at most ", kMaxRank, " is supported");
  std::vector<int64_t> dims(static_cast<size_t>(a.ndim()));
  Strides strides{};
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    dims[static_cast<size_t>(i)] = a.shape(i);
    const py::ssize_t st = a.strides(i);
    if (st < 0 || st % static_cast<py::ssize_t>(sizeof(T)) != 0)
      fail<ValueError>("attn", name, " has a negative or unaligned stride (", st, " bytes)");
    strides[static_cast<size_t>(i)] = st / static_cast<py::ssize_t>(sizeof(T));
  }
  return BasicView<const T>(static_cast<const T*>(a.data()), Shape(std::span<const int64_t>(dims)),
                            strides);
}

// zero: for outputs that kernels accumulate into (gradients); forward outputs are overwritten
// whole.
template <typename T>
py::array_t<T> new_array(const Shape& shape, bool zero) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<T> a(dims);
  if (zero) std::fill(a.mutable_data(), a.mutable_data() + a.size(), T{});
  return a;
}

template <typename T>
BasicView<T> mut_view(py::array_t<T>& a) {
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  return BasicView<T>(a.mutable_data(), Shape(std::span<const int64_t>(dims)));
}

struct MaskArgs {
  ops::AttentionMask mask;
  std::optional<double> scale;
};

MaskArgs mask_args(bool causal, int64_t query_offset, int64_t window_left, int64_t window_right,
                   int64_t dilation, int64_t chunk_size, int64_t num_left_chunks,
                   std::optional<std::vector<int64_t>> key_lengths,
                   std::optional<std::vector<float>> alibi_slopes, std::optional<double> scale) {
  MaskArgs m;
  m.mask.causal = causal;
  m.mask.query_offset = query_offset;
  m.mask.window_left = window_left;
  m.mask.window_right = window_right;
  m.mask.dilation = dilation;
  m.mask.chunk_size = chunk_size;
  m.mask.num_left_chunks = num_left_chunks;
  if (key_lengths) m.mask.key_lengths = *key_lengths;
  if (alibi_slopes) m.mask.alibi_slopes = *alibi_slopes;
  m.scale = scale;
  return m;
}

bool is_float64(const py::array& a) { return a.dtype().is(py::dtype::of<double>()); }

// The inputs' finiteness check of the Python entry points (docs/masks.md); a float mask may hold
// -inf (it masks).
constexpr std::string_view kFiniteHint =
    "; check_finite=False (or attn.set_check_finite(False)) accepts it";
template <typename T>
void check_inputs_finite(const char* fn,
                         std::initializer_list<std::pair<const char*, BasicView<const T>>> inputs,
                         BasicView<const T> bias) {
  for (const auto& [name, view] : inputs) check_finite(fn, name, view, kFiniteHint);
  if (bias.defined()) check_finite(fn, "attn_mask", bias, kFiniteHint, true);
}

// q, k, v (and bias) are 4-D arrays of one dtype (the Python layer checks and broadcasts).
template <typename T>
py::tuple sdpa_impl(const py::array& q, const py::array& k, const py::array& v,
                    const std::optional<py::array>& bias, const MaskArgs& m, bool want_probs,
                    bool check) {
  const auto qv = const_view<T>(q, "query"), kv = const_view<T>(k, "key"),
             vv = const_view<T>(v, "value");
  const BasicView<const T> bv = bias ? const_view<T>(*bias, "attn_mask") : BasicView<const T>();
  if (check)
    check_inputs_finite<T>("scaled_dot_product_attention",
                           {{"query", qv}, {"key", kv}, {"value", vv}}, bv);
  ops::AttentionOptions options;
  options.mask = m.mask;
  options.scale = m.scale;
  // Validate (and get the shapes) before allocating outputs: a throw here names the bad argument.
  if (qv.rank() != 4 || kv.rank() != 4 || vv.rank() != 4)
    fail<ShapeError>("scaled_dot_product_attention", "query, key and value must be 4-D here, got ",
                     qv.shape().str(), ", ", kv.shape().str(), ", ", vv.shape().str());
  const int64_t B = qv.dim(0), NH = qv.dim(1), T_ = qv.dim(2), S = kv.dim(2), HS = qv.dim(3),
                HSV = vv.dim(3);
  auto out = new_array<T>(Shape{B, NH, T_, HSV}, false);
  auto lse = new_array<T>(Shape{B, NH, T_}, false);
  py::object probs = py::none();
  py::array_t<T> probs_arr;
  if (want_probs) {
    probs_arr = new_array<T>(Shape{B, NH, T_, S}, false);
    probs = probs_arr;
  }
  auto ov = mut_view(out), lv = mut_view(lse);
  BasicView<T> pv = want_probs ? mut_view(probs_arr) : BasicView<T>();
  const double scale = m.scale ? *m.scale : (HS > 0 ? ops::default_attention_scale(HS) : 1.0);
  {
    py::gil_scoped_release release;
    if constexpr (std::is_same_v<T, float>)
      ops::attention_forward(qv, kv, vv, m.mask, bv, scale, ov, lv, pv, thread_context());
    else
      ops::reference::attention_forward(qv, kv, vv, m.mask, bv, scale, ov, lv, pv,
                                        thread_context());
  }
  return py::make_tuple(out, lse, probs);
}

template <typename T>
py::tuple sdpa_backward_impl(const py::array& q, const py::array& k, const py::array& v,
                             const py::array& out, const py::array& lse, const py::array& dout,
                             const std::optional<py::array>& bias, const MaskArgs& m,
                             bool want_dbias, bool check) {
  const auto qv = const_view<T>(q, "query"), kv = const_view<T>(k, "key"),
             vv = const_view<T>(v, "value");
  const auto ov = const_view<T>(out, "out"), lv = const_view<T>(lse, "lse"),
             gv = const_view<T>(dout, "grad_out");
  const BasicView<const T> bv = bias ? const_view<T>(*bias, "attn_mask") : BasicView<const T>();
  if (check)
    check_inputs_finite<T>("attention_backward",
                           {{"query", qv}, {"key", kv}, {"value", vv}, {"grad_out", gv}}, bv);
  if (qv.rank() != 4 || kv.rank() != 4 || vv.rank() != 4)
    fail<ShapeError>("attention_backward", "query, key and value must be 4-D here, got ",
                     qv.shape().str(), ", ", kv.shape().str(), ", ", vv.shape().str());
  auto dq = new_array<T>(qv.shape(), true), dk = new_array<T>(kv.shape(), true),
       dv = new_array<T>(vv.shape(), true);
  py::object dbias = py::none();
  py::array_t<T> dbias_arr;
  const bool with_dbias = want_dbias && bv.defined();
  if (with_dbias) {
    dbias_arr = new_array<T>(bv.shape(), true);
    dbias = dbias_arr;
  }
  auto dqv = mut_view(dq), dkv = mut_view(dk), dvv = mut_view(dv);
  BasicView<T> dbv = with_dbias ? mut_view(dbias_arr) : BasicView<T>();
  const double scale =
      m.scale ? *m.scale : (qv.dim(3) > 0 ? ops::default_attention_scale(qv.dim(3)) : 1.0);
  {
    py::gil_scoped_release release;
    if constexpr (std::is_same_v<T, float>)
      ops::attention_backward(qv, kv, vv, ov, lv, gv, m.mask, bv, scale, dqv, dkv, dvv, dbv,
                              thread_context());
    else
      ops::reference::attention_backward(qv, kv, vv, ov, lv, gv, m.mask, bv, scale, dqv, dkv, dvv,
                                         dbv, thread_context());
  }
  return py::make_tuple(dq, dk, dv, dbias);
}

}  // namespace

void register_translators() {
  // Specific types first: pybind11 tries translators in reverse order of registration.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ShapeError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
}

// attn.scaled_dot_product_attention and its backward (python/attn/__init__.py wraps them).
void bind_attention(py::module_& m) {
  m.def(
      "sdpa",
      [](const py::array& q, const py::array& k, const py::array& v, std::optional<py::array> bias,
         bool causal, int64_t query_offset, int64_t window_left, int64_t window_right,
         int64_t dilation, int64_t chunk_size, int64_t num_left_chunks,
         std::optional<std::vector<int64_t>> key_lengths,
         std::optional<std::vector<float>> alibi_slopes, std::optional<double> scale,
         bool want_probs, bool check) {
        const MaskArgs ma =
            mask_args(causal, query_offset, window_left, window_right, dilation, chunk_size,
                      num_left_chunks, std::move(key_lengths), std::move(alibi_slopes), scale);
        return is_float64(q) ? sdpa_impl<double>(q, k, v, bias, ma, want_probs, check)
                             : sdpa_impl<float>(q, k, v, bias, ma, want_probs, check);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("bias"), py::arg("causal"),
      py::arg("query_offset"), py::arg("window_left"), py::arg("window_right"), py::arg("dilation"),
      py::arg("chunk_size"), py::arg("num_left_chunks"), py::arg("key_lengths"),
      py::arg("alibi_slopes"), py::arg("scale"), py::arg("want_probs"),
      py::arg("check_finite") = true,
      "4-D float32 (fused kernel) or float64 (reference) attention -> (out, lse, probs or None)");
  m.def(
      "sdpa_backward",
      [](const py::array& q, const py::array& k, const py::array& v, const py::array& out,
         const py::array& lse, const py::array& dout, std::optional<py::array> bias, bool causal,
         int64_t query_offset, int64_t window_left, int64_t window_right, int64_t dilation,
         int64_t chunk_size, int64_t num_left_chunks,
         std::optional<std::vector<int64_t>> key_lengths,
         std::optional<std::vector<float>> alibi_slopes, std::optional<double> scale,
         bool want_dbias, bool check) {
        const MaskArgs ma =
            mask_args(causal, query_offset, window_left, window_right, dilation, chunk_size,
                      num_left_chunks, std::move(key_lengths), std::move(alibi_slopes), scale);
        return is_float64(q) ? sdpa_backward_impl<double>(q, k, v, out, lse, dout, bias, ma,
                                                          want_dbias, check)
                             : sdpa_backward_impl<float>(q, k, v, out, lse, dout, bias, ma,
                                                         want_dbias, check);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("dout"),
      py::arg("bias"), py::arg("causal"), py::arg("query_offset"), py::arg("window_left"),
      py::arg("window_right"), py::arg("dilation"), py::arg("chunk_size"),
      py::arg("num_left_chunks"), py::arg("key_lengths"), py::arg("alibi_slopes"), py::arg("scale"),
      py::arg("want_dbias"), py::arg("check_finite") = true,
      "Gradients of sdpa -> (dq, dk, dv, dbias or None)");
  // For bench/python_vs_torch.py: the fused forward alone, run `calls` times in C++ on the thread's
  // context; microseconds per call. Subtracted from a Python call's time, it leaves the binding
  // overhead.
  m.def(
      "_kernel_us",
      [](const py::array& q, const py::array& k, const py::array& v, int64_t calls) {
        const auto qv = const_view<float>(q, "query"), kv = const_view<float>(k, "key"),
                   vv = const_view<float>(v, "value");
        Tensor out(Shape{qv.dim(0), qv.dim(1), qv.dim(2), vv.dim(3)}),
            lse(Shape{qv.dim(0), qv.dim(1), qv.dim(2)});
        const double scale = ops::default_attention_scale(qv.dim(3));
        py::gil_scoped_release release;
        const auto start = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < calls; ++i)
          ops::attention_forward(qv, kv, vv, {}, {}, scale, out, lse, {}, thread_context());
        const std::chrono::duration<double, std::micro> elapsed =
            std::chrono::steady_clock::now() - start;
        return elapsed.count() / static_cast<double>(std::max<int64_t>(calls, 1));
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("calls"));
}

// Positional encodings, ALiBi slopes, threads and SIMD targets.
void bind_utilities(py::module_& m) {
  m.def(
      "positional_encoding",
      [](int64_t positions, int64_t dim, int64_t start, double base) {
        if (positions < 0)
          fail<ValueError>("positional_encoding", "positions must be >= 0, got ", positions);
        if (dim < 1) fail<ValueError>("positional_encoding", "dim must be >= 1, got ", dim);
        auto table = new_array<float>(Shape{positions, dim}, false);
        ops::sinusoidal_encoding(mut_view(table), start, base);
        return table;
      },
      py::arg("positions"), py::arg("dim"), py::arg("start") = 0, py::arg("base") = 10000.0);
  m.def(
      "alibi_slopes",
      [](int64_t n) {
        const auto s = ops::alibi_slopes(n);
        py::array_t<float> a(static_cast<py::ssize_t>(s.size()));
        std::copy(s.begin(), s.end(), a.mutable_data());
        return a;
      },
      py::arg("num_heads"));
  m.def("set_num_threads", &set_default_num_threads, py::arg("n"));
  m.def("get_num_threads", &default_num_threads);
  m.def("simd_target", [] { return std::string(ops::simd_target()); });
  // Every Highway kernel (attention, activations, pools, RNN gates, fbank) dispatches to `name`
  // from then on ("" restores the best), so lower targets can be measured and tested here.
  m.def("available_simd_targets", &ops::available_simd_targets);
  m.def("set_simd_target", &ops::set_simd_target, py::arg("name"));
}

}  // namespace attn::python

PYBIND11_MODULE(_attn, m) {
  using namespace attn;
  using namespace attn::python;
  m.doc() = "attn: fused self-attention on the CPU (the C++ extension; use the `attn` package)";
  register_translators();
  m.attr("__version__") = kVersion;

  bind_attention(m);
  bind_utilities(m);
  register_modules(m);
  register_audio(m);
}
