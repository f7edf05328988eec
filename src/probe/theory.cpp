#include "dln/probe/theory.hpp"

#include <array>
#include <boost/numeric/odeint.hpp>
#include <cmath>

#include "dln/optim/e2e.hpp"

namespace dln {
namespace {

// ||dW_e(actual GD step) - dW_e(end-to-end equation)||_F / ||dW_e(actual)||_F at the current
// weights and learning rate: actual = prod_l (W_l - eta g_l) - W_e, predicted = -eta P(W_e, G).
class E2eDev final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("e2e_dev");
  }
  void bind(const StepCache& c) override {
    const auto& n = c.net().widths();
    precond_.resize(n.back(), n.front(), c.model_depth());
    stepped_.clear();
    for (const auto& W : c.net().layers) stepped_.emplace_back(W.rows(), W.cols());
    product_.resize(n.back(), n.front());
    scratch_.resize(n.back(), n.front());
    predicted_.resize(n.back(), n.front());
    partial_.clear();
    for (std::size_t l = 1; l < n.size(); ++l) partial_.emplace_back(n[l], n.front());
  }
  void measure(const StepInfo& info, StepCache& c, std::span<double> out) override {
    const auto& g = c.layer_gradients();
    const auto& W = c.net().layers;
    for (std::size_t l = 0; l < W.size(); ++l) stepped_[l] = W[l] - info.lr * g[l];
    partial_[0] = stepped_[0];
    for (std::size_t l = 1; l < W.size(); ++l)
      partial_[l].noalias() = stepped_[l] * partial_[l - 1];
    product_ = partial_.back() - c.end_to_end();  // the actual change of W_e
    precond_.apply(c.end_to_end(), c.e2e_gradient(), predicted_);
    scratch_ = product_ + info.lr * predicted_;
    const double actual = product_.norm();
    out[0] = actual > 0 ? scratch_.norm() / actual : 0.0;
  }

 private:
  EndToEndPreconditioner precond_;
  std::vector<Eigen::MatrixXd> stepped_, partial_;
  Eigen::MatrixXd product_, scratch_, predicted_;
};

// Balancedness C_l = W_{l+1}^T W_{l+1} - W_l W_l^T of the pair (l, l+1), computed into `out`.
void balancedness(const LinearNet& net, int l, Eigen::MatrixXd& out) {
  out.noalias() = net.layers[l + 1].transpose() * net.layers[l + 1];
  out.noalias() -= net.layers[l] * net.layers[l].transpose();
}

// ||C_l(t) - C_l(0)||_F for each adjacent pair.
class BalanceDrift final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int l = 1; l < net.depth(); ++l) out.push_back("balance_drift." + std::to_string(l));
  }
  void bind(const StepCache& c) override {
    const auto& n = c.net().widths();
    initial_.clear();
    current_.clear();
    for (int l = 1; l < c.net().depth(); ++l) {
      initial_.emplace_back(n[l], n[l]);
      current_.emplace_back(n[l], n[l]);
      balancedness(c.net(), l - 1, initial_.back());
    }
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    for (std::size_t l = 0; l < current_.size(); ++l) {
      balancedness(c.net(), static_cast<int>(l), current_[l]);
      current_[l] -= initial_[l];
      out[l] = current_[l].norm();
    }
  }

 private:
  std::vector<Eigen::MatrixXd> initial_, current_;
};

// max_{l,k} | ||W_l||_F - ||W_k||_F |.
class NormGap final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("norm_gap");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    double lo = INFINITY, hi = 0.0;
    for (const auto& W : c.net().layers) {
      const double f = W.norm();
      lo = std::min(lo, f);
      hi = std::max(hi, f);
    }
    out[0] = hi - lo;
  }
};

// Basu Lemma 2 / Cor. 2.1 made explicit: ||W_k||^2 - ||W_l||^2 = sum_j tr C_j is conserved by
// gradient flow, and |a - b| <= sqrt(|a^2 - b^2|), so the gap of every pair stays below
// max_{l<k} sqrt(| ||W_k(0)||^2 - ||W_l(0)||^2 |) (docs/theory.md#norm-gap).
class NormGapBound final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("norm_gap_bound");
  }
  void bind(const StepCache& c) override {
    bound_ = 0.0;
    for (const auto& a : c.net().layers)
      for (const auto& b : c.net().layers)
        bound_ = std::max(bound_, std::sqrt(std::abs(a.squaredNorm() - b.squaredNorm())));
  }
  void measure(const StepInfo&, StepCache&, std::span<double> out) override { out[0] = bound_; }

 private:
  double bound_ = 0.0;
};

// Sigma_yx (k x d) has min(k, d) singular triplets.
int mode_count(const LinearNet& net) {
  return std::min(net.input_dim(), net.output_dim());
}

// mode.i = u_i^T W_e v_i for the singular vectors (u_i, v_i) of Sigma_yx.
class Mode final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int i = 1; i <= mode_count(net); ++i) out.push_back("mode." + std::to_string(i));
  }
  void bind(const StepCache& c) override {
    modes_ = mode_count(c.net());
    wv_.resize(c.net().output_dim());
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const Problem& p = c.problem();
    for (int i = 0; i < modes_; ++i) {
      wv_.noalias() = c.end_to_end() * p.mode_v().col(i);
      out[i] = p.mode_u().col(i).dot(wv_);
    }
  }

 private:
  int modes_ = 0;
  Eigen::VectorXd wv_;
};

// Saxe's prediction for each mode: with whitened inputs and decoupled, balanced layers, the
// strength u of a mode with singular value s follows du/dt = a L |u|^{2-2/L} (s - u)
// (a = c n, the loss scale times n); for L = 2 the closed form
// u(t) = s / (1 + (s/u_0 - 1) e^{-2 a s t}) (docs/theory.md#saxe-modes).
class ModeTheory final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int i = 1; i <= mode_count(net); ++i) out.push_back("mode_theory." + std::to_string(i));
  }
  void bind(const StepCache& c) override {
    modes_ = mode_count(c.net());
    depth_ = c.model_depth();
    scale_ = c.problem().loss().scale(c.problem().samples()) *
             static_cast<double>(c.problem().samples());
    initialised_ = false;
    u0_.assign(modes_, 0.0);
    u_.assign(modes_, 0.0);
    wv_.resize(c.net().output_dim());
    t_ = 0.0;
  }
  void measure(const StepInfo& info, StepCache& c, std::span<double> out) override {
    const Problem& p = c.problem();
    if (!initialised_) {
      for (int i = 0; i < modes_; ++i) {
        wv_.noalias() = c.end_to_end() * p.mode_v().col(i);
        u0_[i] = u_[i] = p.mode_u().col(i).dot(wv_);
      }
      initialised_ = true;
      t_ = info.t;
    }
    for (int i = 0; i < modes_; ++i) {
      const double s = p.mode_s()(i);
      if (depth_ == 2 && u0_[i] != 0.0) {
        out[i] = s / (1.0 + (s / u0_[i] - 1.0) * std::exp(-2.0 * scale_ * s * info.t));
        continue;
      }
      // Other depths: integrate the scalar ODE from the last record time.
      namespace odeint = boost::numeric::odeint;
      std::array<double, 1> u{u_[i]};
      const double L = depth_, a = scale_;
      auto rhs = [&](const std::array<double, 1>& x, std::array<double, 1>& dx, double) {
        dx[0] = a * L * std::pow(std::abs(x[0]), 2.0 - 2.0 / L) * (s - x[0]);
      };
      if (info.t > t_)
        odeint::integrate_adaptive(
            odeint::make_controlled(1e-12, 1e-12,
                                    odeint::runge_kutta_dopri5<std::array<double, 1>>()),
            rhs, u, t_, info.t, (info.t - t_) / 10.0);
      u_[i] = u[0];
      out[i] = u[0];
    }
    t_ = info.t;
  }

 private:
  int modes_ = 0, depth_ = 1;
  double scale_ = 1.0, t_ = 0.0;
  bool initialised_ = false;
  std::vector<double> u0_, u_;
  Eigen::VectorXd wv_;
};

}  // namespace

std::unique_ptr<Probe> make_theory_probe(const std::string& name) {
  if (name == "e2e_dev") return std::make_unique<E2eDev>();
  if (name == "balance_drift") return std::make_unique<BalanceDrift>();
  if (name == "norm_gap") return std::make_unique<NormGap>();
  if (name == "norm_gap_bound") return std::make_unique<NormGapBound>();
  if (name == "mode") return std::make_unique<Mode>();
  if (name == "mode_theory") return std::make_unique<ModeTheory>();
  return nullptr;
}

}  // namespace dln
