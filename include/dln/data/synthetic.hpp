// Synthetic data sets generated from a seed.
#pragma once

#include <cstdint>
#include <vector>

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

// Two linearly separable classes through the origin: per class `samples` points in R^dim with
// labels -1/+1; z ~ N(0, I), and along a seeded unit direction u the component is replaced by
// y (margin + |<z, u>|), so that y <u, x> >= margin for every point (the max-margin direction
// of the sample may tilt from u; dln computes it).
Dataset separable(int samples, int dim, double margin, std::uint64_t seed);

// The AGD paper's toy sets (Sections 4.2-4.4): m samples in m dimensions, x_i = sqrt(m
// lambda_i) e_i, so that (1/n) X^T X = diag(lambda), with targets y_i. lambda = (1, 0.01) is
// toy.agd, (1, 4e-4) toy.agd_unstable.
Dataset toy_diagonal(const std::vector<double>& lambdas, const std::vector<double>& targets);

// Hou et al.'s l_p toy problem (after Arora et al.): x_1 = (0, 1) -> y1, x_2 = (1, 0) -> y2.
Dataset toy_lp(double y1, double y2);

// One sample x = 1 with target y* (Sections 3.1-3.2: Shamir's plateau, Saxe's sigmoid).
Dataset toy_scalar(double y_star);

}  // namespace dln
