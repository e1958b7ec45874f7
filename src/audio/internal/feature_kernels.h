// SPDX-License-Identifier: MIT
// SIMD kernels of the feature extractors (src/audio/feature_kernels.cc, Highway with runtime
// dispatch): fbank's frame pass and power spectra, and sparse mel filters applied to a block of
// frames at once, with the log (a SIMD one: glibc's logf is ~5 ns a value and was an eighth of
// fbank's time). Internal.
#pragma once

#include <cstdint>

namespace attn::audio::internal {

// Two Kaldi frames into one complex FFT input, computed in z's type (double, or float for the
// float32 transform): for frame f (raw[f], ws samples each), y = raw - mean[f] and z[2i + f] =
// window[i] · (y[i] - c · y[i-1]) with y[-1] = y[0], for i < ws (the rest of z is not touched; z
// 64-byte aligned). sum_squares[f] = Σ y² (the raw energy before its log; null when not wanted),
// windowed_squares[f] = Σ z[2i + f]².
void prepare_pair_rows(const float* const* raw, int64_t ws, const double* mean, double c,
                       const double* window, double* z, double* sum_squares,
                       double* windowed_squares);
void prepare_pair_rows(const float* const* raw, int64_t ws, const double* mean, double c,
                       const float* window, float* z, double* sum_squares,
                       double* windowed_squares);

// The mean of raw[0, ws), in double.
double frame_mean(const float* raw, int64_t ws);

// sums[b] = Σ x[b·g, (b+1)·g) in double for b < n / g, each block summed in the same order
// wherever it lies (so a frame's mean made from them does not depend on where the waveform
// starts). Returns false if any x[i], i < n, is NaN or ±Inf (the tail past the last whole block
// included).
bool block_sums(const float* x, int64_t n, int64_t g, double* sums);

// The power spectra (|X_k|², or |X_k| when !power; k = 0 .. n/2) of the real frames a and b, from
// z = DFT(a + i·b) (n complex values, interleaved; n even), into two lanes of bin-major spectra:
// spectra[k · lanes] for a and spectra[k · lanes + 1] for b (overwritten; other lanes untouched).
void power_pair_lanes(const double* z, int64_t n, bool power, float* spectra, int64_t lanes);

// power_pair_lanes (power only) for a float32 transform, in float.
void power_pair_lanes_float(const float* z, int64_t n, float* spectra, int64_t lanes);
// The same for two transforms: z0's frames into lanes 0, 1 and z1's into lanes 2, 3 (16-byte
// aligned rows: spectra + k · lanes at a multiple of 4 floats).
void power_quad_lanes_float(const float* z0, const float* z1, int64_t n, float* spectra,
                            int64_t lanes);

// True if no x[i], i < n, is NaN or ±Inf (the waveform check; a scalar loop was a third of fbank).
bool all_finite(const float* x, int64_t n);

// out[i] = ln(x[i]) for normal floats x[i] > 0 (FLT_MIN up to FLT_MAX; others give garbage, not
// errors): the log that mel_block applies, within 2 ulp of a double log rounded to float.
void log_of_normal_floats(const float* x, int64_t n, float* out);

// Sparse filters (filter m: weights[offset[m] .. offset[m+1]) over bins first[m] ..) applied to
// `lanes` spectra stored bin-major (spectra[k · lanes + j]); lanes is a multiple of 16 and at most
// 64. Writes out[j · out_stride + m] for j < n <= lanes: the sum, or log(max(sum, log_floor)) when
// log_floor > 0 (log_of_normal_floats' log; log_floor must then be a normal float). Each sum runs
// over k in order, as a scalar loop would. lane_min, when not null (64-byte aligned, `lanes`
// values, overwritten): each lane's smallest sum over the filters, before the log.
void mel_block(const float* weights, const int64_t* first, const int64_t* offset, int num_filters,
               const float* spectra, int lanes, int n, float log_floor, float* out,
               int64_t out_stride, float* lane_min = nullptr);

}  // namespace attn::audio::internal
