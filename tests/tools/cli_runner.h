// SPDX-License-Identifier: MIT
// Runs the attn CLI (ATTN_CLI_PATH) as a user runs it, for the CLI tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace attn::testing {

struct RunResult {
  int code;
  std::string output;  // stdout and stderr together
};

inline RunResult run_cli(const std::string& args) {
  const std::string cmd = std::string(ATTN_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace attn::testing
