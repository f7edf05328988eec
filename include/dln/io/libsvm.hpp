// LIBSVM text files ("label index:value ..." with 1-based, increasing indices), the format of
// the UCI gas-sensor sets, read into a dense table.
#pragma once

#include <string>
#include <vector>

namespace dln::io {

struct SparseTable {
  std::size_t dim = 0;          // the largest index seen
  std::vector<double> labels;   // one per row
  std::vector<double> classes;  // one per row: a of a label "a;b", 0 for a plain label
  std::vector<std::vector<std::pair<std::size_t, double>>> rows;  // (0-based index, value)
};

// A label "a;b" (the gas-sensor files' "class;concentration") is read as b, with class a. A
// malformed line, or an index above 2^31 - 1, is an InputError naming the file and the line.
SparseTable read_libsvm(const std::string& path);

}  // namespace dln::io
