// Shared by the fuzz targets: the input as a file (every reader takes a path), and a small
// memory budget so that a reader's refusal, not the fuzzer's memory limit, is what a large
// claim meets (docs/safety.md#fuzzing).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "dln/error.hpp"

namespace dln::fuzz {

inline void init() {
  ::setenv("DLN_MEMORY_BUDGET", "256M", 1);
}

// Writes the input to a file of this process named `name`; returns its path.
inline std::string as_file(const std::uint8_t* data, std::size_t size, const std::string& name) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("dln_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::filesystem::path path = dir / name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path.string();
}

}  // namespace dln::fuzz
