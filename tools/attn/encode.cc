// SPDX-License-Identifier: MIT
// attn encode: run a transformer encoder (e.g. a torch.nn.TransformerEncoder exported by
// scripts/export_torch_encoder.py), or a torch.nn.LSTM / GRU (scripts/export_torch_rnn.py: a
// config with "type": "lstm" or "gru"), on a .npy input.
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

#include <nlohmann/json.hpp>

#include "attn/attn.h"
#include "commands.h"
#include "mask_flags.h"

namespace attn::cli {

namespace {

struct EncodeOptions {
  std::string config, weights, input, out;
  std::string lengths, state_out;  // recurrent models only
  MaskFlags mask;
  bool non_strict = false, quiet = false, allow_non_finite = false;
  int threads = 0;
};

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail<IoError>("--config", "cannot open '", path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The weights into a model, strictly unless --non-strict (then missing/unexpected keys warn).
void load_weights(const EncodeOptions& o, nn::Module& model) {
  const io::SafetensorsFile weights = io::read_safetensors(o.weights);
  for (const auto& [name, tensor] : weights.tensors)
    check_finite_input(o.allow_non_finite, "--weights", o.weights + " tensor '" + name + "'",
                       tensor);
  const nn::LoadReport report = model.load_state_dict(weights.tensors, !o.non_strict);
  for (const auto& k : report.missing_keys)
    std::cerr << "attn encode: warning: missing key " << k << "\n";
  for (const auto& k : report.unexpected_keys)
    std::cerr << "attn encode: warning: unexpected key " << k << "\n";
}

// {"type": "lstm" | "gru", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
// "bidirectional"}: what scripts/export_torch_rnn.py writes.
std::unique_ptr<nn::RNNBase> make_rnn(const nlohmann::json& j, const std::string& path) {
  nn::RnnOptions r;
  try {
    r.input_size = j.at("input_size").get<int64_t>();
    r.hidden_size = j.at("hidden_size").get<int64_t>();
    r.num_layers = j.value("num_layers", int64_t{1});
    r.bias = j.value("bias", true);
    r.batch_first = j.value("batch_first", false);
    r.bidirectional = j.value("bidirectional", false);
  } catch (const nlohmann::json::exception& e) {
    fail<ValueError>("--config", path, ": ", e.what());
  }
  Rng rng(0);
  if (j.at("type") == "lstm") return std::make_unique<nn::LSTM>(r, rng);
  return std::make_unique<nn::GRU>(r, rng);
}

void run_encode_rnn(const EncodeOptions& o, const nlohmann::json& j, const Context& ctx) {
  // An RNN has no attention to mask: such flags were ignored without a word.
  if (const std::string mask = o.mask.describe(); mask != " none")
    usage_fail("--causal/--window/--dilation/--chunk/--key-lengths/--alibi",
               "are attention masks for transformer encoders; this config is a recurrent model "
               "(padding: --lengths), got",
               mask);
  const auto model = make_rnn(j, o.config);
  model->set_training(false);
  load_weights(o, *model);
  const Tensor x = io::read_npy(o.input).to_float();
  check_finite_input(o.allow_non_finite, "--input", o.input, x);
  std::vector<int64_t> lengths;
  if (!o.lengths.empty()) lengths = parse_int_list("--lengths", o.lengths);
  const auto start = std::chrono::steady_clock::now();
  nn::RNNBase::Output out;
  try {
    out = model->forward(x, {}, {}, lengths, nullptr, ctx);
  } catch (const ShapeError& e) {
    fail<ShapeError>("--input", o.input, ": ", e.what());
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  io::write_npy(o.out, out.output.view());
  if (!o.state_out.empty()) io::write_npy(o.state_out, out.h_n.view());
  if (!o.quiet)
    std::cout << "encoded " << x.shape().str() << " with a " << model->options().num_layers
              << "-layer " << (model->directions() == 2 ? "bidirectional " : "")
              << ops::rnn_cell_name(model->cell()) << ", hidden " << model->options().hidden_size
              << ", " << model->num_parameters() << " parameters in " << ms << " ms -> " << o.out
              << "\n";
}

void run_encode(const EncodeOptions& o) {
  Context ctx(ContextOptions{.num_threads = checked_threads("encode", o.threads)});
  const std::string text = read_text(o.config);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object() && j.contains("type") && (j["type"] == "lstm" || j["type"] == "gru"))
    return run_encode_rnn(o, j, ctx);
  if (!o.lengths.empty() || !o.state_out.empty())
    usage_fail("--lengths/--state-out",
               "are for recurrent models (a config with \"type\": "
               "\"lstm\" or \"gru\"); transformer encoders take --key-lengths");
  const nn::EncoderModelConfig config = nn::parse_encoder_config(text, o.config);
  Rng rng(0);
  nn::EncoderModel model(config, rng);
  model.set_training(false);
  load_weights(o, model);

  const Tensor x = io::read_npy(o.input).to_float();
  check_finite_input(o.allow_non_finite, "--input", o.input, x);
  if (x.rank() != 3 || x.dim(2) != config.layer.d_model)
    fail<ShapeError>("--input", o.input, " has shape ", x.shape().str(), " but ",
                     config.batch_first ? "(B, T, " : "(T, B, ", config.layer.d_model,
                     ") is expected");
  const int64_t B = config.batch_first ? x.dim(0) : x.dim(1),
                T = config.batch_first ? x.dim(1) : x.dim(0);
  nn::AttentionOptions opts;
  opts.mask = o.mask.build(config.layer.nhead, B);
  for (int64_t len : opts.mask.key_lengths)
    if (len < 1 || len > T)
      usage_fail("--key-lengths", "each length must be in [1, ", T, "], got ", len);
  const auto start = std::chrono::steady_clock::now();
  const Tensor y = model.forward(x, opts, nullptr, ctx);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  io::write_npy(o.out, y.view());
  if (!o.quiet)
    std::cout << "encoded " << x.shape().str() << " with " << config.num_layers
              << " layer(s), d_model " << config.layer.d_model << ", " << model.num_parameters()
              << " parameters in " << ms << " ms -> " << o.out << "\n";
}

}  // namespace

void add_encode_command(CLI::App& app) {
  auto o = std::make_shared<EncodeOptions>();
  CLI::App* sub = app.add_subcommand(
      "encode",
      "Run a transformer encoder or an LSTM/GRU (config JSON + safetensors weights) on a .npy "
      "input");
  sub->add_option("--config", o->config, "Architecture JSON (see docs/nn.md)")->required();
  sub->add_option("--weights", o->weights, "Weights (.safetensors, PyTorch state_dict names)")
      ->required();
  sub->add_option("--input", o->input,
                  "Input .npy, (B, T, C) (or (T, B, C) with batch_first false)")
      ->required();
  sub->add_option("--out", o->out, "Output .npy, same layout as the input")->required();
  add_mask_flags(sub, o->mask, kAllMaskFlags & ~kQueryOffsetFlag);
  sub->add_option("--lengths", o->lengths,
                  "LSTM/GRU: valid steps per sequence, B values in [1, T] (packed-sequence "
                  "semantics: zeros past each end)");
  sub->add_option("--state-out", o->state_out,
                  "LSTM/GRU: also write the final hidden state h_n (L·D, B, H) to this .npy");
  sub->add_flag("--non-strict", o->non_strict,
                "Allow missing/unexpected weights (warned), like strict=False");
  sub->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  sub->add_flag("--quiet", o->quiet, "No summary line");
  add_allow_non_finite_flag(sub, o->allow_non_finite);
  sub->callback([o] { run_encode(*o); });
}

}  // namespace attn::cli
