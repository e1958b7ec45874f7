// SPDX-License-Identifier: MIT
// SIMD kernels of the feature extractors (src/audio/feature_kernels.cc, Highway with runtime
// dispatch): the log of feature rows (glibc's logf is ~5 ns a value and was an eighth of fbank's
// time) and sparse mel filters applied to a block of frames at once. Internal.
#pragma once

#include <cstdint>

namespace attn::audio::internal {

// x[i] = log(max(x[i], floor)) for i < n; floor > 0. Highway's Log (max error about 2 ulp, so
// about 1e-7 relative on the log values features take).
void log_floor_row(float* x, int64_t n, float floor);

// Two Kaldi frames into one complex FFT input, in double: for frame f (raw[f], ws samples each),
// y = raw - mean (mean over the ws samples when remove_dc, else 0) and
// z[2i + f] = window[i] · (y[i] - c · y[i-1]) with y[-1] = y[0], for i < ws (the rest of z is not
// touched). sum_squares[f] = Σ y² (the raw energy before its log).
void prepare_pair_rows(const float* const* raw, int64_t ws, bool remove_dc, double c,
                       const double* window, double* z, double* sum_squares);

// The power spectra (|X_k|², or |X_k| when !power; k = 0 .. n/2) of the real frames a and b, from
// z = DFT(a + i·b) (n complex values, interleaved; n even), as float rows pa and pb (overwritten).
void power_pair_rows(const double* z, int64_t n, bool power, float* pa, float* pb);

// out[c · width + i] = rows[i · row_stride + c] for i < n_valid, 0 for n_valid <= i < width;
// c < cols, width a multiple of 4 (a block of frame-major spectra made bin-major; overwritten).
void transpose_rows(const float* rows, int64_t row_stride, int64_t n_valid, int64_t width,
                    int64_t cols, float* out);

// True if no x[i], i < n, is NaN or ±Inf (the waveform check; a scalar loop was a third of fbank).
bool all_finite(const float* x, int64_t n);

// Sparse filters (filter m: weights[offset[m] .. offset[m+1]) over bins first[m] ..) applied to
// `lanes` spectra stored bin-major (spectra[k · lanes + j]); lanes is a multiple of 16. Writes
// out[j · out_stride + m] for j < n <= lanes. Each sum runs over k in order, as a scalar loop
// would.
void mel_block(const float* weights, const int64_t* first, const int64_t* offset, int num_filters,
               const float* spectra, int lanes, int n, float* out, int64_t out_stride);

}  // namespace attn::audio::internal
