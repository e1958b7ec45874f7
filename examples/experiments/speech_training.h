// SPDX-License-Identifier: MIT
// Training and evaluating the frame classifiers of `attn experiment speech` (speech_models.h) on a
// synthetic espeak-ng corpus (train::make_speech_corpus) with train::fit.
//
// Features: Kaldi fbank (25 ms windows every 10 ms) of the int16-scaled samples, normalised per bin
// with the training set's mean and standard deviation (global CMVN, as WeNet). Labels: one per
// encoder frame (40 ms): encoder frame j reads feature frames 4j..4j+6 and takes the label of the
// one at its centre, 4j+3.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attn/attn.h"
#include "speech_models.h"

namespace attn::examples {

struct SpeechExperimentData {
  std::vector<std::string> phonemes;  // id -> name (silence 0)
  std::map<std::string, int64_t> ids;
  int64_t mel_bins = 40;
  std::vector<float> mean, inv_std;                    // per bin, from the training features
  std::vector<train::SynthesizedSpeech> train_speech;  // kept for waveform augmentation
  std::vector<Tensor> train_feats, test_feats;         // (T, F), normalised
  std::vector<std::vector<int64_t>> train_labels, test_labels;  // per encoder frame
  int64_t majority_class = 0;      // the most common training label (silence, mostly)
  double majority_accuracy = 0.0;  // of always predicting it, on the test encoder frames
};

// Takes the corpus (its training waveforms move into the result).
SpeechExperimentData prepare_speech_data(train::SpeechCorpus corpus, int64_t mel_bins,
                                         const Context& ctx);

// samples (N) in [-1, 1] at 16 kHz -> normalised fbank (T, F) with the data's statistics.
Tensor speech_features(ConstTensorView samples, const SpeechExperimentData& data,
                       const Context& ctx);
// Feature-frame labels -> encoder-frame labels (the label at 4j + 3).
std::vector<int64_t> encoder_frame_labels(const std::vector<int64_t>& frame_labels);

struct SpeechTrainOptions {
  int64_t steps = 600, batch = 16;
  double lr = 1e-3, min_lr = 1e-5, weight_decay = 0.01, clip = 5.0;
  double warmup_fraction = 0.05;
  train::SpeechAugmentOptions augment;
  int64_t evaluations = 4;  // held-out evaluations spread over the run
  uint64_t seed = 0;
  bool progress = true;
  std::string csv_path;  // "" = none
};

struct SpeechTrainResult {
  double test_accuracy = 0.0;  // frame accuracy on the held-out voices, after training
  int64_t parameters = 0, steps = 0;
  double train_seconds = 0.0;  // training steps only
  std::vector<double> losses;
  std::vector<int64_t> eval_steps;
  std::vector<double> eval_accuracy;
};

SpeechTrainResult train_speech_model(SpeechFrameModel& model, const SpeechExperimentData& data,
                                     const SpeechTrainOptions& options, const Context& ctx);

// Frame accuracy over utterances (evaluation mode, batches of 16).
double speech_accuracy(SpeechFrameModel& model, const std::vector<Tensor>& feats,
                       const std::vector<std::vector<int64_t>>& labels, const Context& ctx);
// Per-utterance predictions (argmax per encoder frame) in evaluation mode.
std::vector<int64_t> speech_predict(SpeechFrameModel& model, ConstTensorView feats,
                                    const Context& ctx);

// Median milliseconds of a forward (evaluation mode) over `frames` feature frames of one utterance,
// for each model: `rounds` rounds that call every model once in turn, so that a shared machine's
// slow minutes fall on all of them alike (timed one model after another, the same model moved by
// 30% between runs of the experiment).
std::vector<double> speech_inference_ms(const std::vector<SpeechFrameModel*>& models,
                                        int64_t frames, int rounds, const Context& ctx);

// Frame predictions -> phoneme sequence: runs of one label merged, silence (id 0) dropped.
std::vector<int64_t> collapse_frames(const std::vector<int64_t>& frame_labels);
// Levenshtein distance between two label sequences (substitutions, insertions, deletions cost 1).
int64_t edit_distance(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

}  // namespace attn::examples
