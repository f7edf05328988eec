#include "dln/probe/alignment.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <cmath>
#include <limits>

#include "dln/core/max_margin.hpp"

namespace dln {
namespace {

// margin = min_i y_i <W_prod, x_i> / prod_k ||W_k||_F (scalar output, labels -1/+1). On the data
// path (every margin loss) the predictions come from the step's residual, Y^ = R + Y.
class Margin final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("margin");
  }
  void bind(const StepCache& c) override { yhat_.resize(1, c.problem().samples()); }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const Dataset& d = c.problem().data();
    if (c.problem().uses_stats()) {
      yhat_.noalias() = c.end_to_end() * d.X;
    } else {
      yhat_ = c.residual();
      yhat_ += d.Y;
    }
    double low = std::numeric_limits<double>::infinity();
    for (Eigen::Index i = 0; i < yhat_.cols(); ++i) low = std::min(low, d.Y(0, i) * yhat_(0, i));
    double norms = 1.0;
    for (const auto& W : c.net().layers) norms *= W.norm();
    out[0] = norms > 0 ? low / norms : std::numeric_limits<double>::quiet_NaN();
  }

 private:
  Eigen::MatrixXd yhat_;
};

// cos_maxmargin = <W_prod, u> / ||W_prod||, u the max-margin direction of the data (no bias).
class CosMaxMargin final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("cos_maxmargin");
  }
  void bind(const StepCache& c) override {
    const Dataset& d = c.problem().data();
    u_ = max_margin(d.X, d.Y.row(0)).direction;
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const Eigen::MatrixXd& we = c.end_to_end();
    const double norm = we.norm();
    out[0] =
        norm > 0 ? we.row(0).dot(u_.transpose()) / norm : std::numeric_limits<double>::quiet_NaN();
  }

 private:
  Eigen::VectorXd u_;
};

// adj_align.l = |v_{l+1}^T u_l| for l = 1 .. L-1: u_l the top left singular vector of W_l, v_{l+1}
// the top right singular vector of W_{l+1} (both through the smaller Gram matrix).
class AdjAlign final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int l = 1; l < net.depth(); ++l) out.push_back("adj_align." + std::to_string(l));
  }
  void bind(const StepCache& c) override {
    const LinearNet& net = c.net();
    grams_.clear();
    solvers_.clear();
    solvers_.reserve(net.layers.size());  // never copied (see StepCache::bind)
    ldlts_.clear();
    ldlts_.reserve(net.layers.size());
    u_.clear();
    v_.clear();
    x_.clear();
    y_.clear();
    for (const auto& W : net.layers) {
      const Eigen::Index m = std::min(W.rows(), W.cols());
      grams_.emplace_back(m, m);
      solvers_.emplace_back(m);
      ldlts_.emplace_back(m);
      u_.emplace_back(W.rows());
      v_.emplace_back(W.cols());
      x_.push_back(Eigen::VectorXd::Ones(m).normalized());
      y_.emplace_back(m);
    }
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const auto& layers = c.net().layers;
    for (std::size_t l = 0; l < layers.size(); ++l) top_pair(layers[l], l);
    for (std::size_t l = 0; l + 1 < layers.size(); ++l) out[l] = std::abs(v_[l + 1].dot(u_[l]));
  }

 private:
  // The top eigenvector of the Gram matrix G: its largest eigenvalue lambda (eigenvalues only),
  // then inverse iteration with G - (1 + 1e-10) lambda I, started from the last step's vector;
  // each iteration divides the other components by at least 1e10 / gap. (Eigen's eigenvector
  // extraction allocates a workspace; this does not.)
  void top_eigenvector(std::size_t l) {
    Eigen::MatrixXd& gram = grams_[l];
    solvers_[l].compute(gram, Eigen::EigenvaluesOnly);
    const double lambda = std::max(solvers_[l].eigenvalues().maxCoeff(), 0.0);
    const double shift = lambda * (1.0 + 1e-10) + std::numeric_limits<double>::min();
    gram.diagonal().array() -= shift;
    ldlts_[l].compute(gram);
    for (int it = 0; it < 3; ++it) {
      y_[l] = ldlts_[l].solve(x_[l]);
      const double norm = y_[l].norm();
      if (!(norm > 0) || !std::isfinite(norm)) break;
      x_[l] = y_[l] / norm;
    }
  }

  void top_pair(const Eigen::MatrixXd& W, std::size_t l) {
    Eigen::MatrixXd& gram = grams_[l];
    if (W.rows() <= W.cols()) {
      gram.noalias() = W * W.transpose();
      top_eigenvector(l);
      u_[l] = x_[l];
      v_[l].noalias() = W.transpose() * u_[l];
      const double s = v_[l].norm();
      if (s > 0) v_[l] /= s;
    } else {
      gram.noalias() = W.transpose() * W;
      top_eigenvector(l);
      v_[l] = x_[l];
      u_[l].noalias() = W * v_[l];
      const double s = u_[l].norm();
      if (s > 0) u_[l] /= s;
    }
  }

  std::vector<Eigen::MatrixXd> grams_;
  std::vector<Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>> solvers_;
  std::vector<Eigen::LDLT<Eigen::MatrixXd>> ldlts_;
  std::vector<Eigen::VectorXd> u_, v_, x_, y_;
};

}  // namespace

std::unique_ptr<Probe> make_alignment_probe(const std::string& name) {
  if (name == "margin") return std::make_unique<Margin>();
  if (name == "cos_maxmargin") return std::make_unique<CosMaxMargin>();
  if (name == "adj_align") return std::make_unique<AdjAlign>();
  return nullptr;
}

}  // namespace dln
