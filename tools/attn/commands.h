// SPDX-License-Identifier: MIT
// The attn CLI: each subcommand lives in its own file and registers itself on the root app.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include "attn/error.h"

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

// --threads N for a subcommand: 0 means all hardware threads; more than the hardware has is capped
// to it with a warning on stderr (oversubscribing makes every kernel slower and a measured peak
// meaningless).
int checked_threads(const char* subcommand, int requested);

void add_pe_command(CLI::App& app);
void add_attend_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_encode_command(CLI::App& app);
void add_train_command(CLI::App& app);

// "1,2,3" -> {1, 2, 3}; throws attn::ValueError naming the option on anything else.
std::vector<int64_t> parse_int_list(const std::string& option, const std::string& text);

// "--window LEFT,RIGHT" (or "W" for both sides) -> {left, right}.
std::pair<int64_t, int64_t> parse_window(const std::string& text);

}  // namespace attn::cli
