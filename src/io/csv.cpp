#include "dln/io/csv.hpp"

#include <charconv>
#include <sstream>

#include "dln/error.hpp"
#include "dln/io/npy.hpp"

namespace dln::io {
namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> split(const std::string& line, char delimiter) {
  std::vector<std::string> fields;
  if (delimiter == '\0') {  // runs of whitespace
    std::istringstream in(line);
    for (std::string f; in >> f;) fields.push_back(f);
    return fields;
  }
  std::size_t start = 0;
  while (true) {
    const auto pos = line.find(delimiter, start);
    fields.push_back(trim(std::string_view(line).substr(start, pos - start)));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return fields;
}

}  // namespace

CsvTable read_csv(const std::string& path, char delimiter, bool header) {
  std::istringstream in(read_file(path));
  CsvTable table;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    auto fields = split(line, delimiter);
    if (table.columns.empty()) {
      if (header) {
        table.columns = std::move(fields);
        continue;
      }
      for (std::size_t c = 1; c <= fields.size(); ++c) table.columns.push_back(std::to_string(c));
    }
    if (fields.size() != table.columns.size())
      throw InputError(path, line_no, "",
                       "row has " + std::to_string(fields.size()) + " fields, the header has " +
                           std::to_string(table.columns.size()));
    for (std::size_t c = 0; c < fields.size(); ++c) {
      const std::string& f = fields[c];
      double v = 0.0;
      const auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
      if (f.empty() || ec != std::errc() || ptr != f.data() + f.size())
        throw InputError(path, line_no, "",
                         "column '" + table.columns[c] + "': '" + f + "' is not a number");
      table.values.push_back(v);
    }
  }
  if (table.columns.empty()) throw InputError(path, 0, "", "empty file (no header row)");
  return table;
}

}  // namespace dln::io
