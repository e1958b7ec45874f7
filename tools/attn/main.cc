// SPDX-License-Identifier: MIT
// attn: command-line front end. Every error is one line on stderr, "attn: <subcommand>: <what>",
// with exit code 2 for usage errors (the parser's and UsageError) and 1 for runtime errors
// (docs/cli.md).
#include <unistd.h>

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
      usage_fail(option, "expected comma-separated integers, got '", text, "'");
    values.push_back(v);
  }
  if (values.empty() || (!text.empty() && text.back() == ','))
    usage_fail(option, "expected comma-separated integers, got '", text, "'");
  return values;
}

std::pair<int64_t, int64_t> parse_window(const std::string& text) {
  const auto w = parse_int_list("--window", text);
  if (w.size() > 2) usage_fail("--window", "expected LEFT,RIGHT (or W for both), got '", text, "'");
  return {w[0], w.size() == 2 ? w[1] : w[0]};
}

int checked_threads(const char* subcommand, int requested) {
  if (requested < 0)
    usage_fail("--threads", "must be >= 0 (0 = all hardware threads), got ", requested);
  const int hardware = hardware_threads();
  if (requested > hardware) {
    std::cerr << "attn: " << subcommand << ": warning: --threads " << requested
              << " is more than the " << hardware << " hardware threads; using " << hardware
              << "\n";
    return hardware;
  }
  return requested;
}

void apply_simd_target(const std::string& target) {
  try {
    ops::set_simd_target(target);
  } catch (const ValueError& e) {
    usage_fail("--simd-target", e.what());
  }
}

namespace {
// "train reverse", "bench attention", ...: the subcommands the command line chose.
std::string chosen_subcommands(const CLI::App& app) {
  std::string names;
  for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
    sub = sub->get_subcommands().front();
    names += (names.empty() ? "" : " ") + sub->get_name();
  }
  return names;
}

// The parser's message when no subcommand was recognised: "attn bogus" is reported as an unknown
// subcommand rather than CLI11's "A subcommand is required".
std::string top_level_message(const CLI::App& app, int argc, char** argv, const std::string& what) {
  if (argc < 2 || argv[1][0] == '-') return what;
  std::string names;
  for (const CLI::App* sub : app.get_subcommands({}))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  return std::string("unknown subcommand '") + argv[1] + "'; choose one of " + names;
}

// OpenBLAS picks its kernels when it loads, from OPENBLAS_CORETYPE or its own CPU detection, which
// takes CPUs newer than it knows for a generic SSE3 core (ops::suggested_blas_coretype). Then the
// CLI restarts itself once with the better core set, unless the user set one.
void restart_with_better_blas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const std::string core = ops::suggested_blas_coretype();
  if (core.empty()) return;
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run on as we are
}
}  // namespace

}  // namespace attn::cli

int main(int argc, char** argv) {
  attn::cli::restart_with_better_blas_core(argv);
  CLI::App app{"attn: self-attention on the CPU (attention kernels, positional encodings, tools)",
               "attn"};
  app.set_version_flag("--version", std::string("attn ") + attn::kVersion);
  app.require_subcommand(1);
  attn::cli::add_pe_command(app);
  attn::cli::add_attend_command(app);
  attn::cli::add_bench_command(app);
  attn::cli::add_encode_command(app);
  attn::cli::add_train_command(app);
  attn::cli::add_experiment_command(app);
  attn::cli::add_image_command(app);
  attn::cli::add_fbank_command(app);
  attn::cli::add_speech_command(app);
  attn::cli::add_stream_command(app);
  attn::cli::add_data_command(app);
#ifdef ATTN_HAVE_DIST
  attn::cli::add_dist_command(app);
#endif
  auto report = [&](const std::string& what, int code) {
    const std::string sub = attn::cli::chosen_subcommands(app);
    std::cerr << "attn: " << (sub.empty() ? "" : sub + ": ")
              << (sub.empty() ? attn::cli::top_level_message(app, argc, argv, what) : what) << "\n";
    return code;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return report(std::string(e.what()) + " (see --help)", 2);
  } catch (const attn::cli::UsageError& e) {
    return report(std::string(e.what()) + " (see --help)", 2);
  } catch (const attn::Error& e) {
    return report(e.what(), 1);
  } catch (const std::bad_alloc&) {
    return report("out of memory", 1);
  } catch (const std::exception& e) {
    return report(e.what(), 1);
  }
  return 0;
}
