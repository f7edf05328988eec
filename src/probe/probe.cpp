#include "dln/probe/probe.hpp"

#include <algorithm>
#include <stdexcept>

#include "dln/core/hessian.hpp"
#include "dln/nonlinear/torch_engine.hpp"
#include "dln/probe/alignment.hpp"
#include "dln/probe/kernel.hpp"
#include "dln/probe/rate.hpp"
#include "dln/probe/spectrum.hpp"
#include "dln/probe/theory.hpp"

namespace dln {
namespace {

void per_layer(const std::string& name, const LinearNet& net, std::vector<std::string>& out) {
  for (int l = 1; l <= net.depth(); ++l) out.push_back(name + "." + std::to_string(l));
}

class LossProbe final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("loss");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override { out[0] = c.loss(); }
};

class Fro final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    per_layer("fro", net, out);
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    for (int l = 0; l < c.net().depth(); ++l) out[l] = c.net().layers[l].norm();
  }
};

class Spectral final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    per_layer("spectral", net, out);
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const auto& s = c.layer_spectral_norms();
    for (std::size_t l = 0; l < s.size(); ++l) out[l] = s[l];
  }
};

class Ratio final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    per_layer("ratio", net, out);
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const auto& s = c.layer_spectral_norms();
    for (std::size_t l = 0; l < s.size(); ++l) out[l] = s[l] / c.net().layers[l].norm();
  }
};

// ||W_{l+1}^T W_{l+1} - W_l W_l^T||_F for the pair (l, l+1).
class Balance final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int l = 1; l < net.depth(); ++l) out.push_back("balance." + std::to_string(l));
  }
  void bind(const StepCache& c) override {
    const auto& n = c.net().widths();
    diff_.clear();
    for (int l = 1; l < c.net().depth(); ++l) diff_.emplace_back(n[l], n[l]);
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    for (std::size_t l = 0; l < diff_.size(); ++l) {
      c.net().balancedness(static_cast<int>(l), diff_[l]);
      out[l] = diff_[l].norm();
    }
  }

 private:
  std::vector<Eigen::MatrixXd> diff_;
};

class E2eFro final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("e2e_fro");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    out[0] = c.end_to_end().norm();
  }
};

class E2eSpectral final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("e2e_spectral");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    out[0] = c.e2e_spectral_norm();
  }
};

class GradFro final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    per_layer("grad_fro", net, out);
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const auto& g = c.layer_gradients();
    for (std::size_t l = 0; l < g.size(); ++l) out[l] = g[l].norm();
  }
};

class DistOpt final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("dist_opt");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    out[0] = c.deviation_from_optimum().norm();
  }
};

class ContinuousTime final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("t");
  }
  void measure(const StepInfo& info, StepCache&, std::span<double> out) override {
    out[0] = info.t;
  }
};

class Time final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("time");
  }
  void measure(const StepInfo& info, StepCache&, std::span<double> out) override {
    out[0] = info.time;
  }
};

}  // namespace

const Registry& probe_registry() {
  static const Registry registry = {
      {"loss", "the training loss L", {}},
      {"fro", "fro.l = ||W_l||_F per layer", {}},
      {"spectral", "spectral.l = ||W_l||_2 per layer", {}},
      {"ratio", "ratio.l = ||W_l||_2 / ||W_l||_F per layer (1 when W_l has rank one)", {}},
      {"balance", "balance.l = ||W_{l+1}^T W_{l+1} - W_l W_l^T||_F per adjacent pair", {}},
      {"e2e_fro", "||W_e||_F of the end-to-end matrix W_e = W_L ... W_1", {}},
      {"e2e_spectral", "||W_e||_2", {}},
      {"grad_fro", "grad_fro.l = ||dL/dW_l||_F per layer", {}},
      {"dist_opt", "||W_e - W_*||_F to the minimum-norm least-squares solution (l2 only)", {}},
      {"time", "wall seconds since the run started", {}},
      {"loss_data", "the loss without the L2 regulariser (torch engine)", {}},
      {"reg", "the L2 regulariser lambda/2 sum_l ||W_l||_F^2 (torch engine)", {}},
      {"accuracy",
       "fraction of training samples classified right: argmax of the outputs = argmax of the "
       "targets (k = 1: equal signs) (torch engine)",
       {}},
      {"test_accuracy", "accuracy on the held-out split (torch engine)", {}},
      {"growth_mismatch",
       "growth_mismatch.l = ||d/dt(W_{l+1}^T W_{l+1}) - d/dt(W_l W_l^T)||_F with dW/dt = -grad, "
       "per adjacent pair (Basu et al.'s Conjecture 4; torch engine)",
       {}},
      {"neuron_balance",
       "neuron_balance.l = max_j |q_j(t) - q_j(0)|, q_j = ||w_in_j||^2 (+ b_j^2) - "
       "||w_out_j||^2 over the hidden units j of layer l (Du, Hu & Lee; torch engine)",
       {}},
      {"active",
       "active.l = fraction of (sample, unit) pre-activations > 0 in hidden layer l "
       "(torch engine)",
       {}},
      {"pattern_flips",
       "pattern_flips.l = fraction of (sample, unit) activations of hidden layer l that changed "
       "since the last record (torch engine)",
       {}},
      {"pattern_agreement",
       "pattern_agreement.l = fraction of same-label sample pairs whose activation patterns D_l "
       "are identical (Basu et al.'s alpha_l; torch engine)",
       {}},
      {"partial",
       "partial.l.s = ||D_{l,s} W_l||_F, the partial norm of (26) for sample s = 1 ... "
       "record.partial_samples (torch engine)",
       {}},
      {"t", "continuous time: the sum of the learning rates so far (eta * step), or flow time", {}},
      {"e2e_dev",
       "||dW_e(GD step) - dW_e(end-to-end equation)||_F / ||dW_e(GD step)||_F at the current "
       "weights",
       {}},
      {"balance_drift",
       "balance_drift.l = ||C_l(t) - C_l(0)||_F, C_l = W_{l+1}^T W_{l+1} - W_l W_l^T",
       {}},
      {"norm_gap", "max over layer pairs of | ||W_l||_F - ||W_k||_F |", {}},
      {"norm_gap_bound",
       "max over pairs of sqrt(| ||W_k(0)||_F^2 - ||W_l(0)||_F^2 |), the gap's bound under "
       "gradient flow",
       {}},
      {"basu_U",
       "Basu et al.'s U = (min_l ||W_l||_F + Delta_0)^L, Delta_0 the initial largest norm gap",
       {}},
      {"basu_bound",
       "Basu et al.'s bound (17) on U integrated from U(0): dU/dt = a L U^{2-2/L} (M - kappa_2 U), "
       "M = (2 kappa_1 + 1) ||Sigma_yx||_F",
       {"record.basu_kappa1", "record.basu_kappa2"}},
      {"mode", "mode.i = u_i^T W_e v_i for the i-th singular pair of Sigma_yx", {}},
      {"yhat_dot_err", "<Y^, E> = sum_i y^_i (y_i - y^_i), the alignment of output and error", {}},
      {"err_eig",
       "err_eig.i = <u_i, E>, the error along the i-th eigenvector of X^T X (largest first; "
       "scalar output)",
       {"record.eigs"}},
      {"kernel_rho",
       "kernel_rho.l = max over nonzero eigenvalues of |1 - eta_l c K^(l)|, the effective "
       "spectral radius of layer l's step (eta_l: AGD's adaptive rates under agd)",
       {}},
      {"kernel_eig",
       "kernel_eig.l.i = the i-th smallest eigenvalue of I - eta_l c K^(l) (scalar output, n <= "
       "64)",
       {}},
      {"theta_e", "theta_e.i = (W_e)_{1i}, the effective vector of a scalar-output net", {}},
      {"test_loss", "the loss of W_e on the held-out split", {}},
      {"margin", "min_i y_i <W_prod, x_i> / prod_k ||W_k||_F (scalar output, labels -1/+1)", {}},
      {"cos_maxmargin",
       "<W_prod, u> / ||W_prod|| with u the max-margin direction of the data (no bias)",
       {}},
      {"adj_align",
       "adj_align.l = |v_{l+1}^T u_l|, top singular vectors of adjacent layers W_l, W_{l+1}",
       {}},
      {"error", "||Y^ - Y||_F (l2 statistics path: the distance to the least-squares fit)", {}},
      {"loglog_slope",
       "loglog_slope.loss / .error: slope of log(loss) and of log ||Y^ - Y||_F against log(step) "
       "over the last record.slope_window recorded rows",
       {"record.slope_window"}},
      {"sharpness",
       "the largest eigenvalue of the Hessian of the loss with respect to all layers (Lanczos "
       "on exact Hessian-vector products, warm-started from the last record)",
       {"record.hessian_iters", "record.hessian_tol"}},
      {"hessian_eigs",
       "hessian_eigs.i = the i-th largest eigenvalue of that Hessian, i = 1 ... record.hessian_k",
       {"record.hessian_k", "record.hessian_iters", "record.hessian_tol"}},
      {"sharpness_e2e",
       "the largest eigenvalue of the Hessian of the loss with respect to W_e",
       {}},
      {"edge", "sharpness * lr / 2 (1: the edge of stability of GD at this rate)", {}},
      {"hessian_products", "Hessian-vector products the record's Lanczos took", {}},
      {"sv", "sv.l.i = the i-th largest singular value of W_l", {}},
      {"sv_e2e", "sv_e2e.i = the i-th largest singular value of W_e", {}},
      {"mode_theory",
       "mode_theory.i: Saxe's prediction of mode.i (closed form for 2 layers, the scalar mode ODE "
       "otherwise; l2, whitened inputs)",
       {}},
  };
  return registry;
}

std::unique_ptr<Probe> make_probe(const std::string& name, const ProbeOptions& options) {
  if (name == "basu_bound") return make_basu_bound(options.basu_kappa1, options.basu_kappa2);
  if (name == "loss") return std::make_unique<LossProbe>();
  if (name == "fro") return std::make_unique<Fro>();
  if (name == "spectral") return std::make_unique<Spectral>();
  if (name == "ratio") return std::make_unique<Ratio>();
  if (name == "balance") return std::make_unique<Balance>();
  if (name == "e2e_fro") return std::make_unique<E2eFro>();
  if (name == "e2e_spectral") return std::make_unique<E2eSpectral>();
  if (name == "grad_fro") return std::make_unique<GradFro>();
  if (name == "dist_opt") return std::make_unique<DistOpt>();
  if (name == "time") return std::make_unique<Time>();
  if (name == "t") return std::make_unique<ContinuousTime>();
  if (auto p = make_theory_probe(name)) return p;
  if (auto p = make_kernel_probe(name, options)) return p;
  if (name == "loglog_slope") return make_loglog_slope(options.slope_window);
  if (name == "error") return make_error_probe();
  if (auto p = make_alignment_probe(name)) return p;
  if (auto p = make_spectrum_probe(name, options)) return p;
  throw std::invalid_argument("unknown probe '" + name + "'");
}

std::string probe_unavailable(const std::string& name, const Problem& problem,
                              const std::string& optimizer_kind, bool end_to_end) {
  if (is_nonlinear_probe(name))
    return "probe '" + name + "' is measured by the torch engine (model.engine = \"torch\")";
  if (name == "e2e_dev" && (end_to_end || optimizer_kind == "flow" || optimizer_kind == "agd"))
    return "probe 'e2e_dev' compares a discrete step of the layers with the end-to-end "
           "equation; it needs optimizer.kind gd, momentum or nesterov";
  if ((name == "dist_opt" || name == "mode_theory") && !problem.has_optimum())
    return "probe '" + name + "' needs the l2 loss (p = 2)";
  if (name == "test_loss" && !problem.data().has_test())
    return "probe 'test_loss' needs a held-out split (data.test_fraction for mnist_json, "
           "data.test_path for idx)";
  if ((name == "margin" || name == "cos_maxmargin") &&
      (problem.targets() != 1 || !(problem.data().Y.array().abs() == 1.0).all()))
    return "probe '" + name + "' needs a scalar output with labels -1/+1";
  if ((name == "theta_e" || name == "err_eig" || name == "kernel_eig") && problem.targets() != 1)
    return "probe '" + name + "' is for scalar outputs (k = 1)";
  if (needs_hessian(name) && problem.loss().kind() == LossKind::kLp && problem.loss().p() < 2.0)
    return "probe '" + name +
           "' needs a loss with a bounded Hessian: lp with p >= 2, or a "
           "margin loss (|r|^p has unbounded curvature at r = 0 for p < 2)";
  if (needs_hessian(name) && name != "sharpness_e2e" && end_to_end)
    return "probe '" + name +
           "' is the Hessian in the layers of a deep net; an end-to-end run "
           "holds W_e alone (sharpness_e2e is its Hessian)";
  if (name == "edge" && optimizer_kind == "flow")
    return "probe 'edge' compares the sharpness with a step size; flow has none";
  if (name == "kernel_eig" && problem.samples() > kKernelEigMaxSamples)
    return "probe 'kernel_eig' lists the whole n x n spectrum: it needs n <= " +
           std::to_string(kKernelEigMaxSamples) + " samples (kernel_rho works at any n)";
  if ((name == "kernel_rho" || name == "kernel_eig") && (end_to_end || optimizer_kind == "flow"))
    return "probe '" + name + "' needs the layers' step sizes: a discrete optimiser on the layers";
  return {};
}

ProbeSet::ProbeSet(const std::vector<std::string>& names, StepCache& cache,
                   const ProbeOptions& options) {
  if (std::any_of(names.begin(), names.end(), needs_hessian))
    cache.enable_hessian(
        {.k = options.hessian_k, .iters = options.hessian_iters, .tol = options.hessian_tol});
  for (const auto& name : names) {
    probes_.push_back(make_probe(name, options));
    probes_.back()->bind(cache);
    const std::size_t before = columns_.size();
    probes_.back()->columns(cache.net(), columns_);
    widths_.push_back(columns_.size() - before);
  }
}

void ProbeSet::measure(const StepInfo& info, StepCache& cache, std::span<double> row) {
  std::size_t offset = 0;
  for (std::size_t i = 0; i < probes_.size(); ++i) {
    probes_[i]->measure(info, cache, row.subspan(offset, widths_[i]));
    offset += widths_[i];
  }
}

void ProbeSet::save(StateMap& state) const {
  for (std::size_t i = 0; i < probes_.size(); ++i)
    probes_[i]->save(state, "probe." + std::to_string(i + 1) + ".");
}

void ProbeSet::load(const StateMap& state) {
  for (std::size_t i = 0; i < probes_.size(); ++i)
    probes_[i]->load(state, "probe." + std::to_string(i + 1) + ".");
}

}  // namespace dln
