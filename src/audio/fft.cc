// SPDX-License-Identifier: MIT
#include "audio/internal/fft.h"

#include <fftw3.h>

#include <map>
#include <mutex>
#include <new>
#include <type_traits>

#include "attn/error.h"

namespace attn::audio::internal {
namespace {

std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

// One plan per size and precision for the life of the process: plans are small, and the sizes a
// program uses (400, 512, ...) are few. FFTW_ESTIMATE leaves the arrays untouched; new-array
// execution needs the same alignment, which alloc_values below gives every buffer.
template <typename T>
void* plan_for(int n) {
  static auto* plans =
      new std::map<int, void*>();  // never destroyed: workers may still run at exit
  std::lock_guard<std::mutex> lock(planner_mutex());
  auto it = plans->find(n);
  if (it != plans->end()) return it->second;
  BasicFftBuffers<T> scratch(n);
  void* plan = nullptr;
  if constexpr (std::is_same_v<T, float>)
    plan = fftwf_plan_dft_r2c_1d(n, scratch.input(),
                                 reinterpret_cast<fftwf_complex*>(scratch.mutable_output()),
                                 FFTW_ESTIMATE);
  else
    plan = fftw_plan_dft_r2c_1d(n, scratch.input(),
                                reinterpret_cast<fftw_complex*>(scratch.mutable_output()),
                                FFTW_ESTIMATE);
  if (plan == nullptr) fail<Error>("RealFft", "FFTW could not plan a size-", n, " transform");
  plans->emplace(n, plan);
  return plan;
}

// Cache-line aligned (FFTW's own allocator gives 32 bytes): fbank's frame rows are written with
// 64-byte vectors, and each of those that straddled two lines cost a split store. FFTW needs
// new-array buffers aligned as the planning ones were; every buffer, the planner's included,
// comes from here.
constexpr std::align_val_t kAlignment{64};

template <typename T>
T* alloc_values(size_t n) {
  return static_cast<T*>(::operator new(n * sizeof(T), kAlignment, std::nothrow));
}

template <typename T>
void free_values(T* p) {
  ::operator delete(p, kAlignment);
}

}  // namespace

template <typename T>
FftBufferPair<T>::FftBufferPair(size_t input_values, size_t output_values)
    : input_(alloc_values<T>(input_values)), output_(alloc_values<T>(output_values)) {
  if (input_ == nullptr || output_ == nullptr) {
    free_values(input_);
    free_values(output_);
    throw std::bad_alloc();
  }
}

template <typename T>
FftBufferPair<T>::~FftBufferPair() {
  free_values(input_);
  free_values(output_);
}

template <typename T>
BasicRealFft<T>::BasicRealFft(int n) : n_(n) {
  if (n < 1) fail<ValueError>("RealFft", "size must be >= 1, got ", n);
  plan_ = plan_for<T>(n);
}

template <typename T>
void BasicRealFft<T>::forward(const BasicFftBuffers<T>& buffers) const {
  if constexpr (std::is_same_v<T, float>)
    fftwf_execute_dft_r2c(static_cast<fftwf_plan>(plan_), buffers.input(),
                          reinterpret_cast<fftwf_complex*>(buffers.mutable_output()));
  else
    fftw_execute_dft_r2c(static_cast<fftw_plan>(plan_), buffers.input(),
                         reinterpret_cast<fftw_complex*>(buffers.mutable_output()));
}

template <typename T>
BasicComplexFft<T>::BasicComplexFft(int n) : n_(n) {
  if (n < 1) fail<ValueError>("ComplexFft", "size must be >= 1, got ", n);
  static auto* plans = new std::map<int, void*>();  // never destroyed, as plan_for's
  std::lock_guard<std::mutex> lock(planner_mutex());
  if (auto it = plans->find(n); it != plans->end()) {
    plan_ = it->second;
    return;
  }
  BasicComplexFftBuffers<T> scratch(n);
  if constexpr (std::is_same_v<T, float>)
    plan_ = fftwf_plan_dft_1d(n, reinterpret_cast<fftwf_complex*>(scratch.input()),
                              reinterpret_cast<fftwf_complex*>(scratch.mutable_output()),
                              FFTW_FORWARD, FFTW_ESTIMATE);
  else
    plan_ = fftw_plan_dft_1d(n, reinterpret_cast<fftw_complex*>(scratch.input()),
                             reinterpret_cast<fftw_complex*>(scratch.mutable_output()),
                             FFTW_FORWARD, FFTW_ESTIMATE);
  if (plan_ == nullptr) fail<Error>("ComplexFft", "FFTW could not plan a size-", n, " transform");
  plans->emplace(n, plan_);
}

template <typename T>
void BasicComplexFft<T>::forward(const BasicComplexFftBuffers<T>& buffers) const {
  if constexpr (std::is_same_v<T, float>)
    fftwf_execute_dft(static_cast<fftwf_plan>(plan_),
                      reinterpret_cast<fftwf_complex*>(buffers.input()),
                      reinterpret_cast<fftwf_complex*>(buffers.mutable_output()));
  else
    fftw_execute_dft(static_cast<fftw_plan>(plan_),
                     reinterpret_cast<fftw_complex*>(buffers.input()),
                     reinterpret_cast<fftw_complex*>(buffers.mutable_output()));
}

template class FftBufferPair<float>;
template class FftBufferPair<double>;
template class BasicRealFft<float>;
template class BasicRealFft<double>;
template class BasicComplexFft<float>;
template class BasicComplexFft<double>;

}  // namespace attn::audio::internal
