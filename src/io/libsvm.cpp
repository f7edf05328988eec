#include "dln/io/libsvm.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <string_view>

#include "dln/error.hpp"
#include "dln/io/input.hpp"

namespace dln::io {
namespace {

// Longer lines (a million features take about 25 MiB) are refused before they are split.
constexpr double kMaxLine = 256.0 * 1024 * 1024;

bool parse_double(std::string_view s, double& out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

// The next run of non-blank characters of `line` from `pos`, or an empty view.
std::string_view next_field(std::string_view line, std::size_t& pos) {
  const auto b = line.find_first_not_of(" \t\r", pos);
  if (b == std::string_view::npos) {
    pos = line.size();
    return {};
  }
  const auto e = std::min(line.find_first_of(" \t\r", b), line.size());
  pos = e;
  return line.substr(b, e - b);
}

}  // namespace

SparseTable read_libsvm(const std::string& path) {
  const std::string text = read_file(path);
  const double budget = static_cast<double>(memory_budget());
  SparseTable table;
  double entries = 0;
  long line_no = 0;
  auto bad = [&](const std::string& what) {
    return InputError(path, static_cast<int>(std::min<long>(line_no, INT_MAX)), "", what);
  };
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view line(text.data() + at, end - at);
    at = end + 1;
    ++line_no;
    if (line.size() > kMaxLine) throw bad("the line is longer than " + bytes_text(kMaxLine));
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    std::size_t pos = 0;
    const std::string_view label = next_field(line, pos);
    if (label.empty()) continue;  // blank line
    std::string_view value = label;
    std::string_view klass;
    if (const auto semi = value.find(';'); semi != std::string_view::npos) {
      klass = value.substr(0, semi);
      value = value.substr(semi + 1);
    }
    double y = 0.0;
    if (!parse_double(value, y))
      throw bad("label '" + std::string(label.substr(0, 64)) + "' is not a number");
    double c = 0.0;
    if (!klass.empty() && !parse_double(klass, c))
      throw bad("class '" + std::string(klass.substr(0, 64)) + "' is not a number");
    table.labels.push_back(y);
    table.classes.push_back(klass.empty() ? 0.0 : c);
    auto& row = table.rows.emplace_back();
    std::size_t last = 0;
    for (std::string_view item; !(item = next_field(line, pos)).empty();) {
      const auto colon = item.find(':');
      std::size_t index = 0;
      double v = 0.0;
      const auto [ptr, ec] =
          std::from_chars(item.data(), item.data() + std::min(colon, item.size()), index);
      if (colon == std::string_view::npos || ec != std::errc() || ptr != item.data() + colon ||
          index == 0 || !parse_double(item.substr(colon + 1), v))
        throw bad("'" + std::string(item.substr(0, 64)) +
                  "' is not of the form index:value with index >= 1");
      // Indices are feature numbers: beyond what a dense matrix can index, only a mistake.
      if (index > static_cast<std::size_t>(INT_MAX))
        throw bad("index " + std::string(item.substr(0, colon)) + " is larger than " +
                  std::to_string(INT_MAX));
      if (index <= last)
        throw bad("indices must increase (" + std::string(item.substr(0, 64)) + ")");
      last = index;
      row.emplace_back(index - 1, v);
      table.dim = std::max(table.dim, index);
      entries += 1;
    }
    // The rows held here (16 bytes an entry) and the dense matrix made of them.
    if (16.0 * entries > budget) require_memory(16.0 * entries, "its entries", path);
  }
  if (table.rows.empty()) throw InputError(path, 0, "", "no samples");
  return table;
}

}  // namespace dln::io
