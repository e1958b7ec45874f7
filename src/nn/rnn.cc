// SPDX-License-Identifier: MIT
// nn::LSTM / nn::GRU: PyTorch's stacking, directions, state layout and batch_first around the
// one-layer ops. Internally everything is time-major (T, B, ·); batch_first inputs and outputs are
// transposed copies at the edges.
#include "attn/nn/rnn.h"

#include <cmath>
#include <string>

#include "nn/internal/module_helpers.h"

namespace attn::nn {

namespace {

std::string layer_suffix(int64_t layer, int64_t direction) {
  return "_l" + std::to_string(layer) + (direction == 1 ? "_reverse" : "");
}

// (B, T, ·) <-> (T, B, ·) as a contiguous copy (or a plain copy when no transpose is needed).
Tensor time_major(ConstTensorView v, bool batch_first) {
  return Tensor::copy_of(batch_first ? v.transpose(0, 1) : v);
}

}  // namespace

RNNBase::RNNBase(ops::RnnCell cell, const RnnOptions& options, Rng& rng, uint64_t dropout_seed)
    : cell_(cell), o_(options), dropout_(options.dropout, dropout_seed) {
  const char* fn = ops::rnn_cell_name(cell);
  if (o_.input_size < 1 || o_.hidden_size < 1 || o_.num_layers < 1)
    fail<ValueError>(fn, "input_size, hidden_size and num_layers must be >= 1, got ", o_.input_size,
                     ", ", o_.hidden_size, ", ", o_.num_layers);
  if (!(o_.dropout >= 0.0 && o_.dropout <= 1.0))
    fail<ValueError>(fn, "dropout must be in [0, 1], got ", o_.dropout);
  const int64_t G = ops::rnn_gates(cell), H = o_.hidden_size, D = directions();
  {
    const auto g = static_cast<double>(G), h = static_cast<double>(H), d = static_cast<double>(D);
    const double first = g * h * (static_cast<double>(o_.input_size) + h + 2),
                 later = g * h * (d * h + h + 2);
    internal::check_parameter_budget(fn,
                                     d * (first + static_cast<double>(o_.num_layers - 1) * later));
  }
  const double bound = 1.0 / std::sqrt(static_cast<double>(H));
  auto add = [&](const std::string& name, const Shape& shape) {
    Parameter& p = register_parameter(name, shape);
    internal::init_uniform(p, bound, rng);
    return &p;
  };
  for (int64_t l = 0; l < o_.num_layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const std::string sfx = layer_suffix(l, d);
      const int64_t in = l == 0 ? o_.input_size : D * H;
      LayerParams p{add("weight_ih" + sfx, Shape{G * H, in}),
                    add("weight_hh" + sfx, Shape{G * H, H})};
      if (o_.bias) {
        p.b_ih = add("bias_ih" + sfx, Shape{G * H});
        p.b_hh = add("bias_hh" + sfx, Shape{G * H});
      }
      params_.push_back(p);
    }
}

const char* RNNBase::fn_forward() const {
  return cell_ == ops::RnnCell::kLSTM ? "LSTM.forward" : "GRU.forward";
}

std::vector<ops::RnnDirection> RNNBase::layer_directions(int64_t layer, const Tensor& h0,
                                                         const Tensor& c0) const {
  std::vector<ops::RnnDirection> dirs;
  for (int64_t d = 0; d < directions(); ++d) {
    const LayerParams& p = params_[static_cast<size_t>(layer * directions() + d)];
    ops::RnnDirection r;
    r.w_ih = p.w_ih->value;
    r.w_hh = p.w_hh->value;
    if (p.b_ih) r.b_ih = p.b_ih->value, r.b_hh = p.b_hh->value;
    const int64_t k = layer * directions() + d;
    if (h0.defined()) r.h0 = h0.view().select(0, k);
    if (c0.defined()) r.c0 = c0.view().select(0, k);
    r.reverse = d == 1;
    dirs.push_back(r);
  }
  return dirs;
}

RNNBase::Output RNNBase::forward(ConstTensorView x, ConstTensorView h0, ConstTensorView c0,
                                 std::span<const int64_t> lengths, Cache* cache,
                                 const Context& ctx) {
  const char* fn = fn_forward();
  if (!x.defined() || (x.rank() != 2 && x.rank() != 3))
    fail<ShapeError>(
        fn, "input must be (T, B, IN), (B, T, IN) with batch_first, or unbatched (T, IN); got ",
        x.defined() ? x.shape().str() : std::string("none"));
  const bool batched = x.rank() == 3;
  if (x.dim(-1) != o_.input_size)
    fail<ShapeError>(fn, "input has ", x.dim(-1), " features (shape ", x.shape().str(),
                     ") but input_size is ", o_.input_size);
  const ConstTensorView x3 = batched ? x : x.unsqueeze(1);
  Tensor input = time_major(x3, batched && o_.batch_first);
  const int64_t T = input.dim(0), B = input.dim(1), H = o_.hidden_size, L = o_.num_layers,
                D = directions();
  const Shape state_shape{L * D, B, H};
  auto state = [&](ConstTensorView v, const char* name) {
    if (!v.defined()) return Tensor();
    const ConstTensorView v3 = batched ? v : (v.rank() == 2 ? v.unsqueeze(1) : v);
    if (!(v3.shape() == state_shape))
      fail<ShapeError>(fn, name, " has shape ", v.shape().str(), " but ",
                       batched ? state_shape.str() : Shape{L * D, H}.str(),
                       " is expected (num_layers·directions, ", batched ? "B, " : "", "H)");
    return Tensor::copy_of(v3);
  };
  Tensor h0c = state(h0, "h0"), c0c = state(c0, "c0");
  if (c0c.defined() && cell_ != ops::RnnCell::kLSTM)
    fail<ValueError>(fn, "c0 is for LSTM only; a GRU has no cell state");
  if (!lengths.empty() && static_cast<int64_t>(lengths.size()) != B)
    fail<ShapeError>(fn, "lengths has ", lengths.size(), " values but the batch is ", B,
                     " (input shape ", x.shape().str(), ")");
  for (size_t b = 0; b < lengths.size(); ++b)
    if (lengths[b] < 1 || lengths[b] > T)
      fail<ValueError>(fn, "lengths[", b, "] = ", lengths[b], " is not in [1, T = ", T,
                       "] (input shape ", x.shape().str(), ")");
  Output out{Tensor(), Tensor(state_shape),
             cell_ == ops::RnnCell::kLSTM ? Tensor(state_shape) : Tensor()};
  if (cache) {
    *cache = Cache{};
    cache->batched = batched;
    cache->lengths.assign(lengths.begin(), lengths.end());
  }
  for (int64_t l = 0; l < L; ++l) {
    Tensor y(Shape{T, B, D * H});
    std::vector<ops::RnnDirection> dirs = layer_directions(l, h0c, c0c);
    for (int64_t d = 0; d < D; ++d) {
      auto& r = dirs[static_cast<size_t>(d)];
      r.y = y.view().slice(2, d * H, (d + 1) * H);
      r.h_n = out.h_n.view().select(0, l * D + d);
      if (out.c_n.defined()) r.c_n = out.c_n.view().select(0, l * D + d);
    }
    std::vector<ops::RnnSaved> saved(cache ? dirs.size() : 0);
    ops::rnn_forward(cell_, input, lengths, dirs, cache ? saved.data() : nullptr, ctx);
    if (cache) {
      cache->inputs.push_back(std::move(input));
      cache->saved.push_back(std::move(saved));
    }
    if (l + 1 < L) {
      Dropout::Cache dc;
      input = training() && o_.dropout > 0 ? dropout_.forward(y, cache ? &dc : nullptr, ctx)
                                           : std::move(y);
      if (cache) cache->dropout.push_back(std::move(dc));
    } else {
      out.output = time_major(y, batched && o_.batch_first);
    }
  }
  if (cache) cache->h0 = std::move(h0c), cache->c0 = std::move(c0c);
  if (!batched) {
    out.output = Tensor::copy_of(out.output.view().select(1, 0));
    out.h_n = Tensor::copy_of(out.h_n.view().select(1, 0));
    if (out.c_n.defined()) out.c_n = Tensor::copy_of(out.c_n.view().select(1, 0));
  }
  return out;
}

RNNBase::Grads RNNBase::backward(ConstTensorView doutput, ConstTensorView dh_n,
                                 ConstTensorView dc_n, const Cache& cache, const Context& ctx) {
  const char* fn = cell_ == ops::RnnCell::kLSTM ? "LSTM.backward" : "GRU.backward";
  if (cache.inputs.empty()) fail<ValueError>(fn, "the cache is empty: run forward with a cache");
  const int64_t T = cache.inputs[0].dim(0), B = cache.inputs[0].dim(1), H = o_.hidden_size,
                L = o_.num_layers, D = directions();
  const Shape out_shape =
      cache.batched ? (o_.batch_first ? Shape{B, T, D * H} : Shape{T, B, D * H}) : Shape{T, D * H};
  if (!doutput.defined() || !(doutput.shape() == out_shape))
    fail<ShapeError>(fn, "doutput has shape ", doutput.defined() ? doutput.shape().str() : "none",
                     " but the output's ", out_shape.str(), " is expected");
  const Shape state_shape{L * D, B, H};
  auto state = [&](ConstTensorView v, const char* name) {
    if (!v.defined()) return Tensor();
    const ConstTensorView v3 = cache.batched ? v : v.unsqueeze(1);
    if (!(v3.shape() == state_shape))
      fail<ShapeError>(fn, name, " has shape ", v.shape().str(), " but h_n's shape is expected");
    return Tensor::copy_of(v3);
  };
  const Tensor dhn = state(dh_n, "dh_n"), dcn = state(dc_n, "dc_n");
  Grads g{Tensor(), Tensor(state_shape),
          cell_ == ops::RnnCell::kLSTM ? Tensor(state_shape) : Tensor()};
  Tensor dy =
      time_major(cache.batched ? doutput : doutput.unsqueeze(1), cache.batched && o_.batch_first);
  for (int64_t l = L - 1; l >= 0; --l) {
    const std::vector<ops::RnnDirection> dirs = layer_directions(l, cache.h0, cache.c0);
    std::vector<ops::RnnDirectionGrad> grads;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = l * D + d;
      const LayerParams& p = params_[static_cast<size_t>(k)];
      ops::RnnDirectionGrad r;
      r.dy = dy.view().slice(2, d * H, (d + 1) * H);
      if (dhn.defined()) r.dh_n = dhn.view().select(0, k);
      if (dcn.defined()) r.dc_n = dcn.view().select(0, k);
      r.dw_ih = p.w_ih->grad;
      r.dw_hh = p.w_hh->grad;
      if (p.b_ih) r.db_ih = p.b_ih->grad, r.db_hh = p.b_hh->grad;
      r.dh0 = g.dh0.view().select(0, k);
      if (g.dc0.defined()) r.dc0 = g.dc0.view().select(0, k);
      grads.push_back(r);
    }
    const Tensor& input = cache.inputs[static_cast<size_t>(l)];
    Tensor dx(input.shape());
    ops::rnn_backward(cell_, input, cache.lengths, dirs, cache.saved[static_cast<size_t>(l)].data(),
                      grads, dx, ctx);
    const bool dropped = l > 0 && cache.dropout[static_cast<size_t>(l - 1)].mask.defined();
    dy = dropped ? dropout_.backward(dx, cache.dropout[static_cast<size_t>(l - 1)], ctx)
                 : std::move(dx);
  }
  g.dx = time_major(dy, cache.batched && o_.batch_first);
  if (!cache.batched) {
    g.dx = Tensor::copy_of(g.dx.view().select(1, 0));
    g.dh0 = Tensor::copy_of(g.dh0.view().select(1, 0));
    if (g.dc0.defined()) g.dc0 = Tensor::copy_of(g.dc0.view().select(1, 0));
  }
  return g;
}

}  // namespace attn::nn
