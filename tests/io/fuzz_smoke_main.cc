// SPDX-License-Identifier: MIT
// A deterministic fuzz driver for builds without libFuzzer: mutates the seed files (byte flips,
// inserts, truncations, header edits) N times and feeds each result to LLVMFuzzerTestOneInput. Any
// exception other than IoError escapes and fails the test; sanitizer builds catch memory errors.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "attn/context.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " SEED_DIR ITERATIONS\n";
    return 2;
  }
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& e : std::filesystem::directory_iterator(argv[1])) {
    std::ifstream f(e.path(), std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  if (seeds.empty()) {
    std::cerr << "no seed files in " << argv[1] << "\n";
    return 2;
  }
  const long iterations = std::strtol(argv[2], nullptr, 10);
  attn::Rng rng(12345);
  // Tokens of both formats' headers (.npy dict literals, safetensors JSON).
  static const char* kTokens[] = {"(",
                                  ")",
                                  ",",
                                  "'",
                                  "{",
                                  "}",
                                  ":",
                                  "9999999999",
                                  "-1",
                                  "True",
                                  "<f8",
                                  "|b1",
                                  "0",
                                  "\n",
                                  "\"",
                                  "[",
                                  "]",
                                  "\"F16\"",
                                  "\"BF16\"",
                                  "\"data_offsets\"",
                                  "18446744073709551615"};
  for (const auto& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());
  for (long i = 0; i < iterations; ++i) {
    std::vector<uint8_t> input =
        seeds[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(seeds.size()) - 1))];
    const int64_t edits = rng.uniform_int(1, 4);
    for (int64_t e = 0; e < edits; ++e) {
      if (input.empty()) input.push_back(0);
      const auto pos =
          static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(input.size()) - 1));
      switch (rng.uniform_int(0, 4)) {
        case 0:
          input[pos] = static_cast<uint8_t>(rng.next_u64());
          break;  // flip a byte
        case 1:
          input.resize(pos);
          break;  // truncate
        case 2:
          input.insert(input.begin() + static_cast<long>(pos),
                       static_cast<uint8_t>(rng.next_u64()));
          break;
        case 3:
          input.erase(input.begin() + static_cast<long>(pos));
          break;
        default: {  // splice a token
          const char* tok = kTokens[rng.uniform_int(0, sizeof kTokens / sizeof *kTokens - 1)];
          input.insert(input.begin() + static_cast<long>(pos), tok,
                       tok + std::char_traits<char>::length(tok));
        }
      }
    }
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  std::cout << argv[0] << ": " << iterations << " mutated inputs from " << seeds.size()
            << " seeds, no crash\n";
  return 0;
}
