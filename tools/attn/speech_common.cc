// SPDX-License-Identifier: MIT
// Speech model directories, audio and features for the CLI (speech_common.h).
#include "speech_common.h"

#include <algorithm>
#include <filesystem>

namespace attn::cli {

namespace fs = std::filesystem;

SpeechModel load_speech_model(const std::string& dir) {
  SpeechModel m;
  m.encoder = nn::load_speech_encoder(dir);
  for (const auto& [name, view] : m.encoder->state_dict())
    check_finite("--model", dir + "/model.safetensors tensor '" + name + "'", view, "");
  const std::string cmvn_path = (fs::path(dir) / "global_cmvn.json").string();
  if (fs::exists(cmvn_path)) {
    m.cmvn = audio::CmvnStats::load(cmvn_path);
    if (m.cmvn->dim() != m.encoder->config().input_dim)
      fail<ValueError>("--model", cmvn_path, " has ", m.cmvn->dim(),
                       " features but the model takes ", m.encoder->config().input_dim);
  }
  m.fbank.num_mel_bins = static_cast<int>(m.encoder->config().input_dim);
  return m;
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
