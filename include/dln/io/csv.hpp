// Numeric CSV tables with a header row.
#pragma once

#include <string>
#include <vector>

namespace dln::io {

struct CsvTable {
  std::vector<std::string> columns;
  std::vector<double> values;  // row-major, columns.size() per row
  std::size_t rows() const { return columns.empty() ? 0 : values.size() / columns.size(); }
  double at(std::size_t row, std::size_t col) const { return values[row * columns.size() + col]; }
};

// Every row must have as many fields as the header and every field must be a number;
// otherwise an InputError names the file, the line and the column. A delimiter of '\0' splits
// on runs of whitespace; without a header row the columns are named "1", "2", ...; a path
// ending in ".gz" is read through zlib.
CsvTable read_csv(const std::string& path, char delimiter = ',', bool header = true);

}  // namespace dln::io
