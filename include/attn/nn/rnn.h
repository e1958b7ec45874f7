// SPDX-License-Identifier: MIT
// torch.nn.LSTM and torch.nn.GRU: stacked, optionally bidirectional recurrent layers with PyTorch's
// constructor arguments, parameter names ("weight_ih_l0", "bias_hh_l1_reverse", ...), default
// initialisation U(±1/√H), initial states, dropout between layers, and variable lengths with
// packed-sequence semantics (attn/ops/rnn.h has the equations). The forward and backward through
// time run on ops::rnn_forward / ops::rnn_backward, one layer at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "attn/nn/layers.h"
#include "attn/nn/module.h"
#include "attn/ops/rnn.h"

namespace attn::nn {

// The constructor arguments of torch.nn.LSTM / GRU (proj_size is not supported).
struct RnnOptions {
  int64_t input_size = 0;   // IN
  int64_t hidden_size = 0;  // H
  int64_t num_layers = 1;   // L
  bool bias = true;
  bool batch_first = false;    // x and output are (B, T, ·) instead of (T, B, ·)
  double dropout = 0.0;        // on every layer's output but the last, in training only
  bool bidirectional = false;  // D = 2 directions
};

class RNNBase : public Module {
 public:
  RNNBase(ops::RnnCell cell, const RnnOptions& options, Rng& rng, uint64_t dropout_seed = 0);

  struct Cache {
    bool batched = true;
    std::vector<int64_t> lengths;
    std::vector<Tensor> inputs;  // per layer: its input, time-major (T, B, IN or D·H)
    std::vector<std::vector<ops::RnnSaved>> saved;  // per layer, per direction
    std::vector<Dropout::Cache> dropout;            // per layer but the last
    Tensor h0, c0;                                  // (L·D, B, H) as given, or undefined
  };
  struct Output {
    Tensor output;  // (T, B, D·H), (B, T, D·H) with batch_first, (T, D·H) unbatched; 0 past L_b
    Tensor h_n;     // (L·D, B, H) (or (L·D, H) unbatched): each layer and direction's final state
    Tensor c_n;     // the same for LSTM's cell state; undefined for GRU
  };
  // x: (T, B, IN), (B, T, IN) with batch_first, or unbatched (T, IN).
  // h0, c0: (L·D, B, H) (unbatched: (L·D, H)) or undefined (zeros); c0 is LSTM's only.
  // lengths: B values in [1, T] (or empty: all T).
  Output forward(ConstTensorView x, ConstTensorView h0, ConstTensorView c0,
                 std::span<const int64_t> lengths, Cache* cache, const Context& ctx);

  struct Grads {
    Tensor dx;        // shaped as x
    Tensor dh0, dc0;  // shaped as h_n / c_n (whether or not h0 / c0 were given)
  };
  // doutput: shaped as output; dh_n, dc_n: shaped as h_n, c_n, or undefined (zero).
  // Parameter gradients ACCUMULATE into the parameters' grad tensors.
  Grads backward(ConstTensorView doutput, ConstTensorView dh_n, ConstTensorView dc_n,
                 const Cache& cache, const Context& ctx);

  ops::RnnCell cell() const { return cell_; }
  const RnnOptions& options() const { return o_; }
  int64_t directions() const { return o_.bidirectional ? 2 : 1; }

 private:
  struct LayerParams {
    Parameter *w_ih, *w_hh, *b_ih = nullptr, *b_hh = nullptr;
  };
  const char* fn_forward() const;
  std::vector<ops::RnnDirection> layer_directions(int64_t layer, const Tensor& h0,
                                                  const Tensor& c0) const;
  ops::RnnCell cell_;
  RnnOptions o_;
  std::vector<LayerParams> params_;  // index layer·D + direction
  Dropout dropout_;
};

// torch.nn.LSTM: forward returns (output, (h_n, c_n)).
class LSTM : public RNNBase {
 public:
  LSTM(const RnnOptions& options, Rng& rng, uint64_t dropout_seed = 0)
      : RNNBase(ops::RnnCell::kLSTM, options, rng, dropout_seed) {}
};

// torch.nn.GRU: forward returns (output, h_n).
class GRU : public RNNBase {
 public:
  GRU(const RnnOptions& options, Rng& rng, uint64_t dropout_seed = 0)
      : RNNBase(ops::RnnCell::kGRU, options, rng, dropout_seed) {}
};

}  // namespace attn::nn
