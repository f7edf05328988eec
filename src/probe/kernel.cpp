#include "dln/probe/kernel.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace dln {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// Sigma_xx = X X^T / n: the problem's on the stats path, else computed here once (bind).
const Eigen::MatrixXd& sigma_xx(const Problem& p, Eigen::MatrixXd& own) {
  if (p.uses_stats()) return p.sigma_xx();
  if (own.size() == 0) own = p.data().X * p.data().X.transpose() / static_cast<double>(p.samples());
  return own;
}

// E X^T = -(Y^ - Y) X^T (1 x d for a scalar output), E = Y - Y^ the error; on the stats path
// (l2) it is -dL/dW_e / c, from the cache's gradient.
void error_times_x(StepCache& c, Eigen::MatrixXd& out) {
  const Problem& p = c.problem();
  if (p.uses_stats()) {
    out = c.e2e_gradient();
    out *= -1.0 / p.loss().scale(p.samples());
  } else {
    out.noalias() = c.residual() * p.data().X.transpose();
    out *= -1.0;
  }
}

// <Y^, E> = sum_i y^_i (y_i - y^_i).
class YhatDotErr final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("yhat_dot_err");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const Problem& p = c.problem();
    if (p.uses_stats()) {
      // dL/dW_e = c (Y^ - Y) X^T, so <W_e, dL/dW_e> = c <Y^, Y^ - Y> = -c <Y^, E>.
      out[0] = -c.end_to_end().cwiseProduct(c.e2e_gradient()).sum() / p.loss().scale(p.samples());
    } else {
      const Eigen::MatrixXd& R = c.residual();  // Y^ - Y
      out[0] = -(R.squaredNorm() + R.cwiseProduct(p.data().Y).sum());
    }
  }
};

// err_eig.i = <u_i, E>, u_i the unit eigenvector of X^T X with the i-th largest eigenvalue
// s_i^2, taken as u_i = X^T v_i / s_i from the eigenvector v_i of X X^T (sign: the largest
// entry of v_i positive); NaN where s_i = 0.
class ErrEig final : public Probe {
 public:
  explicit ErrEig(int count) : count_(count) {}
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    (void)net;
    for (int i = 1; i <= columns_; ++i) out.push_back("err_eig." + std::to_string(i));
  }
  void bind(const StepCache& c) override {
    const Problem& p = c.problem();
    columns_ = static_cast<int>(std::min<Eigen::Index>({count_, p.dim(), p.samples()}));
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(sigma_xx(p, own_sigma_));
    const Eigen::Index d = p.dim();
    const double n = static_cast<double>(p.samples());
    const double top = std::max(eig.eigenvalues()(d - 1), 0.0);
    dirs_.resize(d, columns_);
    inv_s_.resize(columns_);
    for (int i = 0; i < columns_; ++i) {
      Eigen::VectorXd v = eig.eigenvectors().col(d - 1 - i);
      Eigen::Index at = 0;
      v.cwiseAbs().maxCoeff(&at);
      if (v(at) < 0) v = -v;
      dirs_.col(i) = v;
      const double lambda = eig.eigenvalues()(d - 1 - i);
      inv_s_(i) = lambda > 1e-12 * top && lambda > 0 ? 1.0 / std::sqrt(n * lambda) : kNan;
    }
    xe_.resize(1, d);
    proj_.resize(1, columns_);
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    error_times_x(c, xe_);
    proj_.noalias() = xe_ * dirs_;
    for (int i = 0; i < columns_; ++i) out[i] = proj_(0, i) * inv_s_(i);
  }

 private:
  int count_, columns_ = 0;
  Eigen::MatrixXd own_sigma_, dirs_, xe_, proj_;
  Eigen::VectorXd inv_s_;
};

// The rate eta_l of layer l's step and the scale s_l with eta_l ||S_l||^2 = s_l where it
// matters: GD-like optimisers use the step's learning rate for every layer; AGD uses
// eta / (theta_2 ... theta_L)^2 for layer 1 (so that eta_1 ||S_1||^2 = eta) and theta_l^2 / 2
// for the scalar layers.
double layer_rate_times_suffix(const StepInfo& info, StepCache& c, int l, bool agd) {
  const LinearNet& net = c.net();
  const int L = net.depth();
  const double s2 = l == L ? 1.0 : c.suffix(l).squaredNorm();  // ||S_l||_F^2 (k = 1)
  if (!agd) return info.lr * s2;
  if (l == 1) return info.lr;
  const double theta = net.layers[l - 1](0, 0);
  return 0.5 * theta * theta * s2;
}

// kernel_rho.l = max over the nonzero eigenvalues kappa of c K^(l) of |1 - eta_l kappa|, with
// K^(l) = (S_l S_l^T) (x) (H^T H), H = P_{l-1} X: the factor by which one step of layer l
// alone can stretch the error (E <- (I - eta_l c K^(l)) E; exact for one layer's step). Its
// nonzero spectrum is n times the products of the eigenvalues of S_l S_l^T and of
// P_{l-1} Sigma_xx P_{l-1}^T (a k x k and an n_{l-1} x n_{l-1} problem); 0 when K^(l) = 0.
class KernelRho final : public Probe {
 public:
  explicit KernelRho(bool agd) : agd_(agd) {}
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int l = 1; l <= net.depth(); ++l) out.push_back("kernel_rho." + std::to_string(l));
  }
  void bind(const StepCache& c) override {
    const Problem& p = c.problem();
    const auto& w = c.net().widths();
    const int L = c.net().depth();
    const Eigen::MatrixXd& sigma = sigma_xx(p, own_sigma_);
    sigma_ = &sigma;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(sigma, Eigen::EigenvaluesOnly);
    first_ = eig.eigenvalues();
    tmp_.clear();
    gram_.clear();
    solvers_.clear();
    solvers_.reserve(L);  // never copied (see StepCache::bind)
    outer_.clear();
    out_solvers_.clear();
    out_solvers_.reserve(L);
    for (int l = 1; l <= L; ++l) {
      tmp_.emplace_back(w[l - 1], p.dim());
      gram_.emplace_back(w[l - 1], w[l - 1]);
      solvers_.emplace_back(w[l - 1]);
      outer_.emplace_back(p.targets(), p.targets());
      out_solvers_.emplace_back(p.targets());
    }
  }
  void measure(const StepInfo& info, StepCache& c, std::span<double> out) override {
    const Problem& p = c.problem();
    const int L = c.net().depth();
    const double cn = p.loss().scale(p.samples()) * static_cast<double>(p.samples());
    for (int l = 1; l <= L; ++l) {
      const Eigen::VectorXd* inner = &first_;
      if (l > 1) {
        const Eigen::MatrixXd& P = c.prefix(l - 1);
        tmp_[l - 1].noalias() = P * *sigma_;
        gram_[l - 1].noalias() = tmp_[l - 1] * P.transpose();
        solvers_[l - 1].compute(gram_[l - 1], Eigen::EigenvaluesOnly);
        inner = &solvers_[l - 1].eigenvalues();
      }
      // Output side: S_l S_l^T (k x k); with AGD's rates (k = 1) folded into the rate.
      double mu_min = 1.0, mu_max = 1.0, rate = info.lr;
      if (agd_) {
        rate = layer_rate_times_suffix(info, c, l, true);
      } else if (l < L) {
        outer_[l - 1].noalias() = c.suffix(l) * c.suffix(l).transpose();
        out_solvers_[l - 1].compute(outer_[l - 1], Eigen::EigenvaluesOnly);
        const auto& mu = out_solvers_[l - 1].eigenvalues();
        const double tol = 1e-12 * std::max(mu.maxCoeff(), 0.0);
        mu_max = mu.maxCoeff();
        mu_min = kNan;
        for (Eigen::Index i = 0; i < mu.size(); ++i)
          if (mu(i) > tol && mu(i) > 0 && !(mu(i) >= mu_min)) mu_min = mu(i);
      }
      const double top = std::max(inner->maxCoeff(), 0.0);
      double lo = kNan;
      for (Eigen::Index i = 0; i < inner->size(); ++i) {
        const double v = (*inner)(i);
        if (v > 1e-12 * top && v > 0 && !(v >= lo)) lo = v;
      }
      if (std::isnan(lo) || std::isnan(mu_min) || !(mu_max > 0) || !(rate > 0)) {
        out[l - 1] = 0.0;  // K^(l) = 0 (or a zero rate): the step leaves E unchanged
        continue;
      }
      const double x_min = rate * cn * mu_min * lo, x_max = rate * cn * mu_max * top;
      out[l - 1] = std::max(std::abs(1.0 - x_min), std::abs(1.0 - x_max));
    }
  }

 private:
  bool agd_;
  const Eigen::MatrixXd* sigma_ = nullptr;
  Eigen::MatrixXd own_sigma_;
  Eigen::VectorXd first_;
  std::vector<Eigen::MatrixXd> tmp_, gram_, outer_;
  std::vector<Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>> solvers_, out_solvers_;
};

// kernel_eig.l.i: the i-th smallest eigenvalue of I - eta_l c K^(l) (n x n; scalar output,
// n <= kKernelEigMaxSamples), K^(l) = ||S_l||^2 H^T H, H = P_{l-1} X.
class KernelEig final : public Probe {
 public:
  explicit KernelEig(bool agd) : agd_(agd) {}
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int l = 1; l <= net.depth(); ++l)
      for (Eigen::Index i = 1; i <= samples_; ++i)
        out.push_back("kernel_eig." + std::to_string(l) + "." + std::to_string(i));
  }
  void bind(const StepCache& c) override {
    samples_ = c.problem().samples();
    const auto& w = c.net().widths();
    h_.clear();
    for (int l = 1; l <= c.net().depth(); ++l) h_.emplace_back(w[l - 1], samples_);
    k_.resize(samples_, samples_);
    solver_.emplace(samples_);  // in place: a copied solver carries an uninitialised status
  }
  void measure(const StepInfo& info, StepCache& c, std::span<double> out) override {
    const Problem& p = c.problem();
    const Eigen::MatrixXd& X = p.data().X;
    const double cscale = p.loss().scale(p.samples());
    std::size_t o = 0;
    for (int l = 1; l <= c.net().depth(); ++l) {
      const double rate = layer_rate_times_suffix(info, c, l, agd_);
      if (l == 1) {
        k_.noalias() = X.transpose() * X;
      } else {
        h_[l - 1].noalias() = c.prefix(l - 1) * X;
        k_.noalias() = h_[l - 1].transpose() * h_[l - 1];
      }
      k_ *= -rate * cscale;
      k_.diagonal().array() += 1.0;
      solver_->compute(k_, Eigen::EigenvaluesOnly);
      for (Eigen::Index i = 0; i < samples_; ++i) out[o++] = solver_->eigenvalues()(i);
    }
  }

 private:
  bool agd_;
  Eigen::Index samples_ = 0;
  std::vector<Eigen::MatrixXd> h_;
  Eigen::MatrixXd k_;
  std::optional<Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>> solver_;
};

// theta_e.i = (W_e)_{1i}, the effective vector of a scalar-output net.
class ThetaE final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int i = 1; i <= net.input_dim(); ++i) out.push_back("theta_e." + std::to_string(i));
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const Eigen::MatrixXd& we = c.end_to_end();
    for (Eigen::Index i = 0; i < we.cols(); ++i) out[static_cast<std::size_t>(i)] = we(0, i);
  }
};

// The loss of W_e on the held-out split (its own n in the mean).
class TestLoss final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("test_loss");
  }
  void bind(const StepCache& c) override {
    const Dataset& d = c.problem().data();
    resid_.resize(d.test_Y.rows(), d.test_Y.cols());
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const Dataset& d = c.problem().data();
    resid_.noalias() = c.end_to_end() * d.test_X;
    resid_ -= d.test_Y;
    out[0] = c.problem().loss().value(resid_, d.test_Y);
  }

 private:
  Eigen::MatrixXd resid_;
};

}  // namespace

std::unique_ptr<Probe> make_kernel_probe(const std::string& name, const ProbeOptions& options) {
  const bool agd = options.optimizer == "agd";
  if (name == "yhat_dot_err") return std::make_unique<YhatDotErr>();
  if (name == "kernel_rho") return std::make_unique<KernelRho>(agd);
  if (name == "theta_e") return std::make_unique<ThetaE>();
  if (name == "test_loss") return std::make_unique<TestLoss>();
  if (name == "err_eig") return std::make_unique<ErrEig>(options.eigs);
  if (name == "kernel_eig") return std::make_unique<KernelEig>(agd);
  return nullptr;
}

}  // namespace dln
