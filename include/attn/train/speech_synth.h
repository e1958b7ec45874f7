// SPDX-License-Identifier: MIT
// Labelled speech made here: espeak-ng (Debian's libespeak-ng) speaks sentences of dictionary words
// with a choice of voices, speaking rates and pitches, and its phoneme events give each phoneme's
// start in the audio. Frame labels follow: the phoneme under each fbank frame's centre.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attn/tensor.h"

namespace attn::train {

// The label of silence and pauses (espeak's "_", "_:", "_!" ...).
inline constexpr const char* kSilencePhoneme = "_";

struct SynthesisOptions {
  std::string voice = "en-us";  // an espeak-ng voice, optionally with a variant: "en+f3"
  int rate_wpm = 175;           // words per minute, in [80, 450]
  int pitch = 50;               // in [0, 99]
};

struct SynthesizedSpeech {
  Tensor samples;                        // (N) at 16 kHz, in [-1, 1]
  std::vector<std::string> phonemes;     // espeak-ng phoneme names in order, pauses as "_"
  std::vector<double> phoneme_start_ms;  // where each starts in the audio
};

// Speaks `text` (thread-safe: espeak-ng's state is global, so calls take turns). ValueError for an
// unknown voice or options out of range, Error when espeak-ng cannot start (no espeak-ng-data).
SynthesizedSpeech synthesize(const std::string& text, const SynthesisOptions& options = {});

// The phoneme under the centre of each of the `frames` Kaldi frames (25 ms windows every 10 ms,
// snip_edges: frame f is centred at 12.5 + 10 f ms); silence before the first phoneme.
std::vector<std::string> frame_phonemes(const SynthesizedSpeech& speech, int64_t frames);

struct SpeechDatasetOptions {
  int64_t utterances = 200;
  uint64_t seed = 0;
  double test_fraction = 0.2;  // of the utterances, spoken by the test voices only
  int min_words = 3, max_words = 8;
  std::string words = "/usr/share/dict/words";  // Debian's wamerican
};

// The voices of the two splits: disjoint, so the test set has voices never heard in training.
std::vector<std::string> speech_train_voices();
std::vector<std::string> speech_test_voices();

// One utterance of a synthetic corpus: what was spoken, how, and its frame labels.
struct SpeechUtterance {
  std::string split;  // "train" or "test"
  std::string text, voice;
  int rate_wpm = 0, pitch = 0;
  SynthesizedSpeech speech;
  std::vector<int64_t> frame_labels;  // ids into the corpus inventory, one per fbank frame
};

struct SpeechCorpus {
  std::vector<std::string> phonemes;  // the inventory: id -> name, silence (id 0) first, then the
                                      // other phonemes in name order
  std::vector<SpeechUtterance> utterances;  // the training ones first, then the test ones
};

// Speaks options.utterances random sentences in memory (what generate_speech_dataset writes).
// Deterministic for a seed in a fresh process (see synthesize). `progress(done, total)` is called
// after each utterance if given.
SpeechCorpus make_speech_corpus(const SpeechDatasetOptions& options,
                                const std::function<void(int64_t, int64_t)>& progress = {});

// Writes a data set into `dir`: train/ and test/ with utt_NNNNN.wav (16 kHz PCM16) and
// utt_NNNNN.labels.npy (int64 phoneme ids, one per fbank frame of the WAV), phonemes.json (the
// inventory: id -> name, silence first), manifest.jsonl (one line per utterance: split, files,
// text, voice, rate, pitch, phonemes). Deterministic for a seed. `progress(done, total)` is called
// after each utterance if given.
void generate_speech_dataset(const std::string& dir, const SpeechDatasetOptions& options,
                             const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace attn::train
