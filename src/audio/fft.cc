// SPDX-License-Identifier: MIT
#include "audio/internal/fft.h"

#include <fftw3.h>

#include <map>
#include <mutex>
#include <new>

#include "attn/error.h"

namespace attn::audio::internal {
namespace {

std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

// One plan per size for the life of the process: plans are small, and the sizes a program uses
// (400, 512, ...) are few.
fftwf_plan plan_for(int n) {
  static std::map<int, fftwf_plan>* plans = new std::map<int, fftwf_plan>();  // never destroyed:
  // workers may still run at exit
  std::lock_guard<std::mutex> lock(planner_mutex());
  auto it = plans->find(n);
  if (it != plans->end()) return it->second;
  FftBuffers scratch(n);  // FFTW_ESTIMATE leaves the arrays untouched; new-array execution needs
                          // the same alignment, which fftwf_malloc gives every buffer
  fftwf_plan plan = fftwf_plan_dft_r2c_1d(
      n, scratch.input(), reinterpret_cast<fftwf_complex*>(scratch.mutable_output()),
      FFTW_ESTIMATE);
  if (plan == nullptr) fail<Error>("RealFft", "FFTW could not plan a size-", n, " transform");
  plans->emplace(n, plan);
  return plan;
}

}  // namespace

FftBuffers::FftBuffers(int n)
    : input_(fftwf_alloc_real(static_cast<size_t>(n))),
      output_(reinterpret_cast<float*>(fftwf_alloc_complex(static_cast<size_t>(n / 2 + 1)))) {
  if (input_ == nullptr || output_ == nullptr) {
    fftwf_free(input_);
    fftwf_free(output_);
    throw std::bad_alloc();
  }
}

FftBuffers::~FftBuffers() {
  fftwf_free(input_);
  fftwf_free(output_);
}

RealFft::RealFft(int n) : n_(n) {
  if (n < 1) fail<ValueError>("RealFft", "size must be >= 1, got ", n);
  plan_ = plan_for(n);
}

void RealFft::forward(const FftBuffers& buffers) const {
  fftwf_execute_dft_r2c(static_cast<fftwf_plan>(plan_), buffers.input(),
                        reinterpret_cast<fftwf_complex*>(buffers.mutable_output()));
}

}  // namespace attn::audio::internal
