// A regression data set: one column per sample, X is d x n and Y is k x n.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <vector>

#include "dln/registry.hpp"

namespace dln {

struct Dataset {
  Eigen::MatrixXd X;  // d x n
  Eigen::MatrixXd Y;  // k x n
  // A held-out split, when the source has one (empty otherwise): never trained on, only
  // measured (the test_loss probe). Preprocessing fitted on X is applied to it unchanged.
  Eigen::MatrixXd test_X, test_Y;

  Eigen::Index dim() const { return X.rows(); }
  Eigen::Index targets() const { return Y.rows(); }
  Eigen::Index samples() const { return X.cols(); }
  bool has_test() const { return test_X.cols() > 0; }
};

const Registry& dataset_registry();

// Centres every feature and scales it to unit (population) variance; a constant feature is
// only centred. Targets are left as they are. The held-out split gets the same transform.
void standardize(Dataset& data);

// The same for the targets Y (each output centred and scaled to unit variance).
void standardize_targets(Dataset& data);

// X <- Sigma_xx^{-1/2} X with Sigma_xx = X X^T / n (the uncentred second moment, as in Saxe et
// al.), so that X X^T / n = I afterwards (the held-out split gets the same map). Returns
// false, changing nothing, when Sigma_xx is singular (rank < d), which cannot be whitened.
bool whiten(Dataset& data);

// Targets for labelled samples: one-hot over `classes` classes (k = classes), or for two
// classes -1 for the first and +1 for the second (pm1, k = 1).
Eigen::MatrixXd class_targets(const std::vector<std::size_t>& class_of, std::size_t classes,
                              bool pm1);

}  // namespace dln
