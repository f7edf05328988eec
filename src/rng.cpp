#include "dln/rng.hpp"

#include <Eigen/QR>
#include <cmath>
#include <numbers>

namespace dln {

std::uint64_t derive_seed(std::uint64_t seed, std::string_view stream) {
  // FNV-1a of the stream name, then one splitmix64 round of the combination.
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : stream) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (h | 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double Rng::uniform() {
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

double Rng::uniform(double lo, double hi) {
  return lo + (hi - lo) * uniform();
}

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = 0.0;
  while (u1 == 0.0) u1 = uniform();
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

Eigen::MatrixXd Rng::normal_matrix(Eigen::Index rows, Eigen::Index cols, double stddev) {
  Eigen::MatrixXd m(rows, cols);
  // Row by row, so that the draw order matches a C-order (out, in) array.
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = stddev * normal();
  return m;
}

Eigen::MatrixXd Rng::orthonormal_columns(Eigen::Index rows, Eigen::Index cols) {
  const Eigen::MatrixXd g = normal_matrix(rows, cols);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(rows, cols);
  // Sign fix so that the distribution is Haar (diag(R) > 0).
  const Eigen::MatrixXd& r = qr.matrixQR();
  for (Eigen::Index j = 0; j < cols; ++j)
    if (r(j, j) < 0) q.col(j) = -q.col(j);
  return q;
}

}  // namespace dln
