#include "dln/io/npz.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "dln/error.hpp"

namespace dln::io {
namespace {

class Reader {
 public:
  Reader(const std::string& bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  std::uint64_t le(std::uint64_t offset, int width) const {
    if (offset > bytes_.size() || static_cast<std::uint64_t>(width) > bytes_.size() - offset)
      corrupt("truncated archive");
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[offset + i])) << (8 * i);
    return v;
  }
  [[noreturn]] void corrupt(const std::string& what) const {
    throw InputError(name_, 0, "", "not a valid .npz archive: " + what);
  }
  const std::string& bytes() const { return bytes_; }
  // bytes [offset, offset + n), which must lie inside the archive.
  std::string_view span(std::uint64_t offset, std::uint64_t n, const std::string& what) const {
    if (offset > bytes_.size() || n > bytes_.size() - offset) corrupt(what + " is truncated");
    return std::string_view(bytes_).substr(offset, n);
  }

 private:
  const std::string& bytes_;
  const std::string& name_;
};

// Deflate expands at most 1032-fold; a member claiming more is refused before allocating.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

std::string inflate_raw(std::string_view in, std::size_t out_size, const Reader& r) {
  std::string out(out_size, '\0');
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) r.corrupt("cannot start inflate");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  std::size_t in_left = in.size(), out_left = out.size();
  constexpr std::size_t kChunk = 1u << 30;  // z_stream counts in 32 bits
  int rc = Z_OK;
  while (true) {
    if (zs.avail_in == 0 && in_left > 0) {
      zs.avail_in = static_cast<uInt>(std::min(in_left, kChunk));
      in_left -= zs.avail_in;
    }
    if (zs.avail_out == 0 && out_left > 0) {
      zs.avail_out = static_cast<uInt>(std::min(out_left, kChunk));
      out_left -= zs.avail_out;
    }
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK) break;  // Z_STREAM_END, or an error
    if ((zs.avail_in == 0 && in_left == 0) || (zs.avail_out == 0 && out_left == 0)) {
      rc = inflate(&zs, Z_FINISH);  // whatever is left decides
      break;
    }
  }
  const bool ok = rc == Z_STREAM_END && zs.total_out == out_size;
  inflateEnd(&zs);
  if (!ok) r.corrupt("corrupt deflated member (or its size is wrong)");
  return out;
}

}  // namespace

std::map<std::string, NpyArray> read_npz(const std::string& path) {
  const std::string bytes = read_file(path);
  const Reader r(bytes, path);

  // End of central directory: the last occurrence of its signature.
  constexpr std::uint64_t kEocd = 0x06054b50, kEocd64 = 0x06064b50, kLocator = 0x07064b50;
  constexpr std::uint64_t kCentral = 0x02014b50, kLocal = 0x04034b50;
  if (bytes.size() < 22) r.corrupt("too short");
  std::size_t eocd = bytes.size() - 22;
  while (r.le(eocd, 4) != kEocd) {
    if (eocd == 0 || bytes.size() - eocd > 65557) r.corrupt("no end-of-central-directory record");
    --eocd;
  }
  std::uint64_t entries = r.le(eocd + 10, 2);
  std::uint64_t cd_offset = r.le(eocd + 16, 4);
  if ((entries == 0xFFFF || cd_offset == 0xFFFFFFFF) && eocd >= 20 &&
      r.le(eocd - 20, 4) == kLocator) {
    const std::uint64_t e64 = r.le(eocd - 20 + 8, 8);
    if (r.le(e64, 4) != kEocd64) r.corrupt("bad zip64 end-of-central-directory record");
    entries = r.le(e64 + 32, 8);
    cd_offset = r.le(e64 + 48, 8);
  }
  if (entries > bytes.size() / 46) r.corrupt("the central directory claims too many members");

  std::map<std::string, NpyArray> members;
  std::uint64_t pos = cd_offset;
  for (std::uint64_t e = 0; e < entries; ++e) {
    if (r.le(pos, 4) != kCentral) r.corrupt("bad central directory entry");
    const auto method = r.le(pos + 10, 2);
    std::uint64_t comp = r.le(pos + 20, 4), uncomp = r.le(pos + 24, 4);
    const auto name_len = r.le(pos + 28, 2), extra_len = r.le(pos + 30, 2);
    const auto comment_len = r.le(pos + 32, 2);
    std::uint64_t local = r.le(pos + 42, 4);
    const std::string member(r.span(pos + 46, name_len, "a member name"));
    r.span(pos + 46 + name_len, std::uint64_t{extra_len} + comment_len,
           "a central directory entry");
    // Zip64 extra field: the 64-bit values of whichever fields are saturated, in order.
    for (std::uint64_t x = pos + 46 + name_len; x + 4 <= pos + 46 + name_len + extra_len;) {
      const auto id = r.le(x, 2), size = r.le(x + 2, 2);
      if (id == 0x0001) {
        std::size_t f = x + 4;
        if (uncomp == 0xFFFFFFFF) uncomp = r.le(f, 8), f += 8;
        if (comp == 0xFFFFFFFF) comp = r.le(f, 8), f += 8;
        if (local == 0xFFFFFFFF) local = r.le(f, 8);
      }
      x += 4 + size;
    }
    pos += 46 + name_len + extra_len + comment_len;

    if (r.le(local, 4) != kLocal) r.corrupt("bad local header for " + member);
    const std::uint64_t data = local + 30 + r.le(local + 26, 2) + r.le(local + 28, 2);
    const std::string_view raw = r.span(data, comp, "member " + member);
    std::string content;
    if (method == 0) {
      if (uncomp != comp) r.corrupt("stored member " + member + " has two different sizes");
      content = std::string(raw);
    } else if (method == 8) {
      if (uncomp / kMaxDeflateRatio > comp + 1)
        r.corrupt("member " + member + " claims " + std::to_string(uncomp) + " bytes from " +
                  std::to_string(comp) + " compressed ones, more than deflate can produce");
      require_memory(static_cast<double>(uncomp), "member " + member, path);
      content = inflate_raw(raw, static_cast<std::size_t>(uncomp), r);
    } else {
      r.corrupt("member " + member + " uses unsupported compression " + std::to_string(method));
    }
    std::string key = member;
    if (key.ends_with(".npy")) key.resize(key.size() - 4);
    members[key] = parse_npy(content, path + ":" + member);
  }
  return members;
}

namespace {

void put16(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
}

void put32(std::string& out, std::uint32_t v) {
  put16(out, v & 0xFFFF);
  put16(out, v >> 16);
}

}  // namespace

void write_npz(const std::string& path, const std::map<std::string, Eigen::MatrixXd>& members,
               Durability durability) {
  // A plain (not zip64) archive of stored members: local header, data, ...; central directory;
  // end record. Times are 1980-01-01 00:00, so the bytes depend on the contents alone.
  constexpr std::uint32_t kDate = (0 << 9) | (1 << 5) | 1;
  std::string out, directory;
  if (members.size() > 0xFFFF) throw std::runtime_error(path + ": too many members for a zip");
  for (const auto& [key, m] : members) {
    const std::string name = key + ".npy", data = npy_bytes(m);
    if (out.size() + data.size() + 2 * name.size() + 256 > 0xFFFFFFFFull)
      throw std::runtime_error(path + ": more than 4 GiB, beyond a plain zip");
    const auto crc = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    const auto offset = static_cast<std::uint32_t>(out.size());
    const auto size = static_cast<std::uint32_t>(data.size());
    put32(out, 0x04034b50);
    put16(out, 20);
    put16(out, 0);
    put16(out, 0);
    put16(out, 0);
    put16(out, kDate);
    put32(out, crc);
    put32(out, size);
    put32(out, size);
    put16(out, static_cast<std::uint32_t>(name.size()));
    put16(out, 0);
    out += name;
    out += data;
    put32(directory, 0x02014b50);
    put16(directory, 20);
    put16(directory, 20);
    put16(directory, 0);
    put16(directory, 0);
    put16(directory, 0);
    put16(directory, kDate);
    put32(directory, crc);
    put32(directory, size);
    put32(directory, size);
    put16(directory, static_cast<std::uint32_t>(name.size()));
    put16(directory, 0);
    put16(directory, 0);
    put16(directory, 0);
    put16(directory, 0);
    put32(directory, 0);
    put32(directory, offset);
    directory += name;
  }
  const auto directory_offset = static_cast<std::uint32_t>(out.size());
  out += directory;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<std::uint32_t>(members.size()));
  put16(out, static_cast<std::uint32_t>(members.size()));
  put32(out, static_cast<std::uint32_t>(directory.size()));
  put32(out, directory_offset);
  put16(out, 0);
  write_file_atomic(path, out, durability);
}

}  // namespace dln::io
