// SPDX-License-Identifier: MIT
// attn: command-line front end. Library errors are printed to stderr and give exit code 1; usage
// errors give CLI11's non-zero codes.
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "attn/attn.h"
#include "commands.h"

namespace attn::cli {

std::vector<int64_t> parse_int_list(const std::string& option, const std::string& text) {
  std::vector<int64_t> values;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size())
      fail<ValueError>(option, "expected comma-separated integers, got '", text, "'");
    values.push_back(v);
  }
  if (values.empty() || (!text.empty() && text.back() == ','))
    fail<ValueError>(option, "expected comma-separated integers, got '", text, "'");
  return values;
}

std::pair<int64_t, int64_t> parse_window(const std::string& text) {
  const auto w = parse_int_list("--window", text);
  if (w.size() > 2)
    fail<ValueError>("--window", "expected LEFT,RIGHT (or W for both), got '", text, "'");
  return {w[0], w.size() == 2 ? w[1] : w[0]};
}

}  // namespace attn::cli

int main(int argc, char** argv) {
  CLI::App app{"attn: self-attention on the CPU (attention kernels, positional encodings, tools)",
               "attn"};
  app.set_version_flag("--version", std::string("attn ") + attn::kVersion);
  app.require_subcommand(1);
  attn::cli::add_pe_command(app);
  attn::cli::add_attend_command(app);
  attn::cli::add_bench_command(app);
  attn::cli::add_encode_command(app);
  attn::cli::add_train_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const attn::Error& e) {
    std::cerr << "attn: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "attn: unexpected error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
