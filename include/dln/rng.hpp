// Seeded random numbers that are the same on every run: a 64-bit Mersenne Twister with
// uniform and normal draws defined here (not by the standard library's distributions,
// whose output is implementation-defined).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <random>
#include <string_view>

namespace dln {

// Mixes a seed with a stream name, so that data, init, ... draw independent streams.
std::uint64_t derive_seed(std::uint64_t seed, std::string_view stream);

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  double uniform();                      // [0, 1), 53 random bits
  double uniform(double lo, double hi);  // [lo, hi)
  double normal();                       // standard normal, Box-Muller
  Eigen::MatrixXd normal_matrix(Eigen::Index rows, Eigen::Index cols, double stddev = 1.0);
  // A matrix with orthonormal columns (rows >= cols), Haar-distributed.
  Eigen::MatrixXd orthonormal_columns(Eigen::Index rows, Eigen::Index cols);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace dln
