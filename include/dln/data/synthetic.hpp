// Synthetic data sets generated from a seed.
#pragma once

#include <cstdint>

#include "dln/data/dataset.hpp"

namespace dln {

// Basu et al.'s mixture: `components` Gaussians of `samples` points each in R^dim; component j
// has mean ~ N(0, mean_std^2 I) and covariance Q_j diag(lambda) Q_j^T with Q_j a Haar rotation
// and sqrt(lambda_i) = s_j a_i, s_j ~ U[scale_min, scale_max], a_i ~ U[0.5, 1.5]. Targets are
// Y = M X + noise * N(0, 1) with M (targets x dim) of i.i.d. N(0, map_std^2) entries.
struct GaussianMixtureSpec {
  int components = 3;
  int samples = 400;  // per component
  int dim = 10;
  int targets = 3;
  double noise = 0.0;
  double map_std = 1.0;
  double mean_std = 2.0;
  double scale_min = 0.5;
  double scale_max = 2.0;
  std::uint64_t seed = 1;
};

Dataset gaussian_mixture(const GaussianMixtureSpec& spec);

}  // namespace dln
