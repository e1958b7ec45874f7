// SPDX-License-Identifier: MIT
#include "attn/train/loss.h"

#include <cmath>
#include <vector>

namespace attn::train {

CrossEntropyResult cross_entropy(ConstTensorView logits, std::span<const int64_t> targets,
                                 TensorView dlogits, int64_t ignore_index, double label_smoothing) {
  constexpr const char* fn = "cross_entropy";
  if (!logits.defined() || logits.rank() != 2)
    fail<ShapeError>(fn, "logits must be (N, V), got ",
                     logits.defined() ? logits.shape().str() : "nothing");
  const int64_t N = logits.dim(0), V = logits.dim(1);
  if (static_cast<int64_t>(targets.size()) != N)
    fail<ShapeError>(fn, "got ", targets.size(), " targets for logits ", logits.shape().str());
  if (V < 1) fail<ShapeError>(fn, "logits have no classes: ", logits.shape().str());
  if (!(label_smoothing >= 0.0 && label_smoothing < 1.0))
    fail<ValueError>(fn, "label_smoothing must be in [0, 1), got ", label_smoothing);
  if (dlogits.defined() && !(dlogits.shape() == logits.shape()))
    fail<ShapeError>(fn, "dlogits has shape ", dlogits.shape().str(), " but logits ",
                     logits.shape().str());
  CrossEntropyResult r;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t y = targets[static_cast<size_t>(n)];
    if (y != ignore_index && (y < 0 || y >= V))
      fail<ValueError>(fn, "target ", n, " is ", y, ", outside [0, ", V, ") and not ignore_index ",
                       ignore_index);
    r.count += y != ignore_index;
  }
  std::vector<double> p(static_cast<size_t>(V));
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t y = targets[static_cast<size_t>(n)];
    if (y == ignore_index) {
      if (dlogits.defined())
        for (int64_t v = 0; v < V; ++v) dlogits(n, v) = 0.0f;
      continue;
    }
    double mx = -INFINITY;
    int64_t arg = 0;
    for (int64_t v = 0; v < V; ++v)
      if (static_cast<double>(logits(n, v)) > mx) mx = static_cast<double>(logits(n, v)), arg = v;
    double sum = 0.0;
    for (int64_t v = 0; v < V; ++v)
      sum += (p[static_cast<size_t>(v)] = std::exp(static_cast<double>(logits(n, v)) - mx));
    const double lse = mx + std::log(sum);
    // -Σ_c q_c log p_c with q = (1-ε) onehot + ε/V
    double row = (1.0 - label_smoothing) * (lse - static_cast<double>(logits(n, y)));
    if (label_smoothing > 0.0) {
      double mean_nll = 0.0;
      for (int64_t v = 0; v < V; ++v) mean_nll += lse - static_cast<double>(logits(n, v));
      row += label_smoothing * mean_nll / static_cast<double>(V);
    }
    total += row;
    r.correct += arg == y;
    if (dlogits.defined())
      for (int64_t v = 0; v < V; ++v) {
        const double q =
            (1.0 - label_smoothing) * (v == y) + label_smoothing / static_cast<double>(V);
        dlogits(n, v) = static_cast<float>((p[static_cast<size_t>(v)] / sum - q) /
                                           static_cast<double>(r.count));
      }
  }
  r.loss = r.count ? total / static_cast<double>(r.count) : 0.0;
  return r;
}

double mse_loss(ConstTensorView pred, ConstTensorView target, TensorView dpred) {
  constexpr const char* fn = "mse_loss";
  if (!pred.defined() || !target.defined() || !(pred.shape() == target.shape()))
    fail<ShapeError>(fn, "pred and target must have the same shape, got ",
                     pred.defined() ? pred.shape().str() : "nothing", " and ",
                     target.defined() ? target.shape().str() : "nothing");
  if (dpred.defined() && !(dpred.shape() == pred.shape()))
    fail<ShapeError>(fn, "dpred has shape ", dpred.shape().str(), " but pred ", pred.shape().str());
  const auto n = static_cast<double>(pred.numel());
  double total = 0.0;
  std::vector<int64_t> to;
  for_each_offset(target, [&](int64_t o) { to.push_back(o); });
  std::vector<int64_t> dof;
  if (dpred.defined()) for_each_offset(dpred, [&](int64_t o) { dof.push_back(o); });
  size_t i = 0;
  for_each_offset(pred, [&](int64_t o) {
    const double d =
        static_cast<double>(pred.data()[o]) - static_cast<double>(target.data()[to[i]]);
    total += d * d;
    if (dpred.defined()) dpred.data()[dof[i]] = static_cast<float>(2.0 * d / n);
    ++i;
  });
  return n > 0 ? total / n : 0.0;
}

}  // namespace attn::train
