// SPDX-License-Identifier: MIT
// attn.audio's C++ side: loading files and computing speech features (python/attn/audio.py gives
// torchaudio's names and argument handling).
#include "audio_bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <string>
#include <type_traits>
#include <vector>

#include "attn/audio/audio.h"
#include "attn/audio/features.h"

namespace py = pybind11;

namespace attn::python {
namespace {

// The tensor's buffer handed to numpy without a copy: the array owns the moved tensor through a
// capsule (features of 10 s are 320 KB; copying them was 4% of a Python fbank call).
py::array_t<float> to_numpy(Tensor&& t) {
  auto* owner = new Tensor(std::move(t));
  const py::capsule base(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> dims(owner->shape().begin(), owner->shape().end());
  return py::array_t<float>(dims, owner->data(), base);
}

// A (N) float32 array (the Python layer makes it contiguous and picks the channel).
ConstTensorView waveform_view(const py::array_t<float, py::array::c_style>& a, const char* fn) {
  if (a.ndim() != 1) fail<ShapeError>(fn, "waveform must be 1-D here, got rank ", a.ndim());
  return ConstTensorView(a.data(), Shape{static_cast<int64_t>(a.shape(0))});
}

// An option's value as T; a value of the wrong type is a TypeError naming the option (pybind11's
// own cast error is a RuntimeError that names nothing).
template <typename T>
T option_as(const py::handle& value, const std::string& key) {
  try {
    return value.cast<T>();
  } catch (const py::cast_error&) {
    const char* kind = std::is_same_v<T, bool>          ? "a bool"
                       : std::is_same_v<T, std::string> ? "a str"
                       : std::is_unsigned_v<T>          ? "a non-negative int"
                       : std::is_integral_v<T>          ? "an int"
                                                        : "a number";
    throw py::type_error("attn.audio.fbank: option " + key + " must be " + kind + ", got " +
                         std::string(py::str(py::type::handle_of(value).attr("__name__"))));
  }
}

audio::FbankOptions fbank_options(const py::dict& d) {
  audio::FbankOptions o;
  for (const auto& [key, value] : d) {
    const std::string k = py::str(key);
    if (k == "sample_frequency")
      o.sample_frequency = option_as<double>(value, k);
    else if (k == "frame_length")
      o.frame_length = option_as<double>(value, k);
    else if (k == "frame_shift")
      o.frame_shift = option_as<double>(value, k);
    else if (k == "num_mel_bins")
      o.num_mel_bins = option_as<int>(value, k);
    else if (k == "low_freq")
      o.low_freq = option_as<double>(value, k);
    else if (k == "high_freq")
      o.high_freq = option_as<double>(value, k);
    else if (k == "preemphasis_coefficient")
      o.preemphasis_coefficient = option_as<double>(value, k);
    else if (k == "remove_dc_offset")
      o.remove_dc_offset = option_as<bool>(value, k);
    else if (k == "window_type")
      o.window_type = audio::parse_window_type(option_as<std::string>(value, k));
    else if (k == "blackman_coeff")
      o.blackman_coeff = option_as<double>(value, k);
    else if (k == "round_to_power_of_two")
      o.round_to_power_of_two = option_as<bool>(value, k);
    else if (k == "snip_edges")
      o.snip_edges = option_as<bool>(value, k);
    else if (k == "dither")
      o.dither = option_as<double>(value, k);
    else if (k == "seed")
      o.seed = option_as<uint64_t>(value, k);
    else if (k == "use_energy")
      o.use_energy = option_as<bool>(value, k);
    else if (k == "raw_energy")
      o.raw_energy = option_as<bool>(value, k);
    else if (k == "energy_floor")
      o.energy_floor = option_as<double>(value, k);
    else if (k == "htk_compat")
      o.htk_compat = option_as<bool>(value, k);
    else if (k == "use_log_fbank")
      o.use_log_fbank = option_as<bool>(value, k);
    else if (k == "use_power")
      o.use_power = option_as<bool>(value, k);
    else if (k == "subtract_mean")
      o.subtract_mean = option_as<bool>(value, k);
    else
      fail<ValueError>("attn.audio.fbank", "unknown option '", k, "'");
  }
  return o;
}

}  // namespace

void register_audio(py::module_& m) {
  m.def(
      "audio_load",
      [](const std::string& path, int sample_rate, bool mono) {
        audio::Audio a;
        {
          py::gil_scoped_release release;
          a = audio::load(path, {sample_rate, mono});
        }
        return py::make_tuple(to_numpy(std::move(a.samples)), a.sample_rate);
      },
      py::arg("path"), py::arg("sample_rate"), py::arg("mono"));
  m.def(
      "audio_resample",
      [](const py::array_t<float, py::array::c_style>& x, double from_rate, double to_rate) {
        if (x.ndim() != 2)
          fail<ShapeError>("attn.audio.resample", "waveform must be (channels, frames)");
        const ConstTensorView v(
            x.data(), Shape{static_cast<int64_t>(x.shape(0)), static_cast<int64_t>(x.shape(1))});
        Tensor out;
        {
          py::gil_scoped_release release;
          out = audio::resample(v, from_rate, to_rate);
        }
        return to_numpy(std::move(out));
      },
      py::arg("waveform"), py::arg("from_rate"), py::arg("to_rate"));
  m.def(
      "audio_fbank",
      [](const py::array_t<float, py::array::c_style>& x, const py::dict& options) {
        const audio::FbankOptions o = fbank_options(options);
        const ConstTensorView v = waveform_view(x, "attn.audio.fbank");
        Tensor out;
        {
          py::gil_scoped_release release;
          out = audio::fbank(v, o);
        }
        return to_numpy(std::move(out));
      },
      py::arg("waveform"), py::arg("options"));
  m.def("audio_feature_simd_target", &audio::feature_simd_target);
  m.def(
      "audio_set_wide_vectors",
      [](const std::string& policy) {
        audio::set_feature_wide_vectors(
            audio::parse_wide_vectors(policy, "attn.audio.set_wide_vectors"));
      },
      py::arg("policy"));
  m.def(
      "audio_whisper_log_mel",
      [](const py::array_t<float, py::array::c_style>& x, int n_fft, int hop_length, int n_mels,
         int sample_rate) {
        const ConstTensorView v = waveform_view(x, "attn.audio.whisper_log_mel");
        Tensor out;
        {
          py::gil_scoped_release release;
          out = audio::whisper_log_mel(v, {n_fft, hop_length, n_mels, sample_rate});
        }
        return to_numpy(std::move(out));
      },
      py::arg("waveform"), py::arg("n_fft"), py::arg("hop_length"), py::arg("n_mels"),
      py::arg("sample_rate"));
}

}  // namespace attn::python
