#include "dln/io/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "dln/error.hpp"
#include "dln/io/input.hpp"

namespace dln::io {
namespace {

// Longer lines (a million features take about 25 MiB) are refused before they are split.
constexpr double kMaxLine = 256.0 * 1024 * 1024;

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

void split(std::string_view line, char delimiter, std::vector<std::string>& fields) {
  fields.clear();
  if (delimiter == '\0') {  // runs of whitespace
    std::size_t pos = 0;
    while (true) {
      const auto b = line.find_first_not_of(" \t\r", pos);
      if (b == std::string_view::npos) break;
      const auto e = std::min(line.find_first_of(" \t\r", b), line.size());
      fields.emplace_back(line.substr(b, e - b));
      pos = e;
    }
    return;
  }
  std::size_t start = 0;
  while (true) {
    const auto pos = line.find(delimiter, start);
    fields.push_back(trim(line.substr(start, pos == std::string_view::npos ? pos : pos - start)));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
}

}  // namespace

CsvTable read_csv(const std::string& path, char delimiter, bool header) {
  const std::string text = read_file(path);
  const double budget = static_cast<double>(memory_budget());
  CsvTable table;
  std::vector<std::string> fields;
  long line_no = 0;
  auto error = [&](const std::string& what) {
    return InputError(path, static_cast<int>(std::min<long>(line_no, INT32_MAX)), "", what);
  };
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.size() > kMaxLine) throw error("the line is longer than " + bytes_text(kMaxLine));
    if (trim(line).empty()) continue;
    split(line, delimiter, fields);
    if (table.columns.empty()) {
      if (header) {
        table.columns = fields;
        continue;
      }
      for (std::size_t c = 1; c <= fields.size(); ++c) table.columns.push_back(std::to_string(c));
    }
    if (fields.size() != table.columns.size())
      throw error("row has " + std::to_string(fields.size()) + " fields, the header has " +
                  std::to_string(table.columns.size()));
    // The values and the data matrices made from them: about twice their size.
    if (16.0 * static_cast<double>(table.values.size() + fields.size()) > budget)
      require_memory(16.0 * static_cast<double>(table.values.size() + fields.size()), "its values",
                     path);
    for (std::size_t c = 0; c < fields.size(); ++c) {
      const std::string& f = fields[c];
      double v = 0.0;
      const auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
      if (f.empty() || ec != std::errc() || ptr != f.data() + f.size())
        throw error("column '" + table.columns[c].substr(0, 64) + "': '" + f.substr(0, 64) +
                    "' is not a number");
      table.values.push_back(v);
    }
  }
  if (table.columns.empty()) throw InputError(path, 0, "", "empty file (no header row)");
  return table;
}

}  // namespace dln::io
