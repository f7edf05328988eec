#include "dln/io/idx.hpp"

#include "dln/error.hpp"
#include "dln/io/input.hpp"

namespace dln::io {

IdxArray read_idx(const std::string& path) {
  const std::string bytes = read_file(path);
  auto at = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); };
  auto fail = [&](const std::string& what) { return InputError(path, 0, "", what); };
  if (bytes.size() < 4 || at(0) != 0 || at(1) != 0)
    throw fail("not an IDX file (the magic number must start with two zero bytes)");
  if (at(2) != 0x08) throw fail("IDX element type must be unsigned byte (0x08)");
  const std::size_t dims = at(3);
  if (dims == 0 || bytes.size() < 4 + 4 * dims) throw fail("truncated IDX header");
  IdxArray out;
  std::size_t count = 1;
  for (std::size_t k = 0; k < dims; ++k) {
    const std::size_t o = 4 + 4 * k;
    const std::size_t n = (std::size_t{at(o)} << 24) | (std::size_t{at(o + 1)} << 16) |
                          (std::size_t{at(o + 2)} << 8) | std::size_t{at(o + 3)};
    out.shape.push_back(n);
    count = mul_sat(count, n);  // saturated: never equal to a real file's size
  }
  const std::size_t header = 4 + 4 * dims;
  if (count > bytes.size() - header || bytes.size() - header != count)
    throw fail("IDX size mismatch: the header announces " + std::to_string(count) +
               " elements, the file holds " + std::to_string(bytes.size() - header));
  out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

}  // namespace dln::io
