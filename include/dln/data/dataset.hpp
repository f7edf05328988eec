// A regression data set: one column per sample, X is d x n and Y is k x n.
#pragma once

#include <Eigen/Core>

#include "dln/registry.hpp"

namespace dln {

struct Dataset {
  Eigen::MatrixXd X;  // d x n
  Eigen::MatrixXd Y;  // k x n

  Eigen::Index dim() const { return X.rows(); }
  Eigen::Index targets() const { return Y.rows(); }
  Eigen::Index samples() const { return X.cols(); }
};

const Registry& dataset_registry();

// Centres every feature and scales it to unit (population) variance; a constant feature is
// only centred. Targets are left as they are.
void standardize(Dataset& data);

// X <- Sigma_xx^{-1/2} X with Sigma_xx = X X^T / n (the uncentred second moment, as in Saxe et
// al.), so that X X^T / n = I afterwards. Returns false, changing nothing, when Sigma_xx is
// singular (rank < d), which cannot be whitened.
bool whiten(Dataset& data);

}  // namespace dln
