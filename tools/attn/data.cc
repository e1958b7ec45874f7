// SPDX-License-Identifier: MIT
// attn data speech: labelled speech made with espeak-ng (train::generate_speech_dataset).
#include <iostream>
#include <limits>
#include <memory>

#include "attn/attn.h"
#include "commands.h"

namespace attn::cli {

namespace {

struct DataSpeechOptions {
  std::string out;
  train::SpeechDatasetOptions data;
  bool quiet = false;
};

void run_data_speech(const DataSpeechOptions& o) {
  if (o.data.utterances < 1) usage_fail("--utterances", "must be >= 1, got ", o.data.utterances);
  std::unique_ptr<train::ProgressBar> bar;
  if (!o.quiet) bar = std::make_unique<train::ProgressBar>(std::cerr, o.data.utterances);
  train::generate_speech_dataset(o.out, o.data, [&](int64_t done, int64_t) {
    if (bar) bar->update(done, std::numeric_limits<double>::quiet_NaN());
  });
  if (bar) bar->finish();
  const auto n_test =
      static_cast<int64_t>(static_cast<double>(o.data.utterances) * o.data.test_fraction + 0.5);
  std::cout << "wrote " << o.data.utterances - n_test << " training and " << n_test
            << " test utterances (voices never heard in training) to " << o.out
            << " (manifest.jsonl, phonemes.json)\n";
}

}  // namespace

void add_data_command(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Make data sets");
  data->require_subcommand(1);
  auto o = std::make_shared<DataSpeechOptions>();
  CLI::App* sub = data->add_subcommand(
      "speech", "Labelled speech from espeak-ng: 16 kHz WAVs with a phoneme label per fbank frame");
  sub->add_option("--out", o->out, "Output directory")->required();
  sub->add_option("--utterances", o->data.utterances, "Utterances in all")->capture_default_str();
  sub->add_option("--seed", o->data.seed, "Seed of the texts, voices, rates and pitches")
      ->capture_default_str();
  sub->add_option("--test-fraction", o->data.test_fraction,
                  "Share of utterances spoken by the held-out voices")
      ->capture_default_str();
  sub->add_option("--words", o->data.words, "Word list (one word a line)")->capture_default_str();
  sub->add_flag("--quiet", o->quiet, "No progress bar");
  sub->callback([o] { run_data_speech(*o); });
}

}  // namespace attn::cli
