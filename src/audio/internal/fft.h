// SPDX-License-Identifier: MIT
// Real-input FFTs through FFTW (single precision). FFTW beat kissfft 4.8x on the 512-point frames
// fbank uses (bench/bench_fft.cc, docs/design.md). Plans are made once per size (FFTW's planner is
// not thread-safe, so under a lock) and executed concurrently on per-worker buffers.
#pragma once

#include <cstdint>
#include <memory>

namespace attn::audio::internal {

// Buffers one worker transforms with: `input` (n floats) and `output` (n / 2 + 1 complex values as
// interleaved re, im), allocated with FFTW's alignment.
class FftBuffers {
 public:
  explicit FftBuffers(int n);
  ~FftBuffers();
  FftBuffers(const FftBuffers&) = delete;
  FftBuffers& operator=(const FftBuffers&) = delete;
  float* input() const { return input_; }
  const float* output() const { return output_; }
  float* mutable_output() const { return output_; }

 private:
  float* input_;
  float* output_;
};

class RealFft {
 public:
  explicit RealFft(int n);  // n >= 1
  int size() const { return n_; }
  // output = DFT(input) for bins 0 .. n/2. Safe to call from several threads on different buffers.
  void forward(const FftBuffers& buffers) const;

 private:
  int n_;
  void* plan_;  // fftwf_plan, owned by the process-wide cache
};

}  // namespace attn::audio::internal
