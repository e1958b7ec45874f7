// SPDX-License-Identifier: MIT
// The attn CLI: each subcommand lives in its own file and registers itself on the root app.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

namespace attn::cli {

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
