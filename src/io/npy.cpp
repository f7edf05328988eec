#include "dln/io/npy.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>

#include "dln/error.hpp"
#include "dln/io/input.hpp"
#include "dln/io/output.hpp"

namespace dln::io {
namespace {

static_assert(std::endian::native == std::endian::little, "dln reads little-endian .npy only");

[[noreturn]] void fail(const std::string& name, const std::string& message) {
  throw InputError(name, 0, "", message);
}

// Finds the value text after 'key': in the header dictionary.
std::string_view dict_value(std::string_view header, std::string_view key,
                            const std::string& name) {
  const std::string quoted = "'" + std::string(key) + "'";
  const auto pos = header.find(quoted);
  if (pos == std::string_view::npos) fail(name, "not a valid .npy file: header lacks " + quoted);
  auto rest = header.substr(pos + quoted.size());
  const auto colon = rest.find(':');
  if (colon == std::string_view::npos) fail(name, "not a valid .npy file: malformed header");
  rest = rest.substr(colon + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return rest;
}

std::vector<std::size_t> parse_shape(std::string_view text, const std::string& name) {
  if (text.empty() || text.front() != '(') fail(name, "not a valid .npy file: malformed shape");
  const auto close = text.find(')');
  if (close == std::string_view::npos) fail(name, "not a valid .npy file: malformed shape");
  std::vector<std::size_t> shape;
  std::string inner(text.substr(1, close - 1));
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto first = item.find_first_not_of(" L");
    if (first == std::string::npos) continue;
    std::size_t value = 0;
    for (char c : item.substr(first)) {
      if (c == ' ' || c == 'L') break;
      if (c < '0' || c > '9') fail(name, "not a valid .npy file: malformed shape");
      if (value > (std::numeric_limits<std::size_t>::max() - 9) / 10)
        fail(name, "not a valid .npy file: a dimension of the shape is too large");
      value = value * 10 + static_cast<std::size_t>(c - '0');
    }
    // Every size dln works with is an int; a larger dimension (even of an empty array, whose
    // other dimensions would still be walked) is refused.
    if (value > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      fail(name, "a dimension of the shape is too large (" + std::to_string(value) + " > " +
                     std::to_string(std::numeric_limits<int>::max()) + ")");
    shape.push_back(value);
    if (shape.size() > 32) fail(name, "not a valid .npy file: more than 32 dimensions");
  }
  return shape;
}

}  // namespace

std::size_t NpyArray::cols() const {
  std::size_t c = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) c *= shape[i];
  return c;
}

Eigen::MatrixXd NpyArray::matrix() const {
  const auto r = static_cast<Eigen::Index>(rows());
  const auto c = static_cast<Eigen::Index>(cols());
  if (data.empty()) return Eigen::MatrixXd(r, c);  // no element to copy, however long a side
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      data.data(), r, c);
}

Eigen::MatrixXd NpyArray::transposed_matrix() const {
  if (data.empty())
    return Eigen::MatrixXd(static_cast<Eigen::Index>(cols()), static_cast<Eigen::Index>(rows()));
  return Eigen::Map<const Eigen::MatrixXd>(data.data(), static_cast<Eigen::Index>(cols()),
                                           static_cast<Eigen::Index>(rows()));
}

std::string shape_string(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

namespace {

struct Header {
  std::vector<std::size_t> shape;
  std::size_t item = 8;  // bytes per value: 8 (float64) or 4 (float32)
  bool fortran = false;
  std::size_t payload = 0;       // offset of the data
  std::uint64_t count() const {  // saturates: a product that overflows is never a real size
    std::uint64_t c = 1;
    for (auto s : shape) c = mul_sat(c, s);
    return c;
  }
  std::uint64_t bytes() const { return mul_sat(count(), item); }
};

// numpy writes headers of a few hundred bytes; a longer one is refused before it is read.
constexpr std::size_t kMaxHeader = 1 << 20;

// The fixed part is 10 (version 1) or 12 bytes; `bytes` must hold it and the header after it.
std::size_t header_end(std::string_view bytes, const std::string& name) {
  constexpr std::string_view kMagic = "\x93NUMPY";
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic)
    fail(name, "not a .npy file (bad magic bytes)");
  const auto major = static_cast<unsigned char>(bytes[6]);
  if (major == 1)
    return 10 + (static_cast<unsigned char>(bytes[8]) |
                 (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8));
  if (major != 2 && major != 3)
    fail(name, "unsupported .npy format version " + std::to_string(major));
  if (bytes.size() < 12) fail(name, "truncated .npy header");
  std::size_t header_len = 0;
  for (int i = 0; i < 4; ++i)
    header_len |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  if (header_len > kMaxHeader)
    fail(name, "not a valid .npy file: its header claims " + std::to_string(header_len) +
                   " bytes (numpy's are a few hundred)");
  return 12 + header_len;
}

Header parse_header(std::string_view bytes, const std::string& name) {
  const std::size_t end = header_end(bytes, name);
  if (bytes.size() < end) fail(name, "truncated .npy header");
  const std::size_t offset = static_cast<unsigned char>(bytes[6]) == 1 ? 10 : 12;
  const std::string_view header = bytes.substr(offset, end - offset);
  const auto descr_text = dict_value(header, "descr", name);
  if (descr_text.empty() || descr_text.front() != '\'') fail(name, "malformed .npy dtype");
  const auto descr = descr_text.substr(1, descr_text.find('\'', 1) - 1);
  Header h;
  if (descr == "<f8") {
    h.item = 8;
  } else if (descr == "<f4") {
    h.item = 4;
  } else {
    fail(name, "dtype '" + std::string(descr) + "' is not supported (need float64 or float32)");
  }
  h.fortran = dict_value(header, "fortran_order", name).starts_with("True");
  h.shape = parse_shape(dict_value(header, "shape", name), name);
  h.payload = end;
  return h;
}

void check_payload(const Header& h, std::uint64_t available, const std::string& name) {
  if (h.bytes() == std::numeric_limits<std::uint64_t>::max())
    fail(name, "the shape " + shape_string(h.shape) + " is too large to be real");
  if (available < h.bytes())
    fail(name, "truncated: shape " + shape_string(h.shape) + " needs " + std::to_string(h.bytes()) +
                   " bytes of data, the file has " + std::to_string(available));
}

}  // namespace

NpyArray parse_npy(std::string_view bytes, const std::string& name) {
  const Header h = parse_header(bytes, name);
  NpyArray array;
  array.shape = h.shape;
  const std::size_t count = static_cast<std::size_t>(h.count()), item = h.item;
  const bool fortran = h.fortran;
  const std::string_view payload = bytes.substr(h.payload);
  check_payload(h, payload.size(), name);
  require_memory(8.0 * static_cast<double>(count), "the array", name);
  std::vector<double> values(count);
  if (item == 8) {
    if (count > 0) std::memcpy(values.data(), payload.data(), count * 8);  // data() may be null
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      float f;
      std::memcpy(&f, payload.data() + 4 * i, 4);
      values[i] = f;
    }
  }
  if (fortran && array.shape.size() > 1) {
    // Reorder to C order: the Fortran buffer of shape (r, c) is the C buffer of (c, r).
    const std::size_t r = array.rows();
    const std::size_t c = count / std::max<std::size_t>(r, 1);
    array.data.resize(count);
    if (array.shape.size() > 2) fail(name, "Fortran-order arrays of more than 2 dimensions");
    for (std::size_t i = 0; count > 0 && i < r; ++i)  // an empty array has nothing to move
      for (std::size_t j = 0; j < c; ++j) array.data[i * c + j] = values[j * r + i];
  } else {
    array.data = std::move(values);
  }
  return array;
}

NpyArray read_npy(const std::string& path) {
  return parse_npy(read_file(path), path);
}

Eigen::MatrixXd read_npy_samples(const std::string& path, std::vector<std::size_t>& shape) {
  InputFile in(path);
  std::string head(static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), 12)), '\0');
  in.read_exact(head.data(), head.size());
  const std::size_t end = header_end(head, path);
  if (end > in.size()) fail(path, "truncated .npy header");
  const std::size_t have = head.size();
  head.resize(end);
  if (end > have) in.read_exact(head.data() + have, end - have);
  const Header h = parse_header(head, path);
  in.seek(h.payload);
  shape = h.shape;
  check_payload(h, in.size() - h.payload, path);
  if (h.fortran && h.shape.size() > 1)  // not the sample layout: reorder through a copy
    return read_npy(path).transposed_matrix();
  require_memory(8.0 * static_cast<double>(h.count()), "the array", path);
  // A C-order (n, d) array is, byte for byte, the column-major d x n matrix of its rows.
  const std::size_t n = h.shape.empty() ? 1 : h.shape[0];
  const std::size_t d = n == 0 ? 0 : static_cast<std::size_t>(h.count()) / n;
  Eigen::MatrixXd m(static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(n));
  const auto count = static_cast<std::size_t>(h.count());
  if (h.item == 8) {
    in.read_exact(m.data(), count * 8);
  } else {
    std::vector<float> chunk(1 << 16);
    for (std::size_t done = 0; done < count; done += chunk.size()) {
      const std::size_t take = std::min(chunk.size(), count - done);
      in.read_exact(chunk.data(), take * 4);
      for (std::size_t i = 0; i < take; ++i) m.data()[done + i] = chunk[i];
    }
  }
  return m;
}

std::string npy_bytes(const Eigen::MatrixXd& m) {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" +
                       std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + "), }";
  // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  const auto len = static_cast<std::uint16_t>(header.size());
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(len & 0xFF));
  bytes.push_back(static_cast<char>(len >> 8));
  bytes += header;
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = m;
  bytes.append(reinterpret_cast<const char*>(row_major.data()),
               sizeof(double) * static_cast<std::size_t>(m.size()));
  return bytes;
}

void write_npy(const std::string& path, const Eigen::MatrixXd& m, Durability durability) {
  write_file_atomic(path, npy_bytes(m), durability);
}

}  // namespace dln::io
