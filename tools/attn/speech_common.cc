// SPDX-License-Identifier: MIT
// Speech model directories, audio and features for the CLI (speech_common.h).
#include "speech_common.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace attn::cli {

namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail<IoError>("--model", "cannot open '", path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

SpeechModel load_speech_model(const std::string& dir) {
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const std::string weights_path = (fs::path(dir) / "model.safetensors").string();
  const nn::SpeechEncoderConfig config =
      nn::parse_speech_encoder_config(read_text(config_path), config_path);
  SpeechModel m;
  Rng rng(0);
  m.encoder = std::make_unique<nn::SpeechEncoder>(config, rng);
  const io::SafetensorsFile weights = io::read_safetensors(weights_path);
  for (const auto& [name, tensor] : weights.tensors)
    check_finite("--model", weights_path + " tensor '" + name + "'", tensor.view(), "");
  m.encoder->load_state_dict(weights.tensors, /*strict=*/true);
  m.encoder->set_training(false);
  const std::string cmvn_path = (fs::path(dir) / "global_cmvn.json").string();
  if (fs::exists(cmvn_path)) {
    m.cmvn = audio::CmvnStats::load(cmvn_path);
    if (m.cmvn->dim() != config.input_dim)
      fail<ValueError>("--model", cmvn_path, " has ", m.cmvn->dim(),
                       " features but the model takes ", config.input_dim);
  }
  m.fbank.num_mel_bins = static_cast<int>(config.input_dim);
  return m;
}

void save_speech_model(const std::string& dir, const nn::SpeechEncoderConfig& config,
                       nn::SpeechEncoder& encoder) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail<IoError>("--out", "cannot create '", dir, "': ", ec.message());
  const std::string config_path = (fs::path(dir) / "config.json").string();
  std::ofstream f(config_path);
  f << nn::speech_encoder_config_to_json(config);
  if (!f) fail<IoError>("--out", "cannot write '", config_path, "'");
  std::vector<io::NamedTensorView> tensors;
  for (const auto& [name, view] : encoder.state_dict()) tensors.push_back({name, view});
  io::write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors);
}

Tensor load_speech_samples(const std::vector<std::string>& paths) {
  if (paths.empty()) fail<ValueError>("--wav", "no audio file given");
  std::vector<float> all;
  for (const auto& path : paths) {
    const audio::Audio a = audio::load(path, audio::LoadOptions{});  // (1, N) at 16 kHz
    for (float v : a.samples.values()) all.push_back(v * 32768.0f);
  }
  return Tensor::from_values(Shape{static_cast<int64_t>(all.size())}, all);
}

Tensor speech_features(const SpeechModel& model, ConstTensorView samples, const Context& ctx) {
  Tensor feats = audio::fbank(samples, model.fbank, ctx);
  if (model.cmvn && feats.dim(0) > 0) model.cmvn->apply(feats.view());
  return feats;
}

std::vector<std::string> librivox_clips() {
  std::vector<std::string> clips;
  const fs::path dir = "/usr/share/pocketsphinx/test/data/librivox";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".wav") clips.push_back(e.path().string());
  std::sort(clips.begin(), clips.end());
  return clips;
}

}  // namespace attn::cli
