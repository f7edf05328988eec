// NumPy .npy arrays (format versions 1-3; float64 or float32, little-endian, C or Fortran
// order) read into double, and float64 C-order arrays written from Eigen matrices.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dln/io/input.hpp"
#include "dln/io/output.hpp"

namespace dln::io {

struct NpyArray {
  std::vector<std::size_t> shape;  // as stored; a 0-d array has an empty shape
  std::vector<double> data;        // C (row-major) order

  std::size_t rows() const { return shape.empty() ? 1 : shape[0]; }
  std::size_t cols() const;  // 1 for a 1-d array
  // The array as a rows x cols matrix (1-d arrays are columns).
  Eigen::MatrixXd matrix() const;
  // The array of shape (n, m) as the m x n matrix whose columns are its rows; for a C-order
  // (n, d) sample array this is the d x n data matrix, a plain copy of the buffer.
  Eigen::MatrixXd transposed_matrix() const;
};

std::string shape_string(const std::vector<std::size_t>& shape);

// `name` is what errors say the bytes came from (a file, or a member of an .npz).
NpyArray parse_npy(std::string_view bytes, const std::string& name);
NpyArray read_npy(const std::string& path);
// A sample array of shape (n, d) (or (n,): d = 1) as the d x n data matrix, read from the file
// straight into the matrix's memory (C order; a Fortran-order file goes through a copy).
// `shape` receives the stored shape.
Eigen::MatrixXd read_npy_samples(const std::string& path, std::vector<std::size_t>& shape);

// m as the bytes of a float64 C-order .npy file of shape (rows, cols).
std::string npy_bytes(const Eigen::MatrixXd& m);
// Writes m as a float64 C-order array of shape (rows, cols), atomically (temp + rename).
void write_npy(const std::string& path, const Eigen::MatrixXd& m,
               Durability durability = Durability::kFsync);

}  // namespace dln::io
