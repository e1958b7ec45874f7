// SPDX-License-Identifier: MIT
// attn attend: scaled dot-product attention on .npy arrays, with every mask parameter as a flag.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "attn/attn.h"
#include "commands.h"
#include "mask_flags.h"

namespace attn::cli {

namespace {

struct AttendOptions {
  std::string q, k, v, out, lse, probs, bias;
  MaskFlags mask;
  std::optional<double> scale;
  bool reference = false, allow_non_finite = false;
  int threads = 0;
  int64_t show = -1;  // --show T: print query T of batch 0, head 0
  // Backward (optional): --grad-out DOUT.npy with any of --dq/--dk/--dv/--dbias.
  std::string grad_out, dq, dk, dv, dbias;
};

// The array of option --name (file `path`), checked for NaN/Inf unless --allow-non-finite.
template <typename T>
BasicTensor<T> load(const AttendOptions& o, const std::string& option, const std::string& path) {
  const io::NpyArray a = io::read_npy(path);
  if (a.dtype != io::DType::kFloat32 && a.dtype != io::DType::kFloat64)
    fail<ValueError>(option, path, " has dtype ", io::dtype_name(a.dtype),
                     "; float32 or float64 is expected");
  BasicTensor<T> t;
  if constexpr (std::is_same_v<T, float>) {
    t = a.to_float();
  } else {
    t = a.to_double();
  }
  check_finite_input(o.allow_non_finite, option, path, t, option == "--bias");
  return t;
}

std::string describe(const Shape& q, const Shape& k, const AttendOptions& o) {
  std::string s = "B=" + std::to_string(q[0]) + " NH=" + std::to_string(q[1]) +
                  " NH_kv=" + std::to_string(k[1]) + " T=" + std::to_string(q[2]) +
                  " S=" + std::to_string(k[2]) + " HS=" + std::to_string(q[3]);
  std::string mask = o.mask.describe();
  if (!o.bias.empty()) mask = (mask == " none" ? "" : mask) + " bias";
  return s + " mask:" + mask;
}

// The backward on the kernel the forward used.
template <typename T>
void backward(const AttendOptions& o, const BasicTensor<T>& q, const BasicTensor<T>& k,
              const BasicTensor<T>& v, const BasicTensor<T>& out, const BasicTensor<T>& lse,
              const BasicTensor<T>& dout, const ops::AttentionMask& mask,
              const BasicTensor<T>& bias, double scale, BasicTensor<T>& dq, BasicTensor<T>& dk,
              BasicTensor<T>& dv, BasicTensor<T>& dbias, const Context& ctx) {
  if constexpr (std::is_same_v<T, float>) {
    if (!o.reference) {
      ops::attention_backward(q.view(), k.view(), v.view(), out.view(), lse.view(), dout.view(),
                              mask, bias.view(), scale, dq.view(), dk.view(), dv.view(),
                              dbias.view(), ctx);
      return;
    }
  }
  ops::reference::attention_backward(q.view(), k.view(), v.view(), out.view(), lse.view(),
                                     dout.view(), mask, bias.view(), scale, dq.view(), dk.view(),
                                     dv.view(), dbias.view(), ctx);
}

// What one query computed: the keys the mask lets it see, its attention weights over them, and the
// first output values (batch 0, head 0).
template <typename T>
void show_query(const BasicTensor<T>& q, const BasicTensor<T>& k, const BasicTensor<T>& out,
                const BasicTensor<T>& lse, const BasicTensor<T>& probs,
                const ops::AttentionMask& mask, const BasicTensor<T>& bias, int64_t t) {
  const int64_t S = k.dim(2);
  std::printf("query t=%lld (batch 0, head 0) of T=%lld, S=%lld keys; lse %.4f\n",
              static_cast<long long>(t), static_cast<long long>(q.dim(2)),
              static_cast<long long>(S), static_cast<double>(lse(0, 0, t)));
  std::printf("  key s   mask allows   weight\n");
  double total = 0.0;
  for (int64_t s = 0; s < S; ++s) {
    const bool visible = mask.key_visible(0, t, s) &&
                         !(bias.defined() && std::isinf(static_cast<double>(bias(0, 0, t, s))));
    const double w = static_cast<double>(probs(0, 0, t, s));
    total += w;
    std::printf("  %5lld   %-11s   %.4f\n", static_cast<long long>(s),
                visible ? "yes" : "no (masked)", w);
  }
  std::printf("  weights sum to %.4f; output[0:%lld] =", total,
              static_cast<long long>(std::min<int64_t>(out.dim(3), 8)));
  for (int64_t j = 0; j < std::min<int64_t>(out.dim(3), 8); ++j)
    std::printf(" %.4f", static_cast<double>(out(0, 0, t, j)));
  std::printf("\n");
}

template <typename T>
void run(const AttendOptions& o) {
  const auto q = load<T>(o, "--q", o.q), k = load<T>(o, "--k", o.k), v = load<T>(o, "--v", o.v);
  if (q.rank() != 4 || k.rank() != 4)
    fail<ShapeError>("--q/--k", "q and k must be (B, NH, T, HS) and (B, NH_kv, S, HS); got q ",
                     q.shape().str(), ", k ", k.shape().str());
  const auto mask = o.mask.build(q.dim(1));
  BasicTensor<T> bias;
  if (!o.bias.empty()) bias = load<T>(o, "--bias", o.bias);
  const double scale = o.scale ? *o.scale : ops::default_attention_scale(q.dim(3));
  BasicTensor<T> out(Shape{q.dim(0), q.dim(1), q.dim(2), v.rank() == 4 ? v.dim(3) : 0});
  BasicTensor<T> lse(Shape{q.dim(0), q.dim(1), q.dim(2)});
  BasicTensor<T> probs;
  if (!o.probs.empty() || o.show >= 0)
    probs = BasicTensor<T>(Shape{q.dim(0), q.dim(1), q.dim(2), k.dim(2)});
  if (o.show >= q.dim(2)) usage_fail("--show", "query ", o.show, " does not exist: T = ", q.dim(2));
  Context ctx(ContextOptions{.num_threads = checked_threads("attend", o.threads)});
  const auto start = std::chrono::steady_clock::now();
  if constexpr (std::is_same_v<T, float>) {
    if (!o.reference) {
      ops::attention_forward(q.view(), k.view(), v.view(), mask, bias.view(), scale, out.view(),
                             lse.view(), probs.view(), ctx);
    } else {
      ops::reference::attention_forward(q.view(), k.view(), v.view(), mask, bias.view(), scale,
                                        out.view(), lse.view(), probs.view(), ctx);
    }
  } else {
    ops::reference::attention_forward(q.view(), k.view(), v.view(), mask, bias.view(), scale,
                                      out.view(), lse.view(), probs.view(), ctx);
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  io::write_npy(o.out, out.view());
  if (!o.lse.empty()) io::write_npy(o.lse, lse.view());
  if (!o.probs.empty()) io::write_npy(o.probs, probs.view());
  std::cout << "attention " << describe(q.shape(), k.shape(), o) << " scale=" << scale << " ("
            << (std::is_same_v<T, float> ? "float32" : "float64") << ", "
            << (std::is_same_v<T, float> && !o.reference ? "fused" : "reference") << " kernel, "
            << ms << " ms) -> " << o.out << "\n";
  if (o.show >= 0) show_query(q, k, out, lse, probs, mask, bias, o.show);

  if (o.grad_out.empty()) return;
  const auto dout = load<T>(o, "--grad-out", o.grad_out);
  BasicTensor<T> dq(q.shape()), dk(k.shape()), dv(v.shape()), dbias;
  if (!o.dbias.empty()) {
    dbias = BasicTensor<T>(bias.shape());
  }
  backward(o, q, k, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias, ctx);
  if (!o.dq.empty()) io::write_npy(o.dq, dq.view());
  if (!o.dk.empty()) io::write_npy(o.dk, dk.view());
  if (!o.dv.empty()) io::write_npy(o.dv, dv.view());
  if (!o.dbias.empty()) io::write_npy(o.dbias, dbias.view());
}

bool all_float64(const AttendOptions& o) {
  if (!o.reference) return false;  // the fused kernel is float32
  for (const std::string* path : {&o.q, &o.k, &o.v})
    if (io::read_npy(*path).dtype != io::DType::kFloat64) return false;
  return true;
}

}  // namespace

void add_attend_command(CLI::App& app) {
  auto o = std::make_shared<AttendOptions>();
  CLI::App* sub = app.add_subcommand("attend",
                                     "Scaled dot-product attention on .npy arrays: q (B, NH, T, "
                                     "HS), k (B, NH_kv, S, HS), v (B, NH_kv, S, HSV).\n"
                                     "Runs the fused float32 kernel; --reference runs the "
                                     "specification (float64 if q, k and v are float64).");
  sub->add_option("--q", o->q, "Queries .npy (B, NH, T, HS)")->required();
  sub->add_option("--k", o->k, "Keys .npy (B, NH_kv, S, HS); NH must be a multiple of NH_kv")
      ->required();
  sub->add_option("--v", o->v, "Values .npy (B, NH_kv, S, HSV)")->required();
  sub->add_option("--out", o->out, "Output .npy (B, NH, T, HSV)")->required();
  sub->add_option("--lse", o->lse, "Also write the log-sum-exp of each score row (B, NH, T)");
  sub->add_option("--probs", o->probs, "Also write the attention probabilities (B, NH, T, S)");
  add_mask_flags(sub, o->mask);
  sub->add_option("--bias", o->bias, "Additive bias .npy (B or 1, NH or 1, T, S); -inf masks");
  sub->add_option("--scale", o->scale, "Score scale (default 1/sqrt(HS))");
  sub->add_flag("--reference", o->reference,
                "Use the reference kernel (the specification) instead of the fused one");
  sub->add_option("--grad-out", o->grad_out,
                  "Gradient of the output .npy (B, NH, T, HSV): run the backward too");
  sub->add_option("--dq", o->dq, "With --grad-out: write dq .npy");
  sub->add_option("--dk", o->dk, "With --grad-out: write dk .npy");
  sub->add_option("--dv", o->dv, "With --grad-out: write dv .npy");
  sub->add_option("--dbias", o->dbias, "With --grad-out and --bias: write dbias .npy");
  sub->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  add_allow_non_finite_flag(sub, o->allow_non_finite);
  sub->add_option(
      "--show", o->show,
      "Print query T (batch 0, head 0): the keys the mask allows, its weights, its output");
  sub->callback([o] {
    // Conflicting options are reported before any work (and before any output file is written).
    if (o->grad_out.empty() &&
        (!o->dq.empty() || !o->dk.empty() || !o->dv.empty() || !o->dbias.empty()))
      usage_fail("--dq/--dk/--dv/--dbias", "need --grad-out DOUT.npy");
    if (!o->dbias.empty() && o->bias.empty()) usage_fail("--dbias", "needs --bias");
    if (all_float64(*o)) {
      run<double>(*o);
    } else {
      run<float>(*o);
    }
  });
}

}  // namespace attn::cli
