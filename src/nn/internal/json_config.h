// SPDX-License-Identifier: MIT
// Reading a model config file: a JSON object with known keys and typed values, every problem a
// ValueError "<what> <source>: <why>". Shared by EncoderModel's and SpeechEncoder's configs.
// Internal header (src/ only).
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>

#include "attn/error.h"

namespace attn::nn::internal {

[[noreturn]] inline void bad_config(const char* what, const std::string& source,
                                    const std::string& why) {
  fail<ValueError>(what, source, ": ", why);
}

// `text` parsed as a JSON object whose keys are all in `known`.
inline nlohmann::json parse_config_object(const char* what, const std::string& text,
                                          const std::string& source,
                                          const std::set<std::string>& known) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    bad_config(what, source, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) bad_config(what, source, "must be a JSON object");
  for (const auto& [key, value] : j.items())
    if (!known.count(key)) bad_config(what, source, "unknown key \"" + key + "\"");
  return j;
}

// j[key] as a T (bool, an integer, a floating-point number or std::string), or `fallback` when the
// key is absent; a value of another JSON type is an error naming the key.
template <typename T>
T config_value(const char* what, const nlohmann::json& j, const char* key, T fallback,
               const std::string& source) {
  if (!j.contains(key)) return fallback;
  const auto& v = j[key];
  const std::string name = std::string("\"") + key + "\"";
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) bad_config(what, source, name + " must be true or false, got " + v.dump());
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer())
      bad_config(what, source, name + " must be an integer, got " + v.dump());
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) bad_config(what, source, name + " must be a number, got " + v.dump());
  } else {
    if (!v.is_string()) bad_config(what, source, name + " must be a string, got " + v.dump());
  }
  return v.get<T>();
}

}  // namespace attn::nn::internal
