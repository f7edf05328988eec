// IDX files (the format of MNIST and Fashion-MNIST: a big-endian header with the element type
// and the dimensions, then the elements), plain or gzipped. Unsigned bytes only, which is what
// image and label files hold.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dln::io {

struct IdxArray {
  std::vector<std::size_t> shape;  // e.g. (n, 28, 28) for images, (n) for labels
  std::vector<std::uint8_t> data;  // row-major
};

// Throws InputError naming the file for a wrong magic number, type or length.
IdxArray read_idx(const std::string& path);

}  // namespace dln::io
