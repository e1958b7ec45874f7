// SPDX-License-Identifier: MIT
// FFTs through FFTW: real input in float (Whisper's log-mel) and a complex transform, float or
// double, that takes two real frames at once (fbank). FFTW beat kissfft 4.8x on the 512-point
// frames fbank uses (docs/design.md). Plans are made once per size (FFTW's planner is not
// thread-safe, so under a lock) and executed concurrently on per-worker buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace attn::audio::internal {

// Two 64-byte aligned arrays of T, an input and an output, that one worker transforms with; their
// sizes are the transform's (below). T is float (fftw3f) or double (fftw3).
template <typename T>
class FftBufferPair {
 public:
  FftBufferPair(size_t input_values, size_t output_values);
  ~FftBufferPair();
  FftBufferPair(const FftBufferPair&) = delete;
  FftBufferPair& operator=(const FftBufferPair&) = delete;
  T* input() const { return input_; }
  const T* output() const { return output_; }
  T* mutable_output() const { return output_; }

 private:
  T* input_;
  T* output_;
};

// A real transform's buffers: `input` (n values) and `output` (n / 2 + 1 complex values as
// interleaved re, im).
template <typename T>
class BasicFftBuffers : public FftBufferPair<T> {
 public:
  explicit BasicFftBuffers(int n)
      : FftBufferPair<T>(static_cast<size_t>(n), 2 * static_cast<size_t>(n / 2 + 1)) {}
};

template <typename T>
class BasicRealFft {
 public:
  explicit BasicRealFft(int n);  // n >= 1
  int size() const { return n_; }
  // output = DFT(input) for bins 0 .. n/2. Safe to call from several threads on different buffers.
  void forward(const BasicFftBuffers<T>& buffers) const;

 private:
  int n_;
  void* plan_;  // fftw(f)_plan, owned by the process-wide cache
};

// fbank's transform: two real frames in one complex transform, z = a + i·b, Z = DFT(z) (n
// points), from which A_k = (Z_k + conj Z_(n-k)) / 2 and B_k = (Z_k - conj Z_(n-k)) / 2i
// (power_pair_lanes). FFTW's complex codelets are SIMD and its real-input ones much less so: 0.34
// against 0.48 µs per 512-point frame (double, one thread, AVX-512 machine, FFTW_ESTIMATE plans,
// FFTW's AVX codelets). fbank runs it in float32 and redoes in double the pairs whose float32
// rounding would show (fbank.cc, kRedoBelow).
template <typename T>
class BasicComplexFftBuffers : public FftBufferPair<T> {
 public:
  // input and output: n complex values, interleaved re, im
  explicit BasicComplexFftBuffers(int n)
      : FftBufferPair<T>(2 * static_cast<size_t>(n), 2 * static_cast<size_t>(n)) {}
};

template <typename T>
class BasicComplexFft {
 public:
  explicit BasicComplexFft(int n);  // n >= 1
  int size() const { return n_; }
  // output = DFT(input), forward (e^{-2πi jk/n}); input is left as it was (FFTW's default for an
  // out-of-place complex transform). Safe from several threads on different buffers.
  void forward(const BasicComplexFftBuffers<T>& buffers) const;

 private:
  int n_;
  void* plan_;  // fftw(f)_plan, owned by the process-wide cache
};

using ComplexFftBuffersD = BasicComplexFftBuffers<double>;
using ComplexFftD = BasicComplexFft<double>;
using ComplexFftBuffersF = BasicComplexFftBuffers<float>;
using ComplexFftF = BasicComplexFft<float>;

using FftBuffers = BasicFftBuffers<float>;
using RealFft = BasicRealFft<float>;

}  // namespace attn::audio::internal
