// SPDX-License-Identifier: MIT
// The nn modules for Python: constructed from PyTorch's constructor arguments (python/attn/nn.py
// maps them), state_dict()/load_state_dict() with PyTorch's names as numpy arrays, train/eval, and
// forward for inference on float32 arrays. The GIL is released while a forward runs.
#include "module_bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attn/attn.h"

namespace py = pybind11;

namespace attn::python {

namespace {

// A float32 array as a view (the Python layer passes C-contiguous float32 arrays to modules).
ConstTensorView view_of(const py::array_t<float, py::array::c_style | py::array::forcecast>& a,
                        const char* name) {
  if (a.ndim() > kMaxRank)
    fail<ShapeError>("attn.nn", name, " has rank ", a.ndim(), "; at most ", kMaxRank);
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  return ConstTensorView(a.data(), Shape(std::span<const int64_t>(dims)));
}
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

py::array_t<float> to_numpy(ConstTensorView t) {
  std::vector<py::ssize_t> dims(t.shape().begin(), t.shape().end());
  py::array_t<float> a(dims);
  copy(t, TensorView(a.mutable_data(), t.shape()));
  return a;
}
py::array_t<float> to_numpy(Tensor&& t) { return to_numpy(ConstTensorView(t.view())); }

// state_dict(), load_state_dict(), train(), parameter counts: the same for every module.
template <typename M, typename Cls>
void bind_module_common(Cls& cls) {
  cls.def("state_dict", [](const M& m) {
    py::dict d;
    for (const auto& [name, view] : m.state_dict()) d[py::str(name)] = to_numpy(view);
    return d;
  });
  cls.def(
      "load_state_dict",
      [](M& m, const py::dict& state, bool strict) {
        std::map<std::string, Tensor> tensors;
        for (const auto& [key, value] : state) {
          const auto name = py::cast<std::string>(key);
          const FloatArray a =
              py::cast<FloatArray>(py::module_::import("numpy").attr("asarray")(value));
          tensors.emplace(name, Tensor::copy_of(view_of(a, name.c_str())));
        }
        const nn::LoadReport r = m.load_state_dict(tensors, strict);
        return py::make_tuple(r.missing_keys, r.unexpected_keys);
      },
      py::arg("state_dict"), py::arg("strict") = true);
  cls.def("set_training", &M::set_training, py::arg("training"));
  cls.def_property_readonly("training", &M::training);
  cls.def("num_parameters", &M::num_parameters);
  cls.def("parameter_names", [](M& m) {
    std::vector<std::string> names;
    for (const auto& [name, p] : m.named_parameters()) names.push_back(name);
    return names;
  });
}

// The kernel-level mask options every attention-bearing forward accepts as keyword arguments.
struct MaskKwargs {
  bool causal = false;
  int64_t window_left = -1, window_right = -1, dilation = 1, chunk_size = 0, num_left_chunks = -1;
  std::optional<std::vector<int64_t>> key_lengths;
  std::optional<std::vector<float>> alibi_slopes;
};

nn::AttentionOptions attention_options(const MaskKwargs& k,
                                       const std::optional<FloatArray>& attn_mask,
                                       const std::optional<FloatArray>& key_padding_mask) {
  nn::AttentionOptions o;
  o.mask.causal = k.causal;
  o.mask.window_left = k.window_left;
  o.mask.window_right = k.window_right;
  o.mask.dilation = k.dilation;
  o.mask.chunk_size = k.chunk_size;
  o.mask.num_left_chunks = k.num_left_chunks;
  if (k.key_lengths) o.mask.key_lengths = *k.key_lengths;
  if (k.alibi_slopes) o.mask.alibi_slopes = *k.alibi_slopes;
  if (attn_mask) o.attn_mask = view_of(*attn_mask, "attn_mask");
  if (key_padding_mask) o.key_padding_mask = view_of(*key_padding_mask, "key_padding_mask");
  return o;
}

MaskKwargs mask_kwargs(const py::kwargs& kw) {
  MaskKwargs k;
  for (const auto& [key, value] : kw) {
    const auto name = py::cast<std::string>(key);
    if (value.is_none()) continue;
    if (name == "causal")
      k.causal = py::cast<bool>(value);
    else if (name == "window_left")
      k.window_left = py::cast<int64_t>(value);
    else if (name == "window_right")
      k.window_right = py::cast<int64_t>(value);
    else if (name == "dilation")
      k.dilation = py::cast<int64_t>(value);
    else if (name == "chunk_size")
      k.chunk_size = py::cast<int64_t>(value);
    else if (name == "num_left_chunks")
      k.num_left_chunks = py::cast<int64_t>(value);
    else if (name == "key_lengths")
      k.key_lengths = py::cast<std::vector<int64_t>>(value);
    else if (name == "alibi_slopes")
      k.alibi_slopes = py::cast<std::vector<float>>(value);
    else
      fail<ValueError>("attn.nn", "unknown mask option '", name, "'");
  }
  return k;
}

nn::EncoderLayerConfig layer_config(int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                                    double dropout, const std::string& activation,
                                    double layer_norm_eps, bool norm_first, bool bias) {
  nn::EncoderLayerConfig c;
  c.d_model = d_model;
  c.nhead = nhead;
  c.dim_feedforward = dim_feedforward;
  c.dropout = dropout;
  c.activation = nn::parse_activation(activation);
  c.layer_norm_eps = layer_norm_eps;
  c.norm_first = norm_first;
  c.bias = bias;
  return c;
}

// forward(input) -> output for modules whose forward is forward(x, cache, ctx) (inference: no
// cache).
template <typename M>
void bind_input_forward(py::class_<M>& cls) {
  cls.def("forward", [](M& module, const FloatArray& x) {
    const ConstTensorView xv = view_of(x, "input");
    Tensor y;
    {
      py::gil_scoped_release release;
      y = module.forward(xv, nullptr, thread_context());
    }
    return to_numpy(std::move(y));
  });
}

void bind_linear_and_norm(py::module_& m) {
  py::class_<nn::Linear> linear(m, "Linear");
  linear.def(py::init([](int64_t in, int64_t out, bool bias, uint64_t seed) {
               Rng rng(seed);
               return std::make_unique<nn::Linear>(in, out, bias, rng);
             }),
             py::arg("in_features"), py::arg("out_features"), py::arg("bias"), py::arg("seed"));
  bind_input_forward<nn::Linear>(linear);
  bind_module_common<nn::Linear>(linear);

  py::class_<nn::LayerNorm> norm(m, "LayerNorm");
  norm.def(py::init<int64_t, double, bool>(), py::arg("normalized_shape"), py::arg("eps"),
           py::arg("elementwise_affine"));
  bind_input_forward<nn::LayerNorm>(norm);
  bind_module_common<nn::LayerNorm>(norm);
}

void bind_attention(py::module_& m) {
  py::class_<nn::MultiheadAttention> mha(m, "MultiheadAttention");
  mha.def(py::init([](int64_t C, int64_t NH, bool bias, uint64_t seed) {
            Rng rng(seed);
            return std::make_unique<nn::MultiheadAttention>(C, NH, bias, rng);
          }),
          py::arg("embed_dim"), py::arg("num_heads"), py::arg("bias"), py::arg("seed"));
  // query (B, T, C), key/value (B, S, C); masks already converted to float (nonzero padding =
  // padded).
  mha.def(
      "forward",
      [](nn::MultiheadAttention& a, const FloatArray& query, const FloatArray& key,
         const FloatArray& value, std::optional<FloatArray> key_padding_mask,
         std::optional<FloatArray> attn_mask, bool need_weights, bool average_attn_weights,
         const py::kwargs& kw) {
        nn::AttentionOptions o = attention_options(mask_kwargs(kw), attn_mask, key_padding_mask);
        o.need_weights = need_weights;
        o.average_attn_weights = average_attn_weights;
        const bool self = query.ptr() == key.ptr() && key.ptr() == value.ptr();
        const ConstTensorView qv = view_of(query, "query");
        const ConstTensorView kv = self ? qv : view_of(key, "key"),
                              vv = self ? qv : view_of(value, "value");
        Tensor y, w;
        {
          py::gil_scoped_release release;
          y = a.forward(qv, kv, vv, o, nullptr, thread_context(), need_weights ? &w : nullptr);
        }
        return py::make_tuple(to_numpy(std::move(y)),
                              need_weights ? py::object(to_numpy(std::move(w))) : py::none());
      },
      py::arg("query"), py::arg("key"), py::arg("value"), py::arg("key_padding_mask") = py::none(),
      py::arg("attn_mask") = py::none(), py::arg("need_weights") = false,
      py::arg("average_attn_weights") = true);
  bind_module_common<nn::MultiheadAttention>(mha);
}

template <typename M>
void bind_encoder_forward(py::class_<M>& cls) {
  cls.def(
      "forward",
      [](M& layer, const FloatArray& src, std::optional<FloatArray> mask,
         std::optional<FloatArray> key_padding_mask, const py::kwargs& kw) {
        const nn::AttentionOptions o = attention_options(mask_kwargs(kw), mask, key_padding_mask);
        const ConstTensorView xv = view_of(src, "src");
        Tensor y;
        {
          py::gil_scoped_release release;
          y = layer.forward(xv, o, nullptr, thread_context());
        }
        return to_numpy(std::move(y));
      },
      py::arg("src"), py::arg("mask") = py::none(), py::arg("src_key_padding_mask") = py::none());
}

void bind_encoders(py::module_& m) {
  py::class_<nn::TransformerEncoderLayer> layer(m, "TransformerEncoderLayer");
  layer.def(py::init([](int64_t d_model, int64_t nhead, int64_t dim_feedforward, double dropout,
                        const std::string& activation, double eps, bool norm_first, bool bias,
                        uint64_t seed) {
              Rng rng(seed);
              return std::make_unique<nn::TransformerEncoderLayer>(
                  layer_config(d_model, nhead, dim_feedforward, dropout, activation, eps,
                               norm_first, bias),
                  rng, seed);
            }),
            py::arg("d_model"), py::arg("nhead"), py::arg("dim_feedforward"), py::arg("dropout"),
            py::arg("activation"), py::arg("layer_norm_eps"), py::arg("norm_first"),
            py::arg("bias"), py::arg("seed"));
  bind_encoder_forward(layer);
  bind_module_common<nn::TransformerEncoderLayer>(layer);

  py::class_<nn::TransformerEncoder> enc(m, "TransformerEncoder");
  enc.def(py::init([](int64_t d_model, int64_t nhead, int64_t dim_feedforward, double dropout,
                      const std::string& activation, double eps, bool norm_first, bool bias,
                      int64_t num_layers, bool final_norm, uint64_t seed) {
            Rng rng(seed);
            return std::make_unique<nn::TransformerEncoder>(
                layer_config(d_model, nhead, dim_feedforward, dropout, activation, eps, norm_first,
                             bias),
                num_layers, final_norm, rng, seed);
          }),
          py::arg("d_model"), py::arg("nhead"), py::arg("dim_feedforward"), py::arg("dropout"),
          py::arg("activation"), py::arg("layer_norm_eps"), py::arg("norm_first"), py::arg("bias"),
          py::arg("num_layers"), py::arg("final_norm"), py::arg("seed"));
  bind_encoder_forward(enc);
  bind_module_common<nn::TransformerEncoder>(enc);
}

// LSTM and GRU: forward(x, h0, c0, lengths) -> (output, h_n, c_n or None), for inference.
void bind_recurrent(py::module_& m) {
  py::class_<nn::RNNBase> rnn(m, "RNN");
  rnn.def(py::init([](const std::string& mode, int64_t input_size, int64_t hidden_size,
                      int64_t num_layers, bool bias, bool batch_first, double dropout,
                      bool bidirectional, uint64_t seed) -> std::unique_ptr<nn::RNNBase> {
            if (mode != "LSTM" && mode != "GRU")
              fail<ValueError>("attn.nn", "mode must be 'LSTM' or 'GRU', got '", mode, "'");
            const nn::RnnOptions o{input_size,  hidden_size, num_layers,   bias,
                                   batch_first, dropout,     bidirectional};
            Rng rng(seed);
            if (mode == "LSTM") return std::make_unique<nn::LSTM>(o, rng, seed);
            return std::make_unique<nn::GRU>(o, rng, seed);
          }),
          py::arg("mode"), py::arg("input_size"), py::arg("hidden_size"), py::arg("num_layers"),
          py::arg("bias"), py::arg("batch_first"), py::arg("dropout"), py::arg("bidirectional"),
          py::arg("seed"));
  rnn.def(
      "forward",
      [](nn::RNNBase& module, const FloatArray& x, const std::optional<FloatArray>& h0,
         const std::optional<FloatArray>& c0, const std::optional<std::vector<int64_t>>& lengths) {
        const ConstTensorView xv = view_of(x, "input");
        const ConstTensorView h0v = h0 ? view_of(*h0, "h0") : ConstTensorView();
        const ConstTensorView c0v = c0 ? view_of(*c0, "c0") : ConstTensorView();
        const std::vector<int64_t> lens = lengths ? *lengths : std::vector<int64_t>();
        nn::RNNBase::Output out;
        {
          py::gil_scoped_release release;
          out = module.forward(xv, h0v, c0v, lens, nullptr, thread_context());
        }
        py::object c_n = out.c_n.defined() ? py::object(to_numpy(std::move(out.c_n))) : py::none();
        return py::make_tuple(to_numpy(std::move(out.output)), to_numpy(std::move(out.h_n)), c_n);
      },
      py::arg("input"), py::arg("h0"), py::arg("c0"), py::arg("lengths"));
  bind_module_common<nn::RNNBase>(rnn);
}

// Conv2d, Conv1d, the pools, BatchNorm, Flatten and SelfAttention2d (python/attn/nn.py maps
// PyTorch's constructor arguments onto these).
void bind_image_layers(py::module_& m) {
  py::class_<nn::Conv2d> conv2d(m, "Conv2d");
  conv2d.def(
      py::init([](int64_t in, int64_t out, std::vector<int64_t> k, std::vector<int64_t> s,
                  std::vector<int64_t> p, std::vector<int64_t> d, int64_t groups, bool bias,
                  uint64_t seed) {
        Rng rng(seed);
        const ops::Conv2dOptions o{s.at(0), s.at(1), p.at(0), p.at(1), d.at(0), d.at(1), groups};
        return std::make_unique<nn::Conv2d>(in, out, k.at(0), k.at(1), o, bias, rng);
      }),
      py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride"),
      py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("bias"), py::arg("seed"));
  bind_input_forward<nn::Conv2d>(conv2d);
  bind_module_common<nn::Conv2d>(conv2d);

  py::class_<nn::Conv1d> conv1d(m, "Conv1d");
  conv1d.def(py::init([](int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d,
                         int64_t groups, bool bias, uint64_t seed) {
               Rng rng(seed);
               return std::make_unique<nn::Conv1d>(in, out, k, ops::Conv1dOptions{s, p, d, groups},
                                                   bias, rng);
             }),
             py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"),
             py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
             py::arg("bias"), py::arg("seed"));
  bind_input_forward<nn::Conv1d>(conv1d);
  bind_module_common<nn::Conv1d>(conv1d);

  auto pool_options = [](std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> p,
                         std::vector<int64_t> d, bool ceil_mode, bool count_include_pad) {
    return ops::Pool2dOptions{k.at(0), k.at(1), s.at(0), s.at(1),   p.at(0),
                              p.at(1), d.at(0), d.at(1), ceil_mode, count_include_pad};
  };
  py::class_<nn::MaxPool2d> max_pool(m, "MaxPool2d");
  max_pool.def(py::init([=](std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> p,
                            std::vector<int64_t> d, bool ceil_mode) {
                 return std::make_unique<nn::MaxPool2d>(pool_options(k, s, p, d, ceil_mode, true));
               }),
               py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
               py::arg("ceil_mode"));
  bind_input_forward<nn::MaxPool2d>(max_pool);
  bind_module_common<nn::MaxPool2d>(max_pool);

  py::class_<nn::AvgPool2d> avg_pool(m, "AvgPool2d");
  avg_pool.def(py::init([=](std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> p,
                            bool ceil_mode, bool count_include_pad) {
                 return std::make_unique<nn::AvgPool2d>(
                     pool_options(k, s, p, {1, 1}, ceil_mode, count_include_pad));
               }),
               py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
               py::arg("count_include_pad"));
  bind_input_forward<nn::AvgPool2d>(avg_pool);
  bind_module_common<nn::AvgPool2d>(avg_pool);

  py::class_<nn::AdaptiveAvgPool2d> adaptive(m, "AdaptiveAvgPool2d");
  adaptive.def(py::init<int64_t, int64_t>(), py::arg("out_h"), py::arg("out_w"));
  bind_input_forward<nn::AdaptiveAvgPool2d>(adaptive);
  bind_module_common<nn::AdaptiveAvgPool2d>(adaptive);

  py::class_<nn::BatchNorm> bn(m, "BatchNorm");
  bn.def(py::init([](int64_t C, double eps, double momentum, bool affine, bool track,
                     int spatial_dims) -> std::unique_ptr<nn::BatchNorm> {
           const nn::BatchNormOptions o{eps, momentum, affine, track};
           if (spatial_dims == 1) return std::make_unique<nn::BatchNorm1d>(C, o);
           return std::make_unique<nn::BatchNorm2d>(C, o);
         }),
         py::arg("num_features"), py::arg("eps"), py::arg("momentum"), py::arg("affine"),
         py::arg("track_running_stats"), py::arg("spatial_dims"));
  bind_input_forward<nn::BatchNorm>(bn);
  bind_module_common<nn::BatchNorm>(bn);

  py::class_<nn::Flatten> flatten(m, "Flatten");
  flatten.def(py::init<>());
  bind_input_forward<nn::Flatten>(flatten);
  bind_module_common<nn::Flatten>(flatten);

  py::class_<nn::SelfAttention2d> sagan(m, "SelfAttention2d");
  sagan.def(py::init([](int64_t C, const std::string& form, uint64_t seed) {
              Rng rng(seed);
              return std::make_unique<nn::SelfAttention2d>(C, nn::parse_sagan_form(form), rng);
            }),
            py::arg("channels"), py::arg("form"), py::arg("seed"));
  sagan.def(
      "forward",
      [](nn::SelfAttention2d& a, const FloatArray& x, bool need_weights) {
        const ConstTensorView xv = view_of(x, "input");
        Tensor y, w;
        {
          py::gil_scoped_release release;
          y = a.forward(xv, nullptr, thread_context(), need_weights ? &w : nullptr);
        }
        return py::make_tuple(to_numpy(std::move(y)),
                              need_weights ? py::object(to_numpy(std::move(w))) : py::none());
      },
      py::arg("input"), py::arg("need_weights") = false);
  bind_module_common<nn::SelfAttention2d>(sagan);
}

// The speech encoder (config as keyword arguments, or a directory `attn speech new-model` wrote)
// and its streaming twin, which keeps the encoder alive while it streams.
void bind_speech(py::module_& m) {
  py::class_<nn::SpeechEncoder> enc(m, "SpeechEncoder");
  enc.def(py::init([](int64_t input_dim, int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                      int64_t num_layers, double dropout, const std::string& activation, double eps,
                      bool norm_first, uint64_t seed) {
            nn::SpeechEncoderConfig c;
            c.input_dim = input_dim;
            c.num_layers = num_layers;
            c.layer = layer_config(d_model, nhead, dim_feedforward, dropout, activation, eps,
                                   norm_first, true);
            // Validate through the parser, so Python gets the config file's messages.
            c = nn::parse_speech_encoder_config(nn::speech_encoder_config_to_json(c),
                                                "attn.nn.SpeechEncoder");
            Rng rng(seed);
            return std::make_unique<nn::SpeechEncoder>(c, rng, seed);
          }),
          py::arg("input_dim"), py::arg("d_model"), py::arg("nhead"), py::arg("dim_feedforward"),
          py::arg("num_layers"), py::arg("dropout"), py::arg("activation"),
          py::arg("layer_norm_eps"), py::arg("norm_first"), py::arg("seed"));
  enc.def(
      "forward",
      [](nn::SpeechEncoder& e, const FloatArray& feats, const py::kwargs& kw) {
        const ops::AttentionMask mask = attention_options(mask_kwargs(kw), {}, {}).mask;
        const ConstTensorView xv = view_of(feats, "feats");
        Tensor y;
        {
          py::gil_scoped_release release;
          y = e.forward(xv, mask, nullptr, thread_context());
        }
        return to_numpy(std::move(y));
      },
      py::arg("feats"));
  enc.def_static("output_length", &nn::Conv2dSubsampling4::output_length, py::arg("T"));
  enc.def_static("from_dir", &nn::load_speech_encoder, py::arg("dir"));
  enc.def(
      "save_dir",
      [](const nn::SpeechEncoder& e, const std::string& dir) { nn::save_speech_encoder(dir, e); },
      py::arg("dir"));
  enc.def_property_readonly("config_json", [](const nn::SpeechEncoder& e) {
    return nn::speech_encoder_config_to_json(e.config());
  });
  bind_module_common<nn::SpeechEncoder>(enc);

  py::class_<nn::StreamingEncoder> st(m, "StreamingEncoder");
  st.def(py::init([](nn::SpeechEncoder& e, int64_t chunk, int64_t left) {
           return std::make_unique<nn::StreamingEncoder>(e, chunk, left, thread_context());
         }),
         py::arg("encoder"), py::arg("chunk_size"), py::arg("num_left_chunks"),
         py::keep_alive<1, 2>());
  st.def(
      "push",
      [](nn::StreamingEncoder& s, const FloatArray& frames) {
        const ConstTensorView fv = view_of(frames, "frames");
        Tensor y;
        {
          py::gil_scoped_release release;
          y = s.push(fv);
        }
        return to_numpy(std::move(y));
      },
      py::arg("frames"));
  st.def("flush", [](nn::StreamingEncoder& s) {
    Tensor y;
    {
      py::gil_scoped_release release;
      y = s.flush();
    }
    return to_numpy(std::move(y));
  });
  st.def("reset", &nn::StreamingEncoder::reset);
  st.def_property_readonly("frames_emitted", &nn::StreamingEncoder::frames_emitted);
  st.def_property_readonly("cache_bytes", &nn::StreamingEncoder::cache_bytes);
}

}  // namespace

void register_modules(py::module_& m) {
  py::module_ nn = m.def_submodule("nn", "attn.nn modules (C++ side)");
  bind_linear_and_norm(nn);
  bind_attention(nn);
  bind_encoders(nn);
  bind_recurrent(nn);
  bind_image_layers(nn);
  bind_speech(nn);
}

}  // namespace attn::python
