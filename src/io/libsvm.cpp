#include "dln/io/libsvm.hpp"

#include <charconv>
#include <sstream>

#include "dln/error.hpp"
#include "dln/io/npy.hpp"

namespace dln::io {
namespace {

bool parse_double(std::string_view s, double& out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

SparseTable read_libsvm(const std::string& path) {
  std::istringstream in(read_file(path));
  SparseTable table;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string label;
    if (!(fields >> label)) continue;  // blank line
    auto bad = [&](const std::string& what) { return InputError(path, line_no, "", what); };
    std::string_view value = label;
    if (const auto semi = value.find(';'); semi != std::string_view::npos)
      value = value.substr(semi + 1);
    double y = 0.0;
    if (!parse_double(value, y)) throw bad("label '" + label + "' is not a number");
    table.labels.push_back(y);
    auto& row = table.rows.emplace_back();
    std::size_t last = 0;
    for (std::string item; fields >> item;) {
      const auto colon = item.find(':');
      std::size_t index = 0;
      double v = 0.0;
      const auto [ptr, ec] = std::from_chars(item.data(), item.data() + colon, index);
      if (colon == std::string::npos || ec != std::errc() || ptr != item.data() + colon ||
          index == 0 || !parse_double(std::string_view(item).substr(colon + 1), v))
        throw bad("'" + item + "' is not of the form index:value with index >= 1");
      if (index <= last) throw bad("indices must increase (" + item + ")");
      last = index;
      row.emplace_back(index - 1, v);
      table.dim = std::max(table.dim, index);
    }
  }
  if (table.rows.empty()) throw InputError(path, 0, "", "no samples");
  return table;
}

}  // namespace dln::io
