// SPDX-License-Identifier: MIT
// The attn CLI: each subcommand lives in its own file and registers itself on the root app.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "attn/error.h"
#include "attn/tensor.h"

namespace attn::cli {

// A bad command line (an option's value, a missing or conflicting option): exit code 2, like the
// parser's own errors. Errors from the library or from files are runtime errors: exit code 1.
// docs/cli.md has the convention.
class UsageError : public ValueError {
 public:
  using ValueError::ValueError;
};
template <typename... Parts>
[[noreturn]] void usage_fail(std::string_view option, const Parts&... parts) {
  fail<UsageError>(option, parts...);
}

// A preset flag (--quick) fills in an option's value only where the command line left it out:
// `given` answers whether a flag ("--steps") was on the line; preset() sets the field otherwise.
using GivenOptions = std::function<bool(const char*)>;
inline GivenOptions given_options(const CLI::App* sub) {
  return [sub](const char* flag) { return sub->count(flag) > 0; };
}
template <typename Field, typename Value>
void preset(const GivenOptions& given, const char* flag, Field& field, const Value& value) {
  if (!given(flag)) field = value;
}

// Options that count something (--batch, --heads, ...): each must be >= 1.
inline void check_counts(std::initializer_list<std::pair<const char*, int64_t>> counts) {
  for (const auto& [flag, n] : counts)
    if (n < 1) usage_fail(flag, "must be >= 1, got ", n);
}

// --d-model and --heads of a model a subcommand builds: a width the heads divide.
inline void check_width_and_heads(int64_t d_model, int64_t heads) {
  if (d_model < 1 || heads < 1 || d_model % heads != 0)
    usage_fail("--d-model/--heads", "need d-model >= 1 divisible by heads >= 1, got ", d_model,
               " and ", heads);
}

// --threads N for a subcommand: 0 means all hardware threads; more than the hardware has is capped
// to it with a warning on stderr (oversubscribing makes every kernel slower and a measured peak
// meaningless).
int checked_threads(const char* subcommand, int requested);

// --simd-target NAME for the benches: every Highway kernel (attention, activations, pools, RNN
// gates, fbank) dispatches to NAME from then on, so lower targets are measured on one machine.
inline void add_simd_target_option(CLI::App* sub, std::string& target) {
  sub->add_option("--simd-target", target,
                  "Force a lower SIMD target for the kernels and the peak (e.g. AVX2 on an AVX-512 "
                  "machine); default the best this machine runs");
}
// Applies it ("" keeps the best); an unknown name is a usage error listing the choices.
void apply_simd_target(const std::string& target);

// --allow-non-finite on subcommands that read tensors: without it, inputs and weights holding NaN
// or ±Inf are rejected (naming the option, the file and the first bad index) before any work.
inline void add_allow_non_finite_flag(CLI::App* sub, bool& allow) {
  sub->add_flag("--allow-non-finite", allow,
                "Accept inputs and weights holding NaN or Inf (they then propagate as "
                "docs/masks.md describes)");
}
// (-inf is allowed where it has a meaning: an additive bias masks with it.)
template <typename T>
void check_finite_input(bool allow, const std::string& option, const std::string& path,
                        const BasicTensor<T>& tensor, bool allow_negative_infinity = false) {
  if (!allow)
    check_finite(option, path, tensor.view(), "; --allow-non-finite accepts it",
                 allow_negative_infinity);
}

void add_pe_command(CLI::App& app);
void add_attend_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_bench_sequence_models_command(CLI::App* bench);  // under `attn bench`
void add_bench_images_command(CLI::App* bench);           // under `attn bench`
void add_bench_speech_command(CLI::App* bench);           // under `attn bench`
void add_encode_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_train_fashion_command(CLI::App* train);           // under `attn train`
void add_experiment_images_command(CLI::App* experiment);  // under `attn experiment`
void add_experiment_speech_command(CLI::App* experiment);  // under `attn experiment`
void add_image_command(CLI::App& app);
void add_fbank_command(CLI::App& app);
void add_speech_command(CLI::App& app);
void add_stream_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_experiment_command(CLI::App& app);
void add_dist_command(CLI::App& app);  // only when built with MPI (ATTN_HAVE_DIST)

// "1,2,3" -> {1, 2, 3}; throws attn::ValueError naming the option on anything else.
std::vector<int64_t> parse_int_list(const std::string& option, const std::string& text);

// "--window LEFT,RIGHT" (or "W" for both sides) -> {left, right}.
std::pair<int64_t, int64_t> parse_window(const std::string& text);

}  // namespace attn::cli
