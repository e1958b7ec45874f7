// SPDX-License-Identifier: MIT
// What the speech subcommands share (fbank, speech new-model/encode, stream, bench speech): a model
// directory, the audio a model hears and the features it takes.
//
// A model directory holds config.json (nn::parse_speech_encoder_config), model.safetensors (the
// parameters, SpeechEncoder names) and optionally global_cmvn.json (WeNet's format). The model's
// features are Kaldi fbank with input_dim bins and torchaudio's defaults otherwise, computed on
// 16 kHz mono samples scaled to int16 range (× 32768, as Kaldi and WeNet feed them).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attn/attn.h"

namespace attn::cli {

struct SpeechModel {
  std::unique_ptr<nn::SpeechEncoder> encoder;
  std::optional<audio::CmvnStats> cmvn;
  audio::FbankOptions fbank;  // the features the encoder takes
};

// nn::load_speech_encoder(dir), its weights checked for NaN and Inf, and DIR/global_cmvn.json (if
// present). Throws IoError / ValueError naming the file.
SpeechModel load_speech_model(const std::string& dir);

// The files, each loaded at 16 kHz mono, concatenated, scaled by 32768: (N).
Tensor load_speech_samples(const std::vector<std::string>& paths);
// The model's features of a whole utterance (T, input_dim), CMVN applied when the model has it.
Tensor speech_features(const SpeechModel& model, ConstTensorView samples, const Context& ctx);

// The five LibriVox clips of Debian's pocketsphinx-testdata, sorted (empty if not installed).
std::vector<std::string> librivox_clips();

}  // namespace attn::cli
