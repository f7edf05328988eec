#include "dln/init/init.hpp"

#include <Eigen/SVD>
#include <cmath>
#include <stdexcept>

#include "dln/error.hpp"
#include "dln/io/npy.hpp"
#include "dln/rng.hpp"

namespace dln {

const RegistryEntry* find_entry(const Registry& registry, const std::string& name) {
  for (const auto& e : registry)
    if (e.name == name) return &e;
  return nullptr;
}

const Registry& init_registry() {
  static const Registry registry = {
      {"glorot_normal", "i.i.d. N(0, 2 / (fan_in + fan_out)) entries (Glorot & Bengio)", {}},
      {"glorot_uniform", "i.i.d. U(-a, a) entries, a = sqrt(6 / (fan_in + fan_out))", {}},
      {"he", "i.i.d. N(0, 2 / fan_in) entries (He et al.)", {}},
      {"normal", "i.i.d. N(0, std^2) entries", {"init.std"}},
      {"orthogonal",
       "gain times a Haar-random matrix with orthonormal rows or columns",
       {"init.gain"}},
      {"identity",
       "gain times the (rectangular) identity, plus N(0, noise^2) entries",
       {"init.gain", "init.noise"}},
      {"balanced",
       "W_{l+1}^T W_{l+1} = W_l W_l^T exactly, from a sampled end-to-end matrix with N(0, std^2) "
       "entries",
       {"init.std"}},
      {"npy", "explicit weights, one (out, in) .npy file per layer", {"init.paths"}},
      {"constant",
       "every entry of W_l equal to values[l] (one value for all layers, or one per layer)",
       {"init.values"}},
      {"agd", "AGD's initialisation: W_1 = 0, every later layer all ones", {}},
      {"saxe",
       "decoupled: W_1 = R_2 S_1 V^T, W_l = R_{l+1} S_l R_l^T, W_L = U S_L R_L^T on the SVD of "
       "Sigma_yx, every mode of initial strength `strength`",
       {"init.strength", "init.layer_gains"}},
  };
  return registry;
}

namespace {

// Balanced layers for the end-to-end matrix E = U S V^T truncated to rank r = min width:
// W_1 = Q_2 S^{1/L} V^T, W_l = Q_{l+1} S^{1/L} Q_l^T, W_L = U S^{1/L} Q_L^T, with Q_l (n_l x r)
// Haar orthonormal columns. Then W_{l+1}^T W_{l+1} = Q_{l+1} S^{2/L} Q_{l+1}^T = W_l W_l^T and
// W_L ... W_1 = U_r S_r V_r^T (docs/theory.md#balanced-initialisation).
void balanced(LinearNet& net, double std, Rng& rng) {
  const auto& n = net.widths();
  const int L = net.depth();
  const Eigen::MatrixXd e = rng.normal_matrix(n.back(), n.front(), std);
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(e, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const int r = *std::min_element(n.begin(), n.end());
  const Eigen::VectorXd s = svd.singularValues().head(r).array().pow(1.0 / L).matrix();
  std::vector<Eigen::MatrixXd> q(L + 1);
  q[0] = svd.matrixV().leftCols(r);
  q[L] = svd.matrixU().leftCols(r);
  for (int l = 1; l < L; ++l) q[l] = rng.orthonormal_columns(n[l], r);
  for (int l = 0; l < L; ++l) net.layers[l] = q[l + 1] * s.asDiagonal() * q[l].transpose();
}

// Saxe et al.'s decoupled initialisation aligned with Sigma_yx = U S V^T: with r = min width
// modes, W_1 = R_2 D_1 V_r^T, W_l = R_{l+1} D_l R_l^T, W_L = U_r D_L R_L^T, R_l Haar (n_l x r),
// D_l = g_l strength^{1/L} I; mode i of W_e is then (prod g_l) strength u_i v_i^T
// (docs/theory.md#saxe-modes).
void saxe(LinearNet& net, const InitSpec& spec, const Eigen::MatrixXd& sigma_yx, Rng& rng) {
  const auto& n = net.widths();
  const int L = net.depth();
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(sigma_yx, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const int r = *std::min_element(n.begin(), n.end());
  std::vector<Eigen::MatrixXd> q(L + 1);
  q[0] = svd.matrixV().leftCols(r);
  q[L] = svd.matrixU().leftCols(r);
  for (int l = 1; l < L; ++l) q[l] = rng.orthonormal_columns(n[l], r);
  const double per_layer = std::pow(spec.strength, 1.0 / L);
  for (int l = 0; l < L; ++l) {
    const double gain = spec.layer_gains.empty() ? 1.0 : spec.layer_gains[l];
    net.layers[l] = gain * per_layer * q[l + 1] * q[l].transpose();
  }
}

}  // namespace

LinearNet initialize(const std::vector<int>& widths, const InitSpec& spec,
                     const Eigen::MatrixXd* sigma_yx) {
  LinearNet net(widths);
  Rng rng(spec.seed);
  const std::string& s = spec.scheme;
  if (s == "balanced") {
    balanced(net, spec.std, rng);
    return net;
  }
  if (s == "saxe") {
    if (!sigma_yx) throw std::invalid_argument("the saxe initialisation needs Sigma_yx");
    saxe(net, spec, *sigma_yx, rng);
    return net;
  }
  for (int l = 0; l < net.depth(); ++l) {
    Eigen::MatrixXd& W = net.layers[l];
    const double fan_in = static_cast<double>(W.cols()), fan_out = static_cast<double>(W.rows());
    if (s == "glorot_normal") {
      W = rng.normal_matrix(W.rows(), W.cols(), std::sqrt(2.0 / (fan_in + fan_out)));
    } else if (s == "glorot_uniform") {
      const double a = std::sqrt(6.0 / (fan_in + fan_out));
      for (Eigen::Index i = 0; i < W.rows(); ++i)
        for (Eigen::Index j = 0; j < W.cols(); ++j) W(i, j) = rng.uniform(-a, a);
    } else if (s == "he") {
      W = rng.normal_matrix(W.rows(), W.cols(), std::sqrt(2.0 / fan_in));
    } else if (s == "normal") {
      W = rng.normal_matrix(W.rows(), W.cols(), spec.std);
    } else if (s == "orthogonal") {
      if (W.rows() >= W.cols())
        W = spec.gain * rng.orthonormal_columns(W.rows(), W.cols());
      else
        W = spec.gain * rng.orthonormal_columns(W.cols(), W.rows()).transpose();
    } else if (s == "identity") {
      W = spec.gain * Eigen::MatrixXd::Identity(W.rows(), W.cols());
      if (spec.noise > 0) W += rng.normal_matrix(W.rows(), W.cols(), spec.noise);
    } else if (s == "constant") {
      if (spec.values.empty()) throw InputError("", 0, "init.values", "needs at least one value");
      W.setConstant(spec.values.size() == 1 ? spec.values[0] : spec.values.at(l));
    } else if (s == "agd") {
      W.setConstant(l == 0 ? 0.0 : 1.0);
    } else if (s == "npy") {
      if (spec.paths.size() != static_cast<std::size_t>(net.depth()))
        throw InputError("", 0, "init.paths",
                         "has " + std::to_string(spec.paths.size()) + " files for " +
                             std::to_string(net.depth()) + " layers");
      const auto array = io::read_npy(spec.paths[l]);
      const std::vector<std::size_t> want = {static_cast<std::size_t>(W.rows()),
                                             static_cast<std::size_t>(W.cols())};
      if (array.shape != want)
        throw InputError(spec.paths[l], 0, "",
                         "shape " + io::shape_string(array.shape) + ", but layer " +
                             std::to_string(l + 1) + " of model.widths needs " +
                             io::shape_string(want) + " (out, in)");
      W = array.matrix();
    } else {
      throw InputError("", 0, "init.scheme", "unknown scheme '" + s + "'");
    }
  }
  return net;
}

}  // namespace dln
