#include "dln/run/verify.hpp"

#include <fmt/format.h>

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <cmath>
#include <numeric>

#include "dln/core/hessian.hpp"
#include "dln/data/synthetic.hpp"
#include "dln/init/init.hpp"
#include "dln/nonlinear/torch_engine.hpp"
#include "dln/optim/agd.hpp"
#include "dln/optim/e2e.hpp"
#include "dln/rng.hpp"
#include "dln/run/trainer.hpp"

namespace dln {
namespace {

std::shared_ptr<const Dataset> mixture(int samples, int dim, int targets, double map_std,
                                       bool whitened, std::uint64_t seed = 11) {
  GaussianMixtureSpec g;
  g.samples = samples;
  g.dim = dim;
  g.targets = targets;
  g.map_std = map_std;
  g.seed = seed;
  auto data = std::make_shared<Dataset>(gaussian_mixture(g));
  if (whitened) whiten(*data);
  return data;
}

// Least-squares slope of log y against log x.
double fitted_order(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += std::log(x[i]) / n, my += std::log(y[i]) / n;
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
    sxx += (std::log(x[i]) - mx) * (std::log(x[i]) - mx);
  }
  return sxy / sxx;
}

// Symmetric PSD matrix to a real power through its eigendecomposition.
Eigen::MatrixXd matrix_power(const Eigen::MatrixXd& a, int power) {
  Eigen::MatrixXd out = Eigen::MatrixXd::Identity(a.rows(), a.cols());
  for (int i = 0; i < power; ++i) out = out * a;
  return out;
}

// Keeps every recorded row.
class Rows final : public Recorder {
 public:
  void begin(const std::vector<std::string>& columns) override { columns_ = columns; }
  void record(long, std::span<const double> row) override {
    rows.emplace_back(row.begin(), row.end());
  }
  std::size_t column(const std::string& name) const {
    return static_cast<std::size_t>(std::find(columns_.begin(), columns_.end(), name) -
                                    columns_.begin());
  }
  std::vector<std::vector<double>> rows;

 private:
  std::vector<std::string> columns_;
};

Eigen::MatrixXd balancedness(const LinearNet& net, int l) {
  Eigen::MatrixXd c;
  net.balancedness(l, c);
  return c;
}

// 1. Steinitz Lemma 2.1.
CheckResult lemma_2_1(bool quick) {
  const std::vector<std::vector<int>> shapes = {
      {5, 4, 3}, {6, 8, 5, 4}, {4, 7, 6, 9, 3}, {7, 5, 9, 6, 8, 4}};
  double worst = 0.0;
  const int seeds = quick ? 2 : 6;
  for (const auto& widths : shapes) {
    for (int seed = 1; seed <= seeds; ++seed) {
      const LinearNet net = initialize(
          widths, {.scheme = "balanced", .std = 1.0, .seed = static_cast<std::uint64_t>(seed)});
      const int N = net.depth();
      const Eigen::MatrixXd e = net.end_to_end();
      const Eigen::MatrixXd lhs1 = e.transpose() * e;
      const Eigen::MatrixXd rhs1 = matrix_power(net.layers[0].transpose() * net.layers[0], N);
      const Eigen::MatrixXd lhs2 = e * e.transpose();
      const Eigen::MatrixXd rhs2 =
          matrix_power(net.layers[N - 1] * net.layers[N - 1].transpose(), N);
      worst =
          std::max({worst, (lhs1 - rhs1).norm() / rhs1.norm(), (lhs2 - rhs2).norm() / rhs2.norm()});
    }
  }
  return {1,
          "Steinitz Lemma 2.1: W_1^T..W_N^T W_N..W_1 = (W_1^T W_1)^N and W_N..W_1 W_1^T..W_N^T = "
          "(W_N W_N^T)^N for balanced nets",
          fmt::format("balanced init, depth 2-5, rectangular widths, {} seeds each", seeds),
          fmt::format("max rel. error {:.2e}", worst),
          "< 1e-10",
          worst < 1e-10};
}

// 2. Steinitz Theorem 2.2: one-step deviation of deep GD from the end-to-end equation ~ eta^2.
CheckResult theorem_2_2(bool quick) {
  const auto data = mixture(quick ? 20 : 60, 5, 3, 0.5, false);
  double lo = 1e9, hi = -1e9;
  std::string orders;
  for (double p : {2.0, 4.0}) {
    const Problem problem(data, Loss(p, Reduction::kMean), GradientPath::kData);
    for (int N : {2, 3, 4}) {
      std::vector<int> widths = {5};
      for (int l = 1; l < N; ++l) widths.push_back(4 + l);
      widths.push_back(3);
      const LinearNet start = initialize(widths, {.scheme = "balanced", .std = 0.3, .seed = 3});
      StepCache cache;
      cache.bind(problem, start);
      const auto& g = cache.layer_gradients();
      EndToEndPreconditioner precond;
      precond.resize(3, 5, N);
      Eigen::MatrixXd predicted(3, 5);
      precond.apply(cache.end_to_end(), cache.e2e_gradient(), predicted);
      // The step scale: eta ||P|| about 1e-2 of ||W_e|| at the largest eta.
      const double base = 1e-2 * cache.end_to_end().norm() / predicted.norm();
      std::vector<double> etas, devs;
      for (double f : {1.0, 0.3, 0.1, 0.03, 0.01}) {
        const double eta = base * f;
        LinearNet net = start;
        for (int l = 0; l < N; ++l) net.layers[l] -= eta * g[l];
        const Eigen::MatrixXd e2e = cache.end_to_end() - eta * predicted;
        etas.push_back(eta);
        devs.push_back((net.end_to_end() - e2e).norm());
      }
      const double order = fitted_order(etas, devs);
      lo = std::min(lo, order);
      hi = std::max(hi, order);
      orders +=
          fmt::format("{}l{}:N{}={:.3f}", orders.empty() ? "" : " ", static_cast<int>(p), N, order);
    }
  }
  return {2,
          "Steinitz Thm 2.2: from a balanced init, one deep GD step deviates from the end-to-end "
          "equation by O(eta^2)",
          "l2 and l4, N = 2, 3, 4, eta over two decades",
          "fitted orders " + orders,
          "in [1.8, 2.2]",
          lo >= 1.8 && hi <= 2.2};
}

// 3. Basu Theorem 1: C_l conserved by gradient flow; under GD its drift scales as eta.
CheckResult theorem_1(bool quick) {
  const auto data = mixture(quick ? 30 : 100, 10, 3, 1.0, false);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  const std::vector<int> widths = {10, 6, 4, 3};
  const LinearNet start = initialize(widths, {.scheme = "glorot_normal", .seed = 5});
  auto drift = [&](const LinearNet& a, const LinearNet& b) {
    double worst = 0.0;
    for (int l = 0; l + 1 < a.depth(); ++l)
      worst = std::max(
          worst, (balancedness(a, l) - balancedness(b, l)).norm() / balancedness(a, l).norm());
    return worst;
  };
  // Gradient flow until the loss has fallen 100x.
  TrainSpec flow;
  flow.optimizer.kind = "flow";
  flow.optimizer.time = quick ? 0.5 : 2.0;
  flow.dt = flow.optimizer.time / 10;
  flow.optimizer.abs_tol = flow.optimizer.rel_tol = 1e-12;
  flow.probes = {"loss"};
  LinearNet net = start;
  const RunResult r = train(problem, net, flow, nullptr);
  const double fall = r.initial_loss / r.final_loss;
  const double flow_drift = drift(start, net);
  // GD to the same time T with eta, eta/2, eta/4.
  const double T = quick ? 0.2 : 0.5;
  std::vector<double> etas, drifts;
  for (double eta : {4e-3, 2e-3, 1e-3}) {
    TrainSpec gd;
    gd.optimizer.lr = eta;
    gd.optimizer.steps = std::lround(T / eta);
    gd.every = gd.optimizer.steps;
    gd.probes = {"loss"};
    LinearNet g = start;
    train(problem, g, gd, nullptr);
    etas.push_back(eta);
    drifts.push_back(drift(start, g));
  }
  const double order = fitted_order(etas, drifts);
  return {
      3,
      "Basu Thm 1: C_l = W_{l+1}^T W_{l+1} - W_l W_l^T is conserved by gradient flow; under GD its "
      "drift over a fixed time scales as eta",
      fmt::format(
          "Basu mixture, 10-6-4-3, Glorot init; flow to t = {} (loss fell {:.0f}x); GD to t = {}",
          flow.optimizer.time, fall, T),
      fmt::format("flow drift {:.2e}; GD order {:.3f}", flow_drift, order),
      "flow drift < 1e-8 with loss fall >= 100x; GD order in [0.8, 1.2]",
      flow_drift < 1e-8 && fall >= 100 && order >= 0.8 && order <= 1.2};
}

// 4. Basu Lemma 2 / Cor. 2.1: the norm gap stays below its initial bound.
CheckResult lemma_2(bool quick) {
  const auto data = mixture(quick ? 50 : 400, 10, 3, 1.0, false);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  LinearNet net = initialize({10, 8, 6, 4, 3}, {.scheme = "glorot_normal", .seed = 1});
  TrainSpec gd;
  gd.optimizer.lr = 1e-3;
  gd.optimizer.steps = quick ? 2000 : 10000;
  gd.every = 10;
  gd.probes = {"norm_gap", "norm_gap_bound", "loss"};
  Rows rows;
  train(problem, net, gd, &rows);
  double worst = 0.0;
  for (const auto& row : rows.rows) worst = std::max(worst, row[0]);
  const double bound = rows.rows.front()[1];
  return {4,
          "Basu Lemma 2 / Cor. 2.1: the gap between layer norms stays below its bound from the "
          "initial weights",
          fmt::format("Basu mixture, 10-8-6-4-3, Glorot init, GD eta = 1e-3, {} steps",
                      gd.optimizer.steps),
          fmt::format("max gap {:.4f} <= bound {:.4f}", worst, bound),
          "max gap <= bound",
          worst <= bound};
}

// 5. Saxe et al.: mode strengths follow the closed form.
CheckResult saxe_modes(bool quick) {
  const auto data = mixture(quick ? 50 : 100, 6, 3, 0.3, true);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  LinearNet net =
      initialize({6, 6, 3}, {.scheme = "saxe", .strength = 1e-3, .seed = 2}, &problem.sigma_yx());
  TrainSpec gd;
  gd.optimizer.lr = 1e-4;
  gd.optimizer.steps = quick ? 60000 : 150000;
  gd.every = 100;
  gd.probes = {"mode", "mode_theory"};
  Rows rows;
  train(problem, net, gd, &rows);
  const std::size_t m = rows.rows.front().size() / 2;
  double worst = 0.0;
  for (const auto& row : rows.rows)
    for (std::size_t i = 0; i < m; ++i) worst = std::max(worst, std::abs(row[i] - row[m + i]));
  std::string final_modes;
  for (std::size_t i = 0; i < m; ++i) final_modes += fmt::format(" {:.3f}", rows.rows.back()[i]);
  return {
      5,
      "Saxe et al.: with whitened inputs and a decoupled init, every mode strength follows the "
      "closed-form sigmoid",
      fmt::format(
          "whitened mixture d = 6, k = 3, 6-6-3 saxe init (strength 1e-3), GD eta = 1e-4 to t = {}",
          gd.optimizer.lr * gd.optimizer.steps),
      fmt::format("max |mode - theory| {:.2e} (final modes{})", worst, final_modes),
      "< 1e-3",
      worst < 1e-3};
}

// 6. Basu Cor. 2.4, corrected: aligned layers with unequal singular values keep
// sigma_{k,2}^2 - sigma_{k,1}^2 constant (so the ratio does not tend to 1 as claimed).
CheckResult corollary_2_4(bool quick) {
  const auto data = mixture(quick ? 50 : 100, 6, 3, 0.5, true);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  LinearNet net = initialize(
      {6, 3, 3}, {.scheme = "saxe", .strength = 0.05, .layer_gains = {2.0, 0.5}, .seed = 2},
      &problem.sigma_yx());
  auto sigmas = [&](const LinearNet& n, int k) {
    // Per-mode singular values of the aligned layers: ||W_1 v_k|| and ||W_2^T u_k||.
    return std::pair{(n.layers[0] * problem.mode_v().col(k)).norm(),
                     (n.layers[1].transpose() * problem.mode_u().col(k)).norm()};
  };
  std::vector<double> diff0, ratio0;
  for (int k = 0; k < 3; ++k) {
    const auto [s1, s2] = sigmas(net, k);
    diff0.push_back(s2 * s2 - s1 * s1);
    ratio0.push_back(s2 / s1);
  }
  TrainSpec flow;
  flow.optimizer.kind = "flow";
  flow.optimizer.time = quick ? 10.0 : 30.0;
  flow.dt = flow.optimizer.time / 10;
  flow.optimizer.abs_tol = flow.optimizer.rel_tol = 1e-12;
  flow.probes = {"loss"};
  train(problem, net, flow, nullptr);
  double worst = 0.0;
  std::string ratios;
  for (int k = 0; k < 3; ++k) {
    const auto [s1, s2] = sigmas(net, k);
    worst = std::max(worst, std::abs(s2 * s2 - s1 * s1 - diff0[k]) / std::abs(diff0[k]));
    ratios += fmt::format(" {:.3f}->{:.3f}", ratio0[k], s2 / s1);
  }
  return {
      6,
      "Basu Cor. 2.4 as derived again: with V_{l+1} = U_l and unequal singular values, "
      "sigma_{k,l+1}^2 - sigma_{k,l}^2 is conserved, so sigma_{k,l+1}/sigma_{k,l} tends to 1 only "
      "when that difference is 0 (the paper's 'ratio -> 1' does not hold in general)",
      fmt::format(
          "whitened mixture, 6-3-3 saxe init with layer gains (2, 0.5), gradient flow to t = {}",
          flow.optimizer.time),
      fmt::format("rel. change of the difference {:.2e}; ratios{}", worst, ratios),
      "< 1e-8",
      worst < 1e-8};
}

// 7. From a balanced init, e2e and deep GD agree to O(eta).
CheckResult e2e_vs_deep(bool quick) {
  const auto data = mixture(quick ? 30 : 100, 8, 3, 1.0, false);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  const std::vector<int> widths = {8, 6, 5, 3};
  const LinearNet start = initialize(widths, {.scheme = "balanced", .std = 0.1, .seed = 4});
  const double T = quick ? 0.3 : 1.0;
  std::vector<double> gaps;
  std::string text;
  for (double eta : {2e-3, 1e-3, 5e-4}) {
    TrainSpec spec;
    spec.optimizer.lr = eta;
    spec.optimizer.steps = std::lround(T / eta);
    spec.every = spec.optimizer.steps;
    spec.probes = {"loss"};
    LinearNet deep = start;
    train(problem, deep, spec, nullptr);
    LinearNet e2e({widths.front(), widths.back()});
    e2e.layers[0] = start.end_to_end();
    spec.optimizer.kind = "e2e";
    spec.optimizer.depth = 3;
    train(problem, e2e, spec, nullptr);
    gaps.push_back((deep.end_to_end() - e2e.layers[0]).norm());
    text += fmt::format("{}eta={:g}: {:.3e}", text.empty() ? "" : ", ", eta, gaps.back());
  }
  const double r1 = gaps[0] / gaps[1], r2 = gaps[1] / gaps[2];
  return {7,
          "From a balanced init, the e2e trajectory and deep GD's end-to-end trajectory agree to "
          "O(eta)",
          fmt::format(
              "Basu mixture, 8-6-5-3 balanced init, gap ||W_e(deep) - W_e(e2e)||_F at t = {}", T),
          fmt::format("{}; halving ratios {:.3f}, {:.3f}", text, r1, r2),
          "ratios in [1.6, 2.4]",
          r1 >= 1.6 && r1 <= 2.4 && r2 >= 1.6 && r2 <= 2.4};
}

// 8. AGD paper, Theorem 1: every sub-step of AGD is Equation (4) or (6), and a whole step
// contracts the error towards the least-squares fit at least as fast as shallow GD, (8).
CheckResult agd_theorem_1(bool quick) {
  const int steps = quick ? 40 : 200;
  double worst_eq = 0.0, worst_ratio = 0.0;
  std::string settings;
  Rng rng(5);
  for (auto [d, n] : {std::pair{2, 2}, {6, 15}, {15, 6}}) {
    auto data = std::make_shared<Dataset>();
    if (d == 2) {
      *data = toy_diagonal({1.0, 0.01}, {1.0, 1.0});
    } else {
      // Unwhitened inputs with spread-out scales, labels in [-1, 1].
      data->X = rng.normal_matrix(d, n);
      for (int i = 0; i < d; ++i) data->X.row(i) *= std::pow(0.5, i);
      data->Y = rng.normal_matrix(1, n).array().tanh().matrix();
    }
    const Problem problem(data, Loss(2.0, Reduction::kMean));
    const Eigen::MatrixXd& X = data->X;
    const Eigen::RowVectorXd Y = data->Y.row(0);
    const double nn = static_cast<double>(n);
    const Eigen::MatrixXd K = X.transpose() * X / nn;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(K);
    const double top = eig.eigenvalues().maxCoeff();
    const double eta = 1.5 / top;  // stable for shallow GD: eta * lambda_max < 2
    double rho = 0.0;
    for (Eigen::Index i = 0; i < eig.eigenvalues().size(); ++i)
      if (eig.eigenvalues()(i) > 1e-12 * top)
        rho = std::max(rho, std::abs(1.0 - eta * eig.eigenvalues()(i)));
    // Y_sol: the projection of Y on the row space of X (Y itself when n <= d).
    const Eigen::RowVectorXd y_sol =
        n > d
            ? Eigen::RowVectorXd(
                  (X.transpose() * (X * X.transpose()).ldlt().solve(X * Y.transpose())).transpose())
            : Y;
    for (int depth : {2, 4}) {
      std::vector<int> widths = {d};
      for (int l = 0; l < depth; ++l) widths.push_back(1);
      LinearNet net = initialize(widths, {.scheme = "agd"});
      StepCache cache;
      cache.bind(problem, net);
      AlignedGd agd;
      agd.reset(net, problem);
      Eigen::RowVectorXd e_prev, yhat_prev;
      agd.on_substep = [&](int sub, const LinearNet& now) {
        const Eigen::RowVectorXd yhat = now.predict(X).row(0);
        const Eigen::RowVectorXd e = Y - yhat;
        const Eigen::RowVectorXd want =
            sub == 1 ? Eigen::RowVectorXd(e_prev - eta * (K * e_prev.transpose()).transpose())
                     : Eigen::RowVectorXd(e_prev - (yhat_prev.dot(e_prev) / (2 * nn)) * yhat_prev);
        worst_eq = std::max(worst_eq, (e - want).norm() / std::max(1.0, e_prev.norm()));
        e_prev = e;
        yhat_prev = yhat;
      };
      for (int t = 0; t < steps; ++t) {
        yhat_prev = net.predict(X).row(0);
        e_prev = Y - yhat_prev;
        const double before = (y_sol - yhat_prev).norm();
        agd.step(cache, net, eta);
        const double after = (y_sol - net.predict(X).row(0)).norm();
        if (before > 1e-9) worst_ratio = std::max(worst_ratio, after / (rho * before));
      }
    }
    settings += fmt::format("{}d={}, n={}", settings.empty() ? "" : "; ", d, n);
  }
  return {8,
          "AGD (Algorithm 1): each sub-step is Eq. (4) or (6), and ||E_sol|| shrinks at least by "
          "rho_eff(I - eta/n X^T X) per step, Eq. (8)",
          settings + "; depth 2 and 4; eta = 1.5 / lambda_max(X^T X / n)",
          fmt::format("max deviation from (4)/(6) {:.1e}; max ||E_sol(t+1)|| / (rho_eff "
                      "||E_sol(t)||) {:.4f}",
                      worst_eq, worst_ratio),
          "deviation < 1e-12, ratio <= 1",
          worst_eq < 1e-12 && worst_ratio <= 1.0};
}

// 9. Hou et al.'s Lemma 2.1: GD on l_p regression (p > 2) converges as t^{-1/(p-2)}, for the
// shallow model and the scalar-depth model s M alike.
CheckResult lp_rate(bool quick) {
  const auto data = std::make_shared<const Dataset>(toy_lp(1.0, 0.25));
  const long steps = quick ? 40000 : 200000;
  double worst = 0.0;
  std::string text;
  for (double p : {4.0, 6.0}) {
    const Problem problem(data, Loss(p, Reduction::kMean));
    for (const std::vector<int>& widths : {std::vector<int>{2, 1}, std::vector<int>{2, 1, 1}}) {
      InitSpec init{.scheme = "constant"};
      init.values = {widths.size() == 2 ? 0.0 : 0.1};
      LinearNet net = initialize(widths, init);
      TrainSpec spec;
      spec.optimizer.lr = 1.0;
      spec.optimizer.steps = steps;
      spec.every = steps / 50;
      spec.probes = {"loglog_slope"};
      spec.probe_options.slope_window = 10;  // the last fifth of the run
      Rows rows;
      train(problem, net, spec, &rows);
      const double slope = rows.rows.back()[rows.column("loglog_slope.error")];
      const double want = -1.0 / (p - 2.0);
      worst = std::max(worst, std::abs(slope - want));
      text += fmt::format("{}p={:g} {}: {:.4f} (theory {:.4f})", text.empty() ? "" : ", ", p,
                          widths.size() == 2 ? "shallow" : "s M", slope, want);
    }
  }
  return {9,
          "l_p regression (Hou et al., Lemma 2.1): the error falls as t^{-1/(p-2)} for the "
          "shallow and the scalar-depth model",
          fmt::format("toy.lp (y = 1, 0.25), GD at eta = 1 for {} steps, slope of log "
                      "||Y^ - Y|| against log t over the last fifth",
                      steps),
          text,
          "every slope within 0.05 of -1/(p-2)",
          worst <= 0.05};
}

std::shared_ptr<const Dataset> separable_plane() {
  return std::make_shared<const Dataset>(separable(20, 2, 0.3, derive_seed(3, "data")));
}

// 10. Ji & Telgarsky: GD on separable data with the logistic loss aligns the layers (each
// tends to rank one, adjacent singular vectors align) and W_prod with the max-margin direction.
CheckResult layer_alignment(bool quick) {
  const Problem problem(separable_plane(), Loss::margin(LossKind::kLogistic, Reduction::kMean));
  const std::vector<int> widths = {2, 4, 4, 4, 1};
  LinearNet net = initialize(widths, {.scheme = "normal", .std = 0.05, .seed = 3});
  TrainSpec spec;
  spec.optimizer.lr = 0.1;
  spec.optimizer.steps = quick ? 200000 : 1000000;
  spec.every = spec.optimizer.steps;
  spec.probes = {"loss", "ratio", "adj_align", "cos_maxmargin"};
  Rows rows;
  train(problem, net, spec, &rows);
  const auto& last = rows.rows.back();
  double low_ratio = 1.0, low_adj = 1.0;
  std::string ratios, adj;
  for (int l = 1; l <= 4; ++l) {
    const double r = last[rows.column("ratio." + std::to_string(l))];
    low_ratio = std::min(low_ratio, r);
    ratios += fmt::format("{}{:.4f}", ratios.empty() ? "" : ", ", r);
    if (l < 4) {
      const double a = last[rows.column("adj_align." + std::to_string(l))];
      low_adj = std::min(low_adj, a);
      adj += fmt::format("{}{:.5f}", adj.empty() ? "" : ", ", a);
    }
  }
  const double cosine = last[rows.column("cos_maxmargin")];
  return {10,
          "Ji & Telgarsky: on separable data GD aligns the layers (||W_k||_2 / ||W_k||_F -> 1, "
          "|v_{k+1}^T u_k| -> 1) and W_prod with the max-margin direction",
          fmt::format("40 separable points in the plane, logistic loss, 2-4-4-4-1 from N(0, "
                      "0.05^2), GD at eta = 0.1 for {} steps",
                      spec.optimizer.steps),
          fmt::format("ratios {}; adjacent alignment {}; cos_maxmargin {:.6f}; risk {:.2e}", ratios,
                      adj, cosine, last[rows.column("loss")]),
          "every ratio, alignment and the cosine > 0.99",
          low_ratio > 0.99 && low_adj > 0.99 && cosine > 0.99};
}

// 11. Under the step size of Ji & Telgarsky's Assumption 3.5 the risk falls at every step.
CheckResult adaptive_step_risk(bool quick) {
  const Problem problem(separable_plane(), Loss::margin(LossKind::kLogistic, Reduction::kMean));
  LinearNet net = initialize({2, 4, 1}, {.scheme = "normal", .std = 0.05, .seed = 3});
  TrainSpec spec;
  spec.optimizer.lr = 1.0;  // the cap of min(1 / beta(R_t), 1)
  spec.optimizer.schedule.kind = "ji_telgarsky";
  spec.optimizer.steps = quick ? 50000 : 200000;
  spec.every = 1;
  spec.probes = {"loss"};
  Rows rows;
  train(problem, net, spec, &rows);
  long rises = 0;
  for (std::size_t t = 1; t < rows.rows.size(); ++t) rises += rows.rows[t][0] > rows.rows[t - 1][0];
  const double first = rows.rows.front()[0], final = rows.rows.back()[0];
  return {11,
          "Ji & Telgarsky, Assumption 3.5: with eta_t = min(1 / beta(R_t), 1) the risk falls at "
          "every step towards 0",
          fmt::format("the separable set of check 10, logistic loss, 2-4-1 from N(0, 0.05^2), {} "
                      "steps",
                      spec.optimizer.steps),
          fmt::format("{} rises; risk {:.4f} -> {:.2e} ({:.1e} of the start)", rises, first, final,
                      final / first),
          "no rise, final risk < 2% of the initial",
          rises == 0 && final < 0.02 * first};
}

// --- ReLU nets (the torch engine) -----------------------------------------------------------

// A bias-free ReLU MLP on the torch engine (float64, l2 loss, mean, GD), recorded into `rows`.
RunResult relu_run(const Dataset& data, const std::vector<int>& widths,
                   const std::vector<Eigen::MatrixXd>& init, double lr, long steps, long every,
                   const std::vector<std::string>& probes, Rows& rows,
                   const std::string& activation = "relu") {
  TorchRunArgs a;
  a.data = &data;
  a.widths = widths;
  a.layers = arch_layers("mlp", widths);
  a.model.engine = "torch";
  a.model.activation = activation;
  a.train.optimizer.lr = lr;
  a.train.optimizer.steps = steps;
  a.train.every = every;
  a.train.probes = probes;
  a.train.stop.diverge_factor = 1e300;
  a.init = init;
  a.recorder = &rows;
  auto session = make_torch_session(a);
  session->advance(steps);
  return session->finish();
}

CheckResult no_engine(int id, const std::string& claim, const std::string& why) {
  return {id, claim, "", "no nonlinear engine: " + why, "the torch engine", false};
}

// 12. A ReLU net whose units all stay active is the linear net: the torch engine's trajectory
// equals the native engine's.
CheckResult relu_all_active(bool quick) {
  const std::string claim =
      "a ReLU MLP whose activations all stay on (positive data and weights) follows the linear "
      "net's GD trajectory: the torch engine equals the native engine";
  if (auto why = torch_engine_unavailable(); !why.empty()) return no_engine(12, claim, why);
  Rng rng(5);
  const int n = 40, d = 5;
  const std::vector<int> widths = {d, 6, 4, 3};
  auto data = std::make_shared<Dataset>();
  data->X.resize(d, n);
  for (Eigen::Index i = 0; i < data->X.size(); ++i) data->X.data()[i] = rng.uniform(0.5, 1.5);
  LinearNet net = initialize(widths, {.scheme = "normal", .std = 0.3, .seed = 7});
  for (auto& w : net.layers) w = w.cwiseAbs();
  // Targets 20% above the initial outputs: the layers grow and stay positive.
  data->Y = 1.2 * net.end_to_end() * data->X;
  const long steps = quick ? 200 : 1000;
  Rows relu;
  relu_run(*data, widths, net.layers, 0.01, steps, 10, {"loss", "fro", "active"}, relu);
  const Problem problem(data, Loss(2.0, Reduction::kMean), GradientPath::kData);
  TrainSpec spec;
  spec.optimizer.lr = 0.01;
  spec.optimizer.steps = steps;
  spec.every = 10;
  spec.probes = {"loss", "fro"};
  Rows linear;
  LinearNet trained = net;
  train(problem, trained, spec, &linear);
  double worst = 0.0, least_active = 1.0;
  for (std::size_t r = 0; r < linear.rows.size() && r < relu.rows.size(); ++r) {
    for (std::size_t c = 0; c < linear.rows[r].size(); ++c)
      worst = std::max(worst,
                       std::abs(relu.rows[r][c] - linear.rows[r][c]) / std::abs(linear.rows[r][c]));
    for (std::size_t c = linear.rows[r].size(); c < relu.rows[r].size(); ++c)
      least_active = std::min(least_active, relu.rows[r][c]);
  }
  const bool same_rows = linear.rows.size() == relu.rows.size();
  return {12,
          claim,
          fmt::format("5-6-4-3, 40 samples in [0.5, 1.5]^5, |N(0, 0.3^2)| init, targets 1.2 x the "
                      "initial outputs, GD at eta = 0.01 for {} steps, float64",
                      steps),
          fmt::format("largest relative difference of loss and layer norms over {} records "
                      "{:.2e}; smallest active fraction {:.3f}",
                      relu.rows.size(), worst, least_active),
          "< 1e-12 with every unit active",
          same_rows && worst < 1e-12 && least_active == 1.0};
}

// Random data and a bias-free ReLU net's initial layers for checks 13 and 14.
std::shared_ptr<Dataset> relu_data(int n, int d, int k, std::uint64_t seed) {
  Rng rng(seed);
  auto data = std::make_shared<Dataset>();
  data->X = rng.normal_matrix(d, n);
  data->Y = rng.normal_matrix(k, n);
  return data;
}

// 13. Du, Hu & Lee (2018): under gradient flow a bias-free ReLU net conserves
// ||w_in_j||^2 - ||w_out_j||^2 at every hidden unit j; GD drifts by O(eta) over a fixed time.
CheckResult du_hu_lee(bool quick) {
  const std::string claim =
      "Du, Hu & Lee: gradient flow on a bias-free ReLU net conserves ||w_in_j||^2 - "
      "||w_out_j||^2 for every hidden unit; GD's drift over a fixed time shrinks like eta";
  if (auto why = torch_engine_unavailable(); !why.empty()) return no_engine(13, claim, why);
  const auto data = relu_data(quick ? 30 : 100, 6, 2, 3);
  const std::vector<int> widths = {6, 10, 8, 2};
  const LinearNet net = initialize(widths, {.scheme = "glorot_normal", .seed = 4});
  const double time = 1.0;
  std::vector<double> etas, drifts;
  std::string text;
  for (double eta : {0.04, 0.02, 0.01, 0.005}) {
    Rows rows;
    const long steps = std::lround(time / eta);
    relu_run(*data, widths, net.layers, eta, steps, steps, {"neuron_balance"}, rows);
    const auto& last = rows.rows.back();
    const double drift = std::max(last[0], last[1]);
    etas.push_back(eta);
    drifts.push_back(drift);
    text += fmt::format("{}{:.2e}", text.empty() ? "" : ", ", drift);
  }
  const double order = fitted_order(etas, drifts);
  return {13,
          claim,
          fmt::format("6-10-8-2 ReLU, Glorot init, {} Gaussian samples, l2 loss, GD to t = 1 at "
                      "eta = 0.04, 0.02, 0.01, 0.005",
                      data->samples()),
          fmt::format("largest per-unit drift {}; fitted order {:.3f}", text, order),
          "order in [0.9, 1.1]",
          order > 0.9 && order < 1.1};
}

// 14. Basu et al.'s (26), as dln derives it (docs/theory.md#relu-nets): with the activation
// patterns frozen, sample i's gradient flow keeps D_l W_{l+1}^T D_{l+1} W_{l+1} D_l and
// D_l W_l W_l^T D_l growing at the same rate; (29): summed over samples whose patterns differ,
// the layers' growth rates do not match. Computed here in Eigen, independently of the engine,
// whose growth_mismatch probe must agree.
CheckResult basu_26(bool quick) {
  const std::string claim =
      "Basu et al. (26): with D frozen, sample i's flow gives d/dt(D_l W_{l+1}^T D_{l+1} W_{l+1} "
      "D_l) = d/dt(D_l W_l W_l^T D_l); (29): over samples with different patterns, "
      "d/dt(W_{l+1}^T W_{l+1}) - d/dt(W_l W_l^T) != 0";
  if (auto why = torch_engine_unavailable(); !why.empty()) return no_engine(14, claim, why);
  const int n = quick ? 20 : 60;
  const auto data = relu_data(n, 5, 3, 8);
  const std::vector<int> widths = {5, 7, 6, 3};
  const LinearNet net = initialize(widths, {.scheme = "glorot_normal", .seed = 9});
  const int L = net.depth();
  std::vector<Eigen::MatrixXd> total(L);  // the mean gradient over samples
  for (int l = 0; l < L; ++l) total[l] = Eigen::MatrixXd::Zero(widths[l + 1], widths[l]);
  // The closed form of (29) derived in docs/theory.md#relu-nets: the mismatch at hidden layer l
  // is (1/n) sum_i [(d_b - d_a)(z_a u_b - u_a z_b)]_{ab}, z = W_l h_{l-1} the pre-activation,
  // u = W_{l+1}^T delta_{l+1} the gradient reaching it, d the pattern.
  std::vector<Eigen::MatrixXd> closed(L - 1);
  for (int l = 0; l + 1 < L; ++l) closed[l] = Eigen::MatrixXd::Zero(widths[l + 1], widths[l + 1]);
  double identity = 0.0, literal = 0.0;
  for (int i = 0; i < n; ++i) {
    // Forward: h_0 = x, z_l = W_l h_{l-1}, h_l = relu(z_l) below the top, D_l = [z_l > 0].
    std::vector<Eigen::VectorXd> h = {data->X.col(i)}, mask, pre;
    for (int l = 0; l < L; ++l) {
      Eigen::VectorXd z = net.layers[l] * h.back();
      pre.push_back(z);
      if (l + 1 < L) {
        mask.push_back((z.array() > 0).cast<double>());
        z = z.cwiseProduct(mask.back());
      }
      h.push_back(z);
    }
    // Backward for l_i = 1/2 ||out - y_i||^2: delta_L = out - y, delta_l = D_l W_{l+1}^T
    // delta_{l+1}; G_l = delta_l h_{l-1}^T.
    std::vector<Eigen::MatrixXd> g(L);
    Eigen::VectorXd delta = h.back() - data->Y.col(i);
    for (int l = L - 1; l >= 0; --l) {
      g[l] = delta * h[l].transpose();
      total[l] += g[l] / n;
      if (l > 0) {
        const Eigen::VectorXd u = net.layers[l].transpose() * delta;
        const Eigen::VectorXd& z = pre[l - 1];
        const Eigen::VectorXd& d = mask[l - 1];
        for (Eigen::Index a = 0; a < z.size(); ++a)
          for (Eigen::Index b = 0; b < z.size(); ++b)
            closed[l - 1](a, b) += (d(b) - d(a)) * (z(a) * u(b) - u(a) * z(b)) / n;
        delta = u.cwiseProduct(d);
      }
    }
    // The rates along dW/dt = -G, at each hidden layer l (between W_l and W_{l+1}).
    for (int l = 0; l + 1 < L; ++l) {
      const Eigen::MatrixXd D = mask[l].asDiagonal();
      const Eigen::MatrixXd Dup = l + 2 < L
                                      ? Eigen::MatrixXd(mask[l + 1].asDiagonal())
                                      : Eigen::MatrixXd::Identity(widths[l + 2], widths[l + 2]);
      const Eigen::MatrixXd& W = net.layers[l];
      const Eigen::MatrixXd& V = net.layers[l + 1];
      const Eigen::MatrixXd upper =
          -(g[l + 1].transpose() * Dup * V + V.transpose() * Dup * g[l + 1]);
      const Eigen::MatrixXd lower = -D * (g[l] * W.transpose() + W * g[l].transpose()) * D;
      const double scale = lower.norm() + (D * upper * D).norm();
      if (scale == 0) continue;
      identity = std::max(identity, (D * upper * D - lower).norm() / scale);
      literal = std::max(literal, (upper - lower).norm() / scale);
    }
  }
  // (29): the whole batch's rates, and the engine's growth_mismatch at the same weights.
  std::vector<double> mismatch, relative;
  double closed_form = 0.0;
  for (int l = 0; l + 1 < L; ++l) {
    const Eigen::MatrixXd& W = net.layers[l];
    const Eigen::MatrixXd& V = net.layers[l + 1];
    const Eigen::MatrixXd up = -(total[l + 1].transpose() * V + V.transpose() * total[l + 1]);
    const Eigen::MatrixXd low = -(total[l] * W.transpose() + W * total[l].transpose());
    mismatch.push_back((up - low).norm());
    closed_form = std::max(closed_form, (up - low - closed[l]).norm() / (up - low).norm());
    relative.push_back(mismatch.back() / up.norm());
  }
  Rows rows;
  relu_run(*data, widths, net.layers, 1e-3, 0, 1, {"growth_mismatch", "pattern_agreement"}, rows);
  double engine = 0.0;
  for (std::size_t l = 0; l < mismatch.size(); ++l)
    engine = std::max(engine, std::abs(rows.rows[0][l] - mismatch[l]) / mismatch[l]);
  const double least = *std::min_element(relative.begin(), relative.end());
  return {14,
          claim,
          fmt::format("5-7-6-3 ReLU, Glorot init, {} Gaussian samples with 3 outputs, l2 loss, "
                      "per-sample gradients computed by hand in Eigen",
                      n),
          fmt::format("per-sample identity: largest relative residual {:.2e} (the paper's form "
                      "without the D_l mask on W_{{l+1}}: {:.2e}); (29): relative mismatch {:.3f}, "
                      "{:.3f}, equal to its closed form to {:.1e}; the engine's growth_mismatch "
                      "agrees to {:.1e}",
                      identity, literal, relative[0], relative[1], closed_form, engine),
          "identity < 1e-12, mismatch > 1e-3, closed form and engine agree to 1e-10",
          identity < 1e-12 && least > 1e-3 && closed_form < 1e-10 && engine < 1e-10};
}

// A balanced factorisation of E (k x d) with these widths: E = U S V^T (thin, rank r), W_1 =
// Q_2 S^{1/L} V^T, W_l = Q_{l+1} S^{1/L} Q_l^T, W_L = U S^{1/L} Q_L^T, Q_l (n_l x r) with
// orthonormal columns, Haar-distributed from a seeded stream.
LinearNet balanced_factors(const Eigen::MatrixXd& E, const std::vector<int>& widths,
                           std::uint64_t seed) {
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(E, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::Index r = svd.singularValues().size();
  const int L = static_cast<int>(widths.size()) - 1;
  const Eigen::VectorXd root = svd.singularValues().array().pow(1.0 / L).matrix();
  Rng rng(seed);
  std::vector<Eigen::MatrixXd> Q(widths.size());
  Q[0] = svd.matrixV();
  Q[L] = svd.matrixU();
  for (int l = 1; l < L; ++l) Q[l] = rng.orthonormal_columns(widths[l], r);
  LinearNet net(widths);
  for (int l = 0; l < L; ++l) net.layers[l] = Q[l + 1] * root.asDiagonal() * Q[l].transpose();
  return net;
}

// 15. The sharpness at a balanced minimum of l2 regression in closed form.
CheckResult balanced_sharpness(bool quick) {
  (void)quick;
  // (a) Whitened inputs (Sigma_xx = I), mean l2: at a balanced factorisation of the
  // least-squares W_*, the Hessian's top eigenvalue is L sigma_1(W_*)^{2 - 2/L}.
  std::string text;
  double worst = 0.0, gradient = 0.0;
  const auto whitened = mixture(200, 6, 3, 1.0, true, 21);
  const Problem wp(whitened, Loss(2.0, Reduction::kMean));
  const double s1 = Eigen::JacobiSVD<Eigen::MatrixXd>(wp.optimum()).singularValues()(0);
  for (const std::vector<int>& widths :
       {std::vector<int>{6, 5, 3}, std::vector<int>{6, 4, 4, 3}, std::vector<int>{6, 3, 5, 4, 3}}) {
    LinearNet net = balanced_factors(wp.optimum(), widths, 3);
    StepCache cache;
    cache.bind(wp, net);
    cache.enable_hessian({.k = 1, .iters = 200, .tol = 1e-12});
    const int L = net.depth();
    const double want = L * std::pow(s1, 2.0 - 2.0 / L);
    const double got = cache.hessian_top()(0);
    worst = std::max(worst, std::abs(got - want) / want);
    for (const auto& g : cache.layer_gradients()) gradient = std::max(gradient, g.norm());
    text += fmt::format("{}L = {}: {:.10g} vs {:.10g}", text.empty() ? "" : ", ", L, got, want);
  }
  // (b) Unwhitened inputs, two layers: H = J^* H_e J with J(V_1, V_2) = W_2 V_1 + V_2 W_1 and
  // H_e[D] = D Sigma_xx, whose nonzero spectrum is that of Sigma (x) A + C (x) I (A = U S U^T,
  // C = Sigma^{1/2} V S V^T Sigma^{1/2}), a dense kd x kd eigenproblem solved here by Eigen.
  const auto raw = mixture(200, 6, 3, 1.0, false, 22);
  const Problem rp(raw, Loss(2.0, Reduction::kMean));
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(rp.optimum(), Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::MatrixXd A =
      svd.matrixU() * svd.singularValues().asDiagonal() * svd.matrixU().transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> se(rp.sigma_xx());
  const Eigen::MatrixXd root = se.operatorSqrt();
  const Eigen::MatrixXd C =
      root * svd.matrixV() * svd.singularValues().asDiagonal() * svd.matrixV().transpose() * root;
  const Eigen::Index k = A.rows(), d = C.rows();
  Eigen::MatrixXd M = Eigen::MatrixXd::Zero(k * d, k * d);
  for (Eigen::Index a = 0; a < d; ++a)
    for (Eigen::Index b = 0; b < d; ++b) {
      M.block(a * k, b * k, k, k) = rp.sigma_xx()(a, b) * A;
      M.block(a * k, b * k, k, k).diagonal().array() += C(a, b);
    }
  const double dense = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(M).eigenvalues().maxCoeff();
  LinearNet net = balanced_factors(rp.optimum(), {6, 5, 3}, 4);
  StepCache cache;
  cache.bind(rp, net);
  cache.enable_hessian({.k = 1, .iters = 200, .tol = 1e-12});
  const double got = cache.hessian_top()(0);
  const double unwhitened = std::abs(got - dense) / dense;
  for (const auto& g : cache.layer_gradients()) gradient = std::max(gradient, g.norm());
  return {15,
          "At a balanced minimum of l2 regression the sharpness has a closed form: L "
          "sigma_1(W_*)^{2-2/L} with whitened inputs; with raw inputs (two layers) the top "
          "eigenvalue of Sigma_xx (x) U S U^T + Sigma^{1/2} V S V^T Sigma^{1/2} (x) I",
          "Basu mixture d = 6, k = 3, n = 200, balanced factorisations of the least-squares "
          "W_* (gradient 0), the sharpness probe's Lanczos at tolerance 1e-12",
          fmt::format("whitened: {} (largest relative error {:.1e}); raw, 6-5-3: {:.10g} vs the "
                      "dense Kronecker form {:.10g} ({:.1e}); largest gradient {:.1e}",
                      text, worst, got, dense, unwhitened, gradient),
          "relative errors < 1e-9",
          worst < 1e-9 && unwhitened < 1e-9};
}
}  // namespace

const std::vector<VerifyCheck>& verify_checks() {
  static const std::vector<VerifyCheck> checks = {
      {1, "steinitz-lemma-2.1", lemma_2_1},
      {2, "steinitz-theorem-2.2", theorem_2_2},
      {3, "basu-theorem-1", theorem_1},
      {4, "basu-lemma-2", lemma_2},
      {5, "saxe-modes", saxe_modes},
      {6, "basu-corollary-2.4", corollary_2_4},
      {7, "e2e-vs-deep-gd", e2e_vs_deep},
      {8, "agd-theorem-1", agd_theorem_1},
      {9, "hou-lp-rate", lp_rate},
      {10, "ji-telgarsky-alignment", layer_alignment},
      {11, "ji-telgarsky-adaptive-step", adaptive_step_risk},
      {12, "relu-all-active", relu_all_active},
      {13, "du-hu-lee", du_hu_lee},
      {14, "basu-26", basu_26},
      {15, "balanced-sharpness", balanced_sharpness},
  };
  return checks;
}

std::vector<CheckResult> verify(bool quick, int only) {
  std::vector<CheckResult> results;
  for (const auto& check : verify_checks())
    if (only == 0 || only == check.id) results.push_back(check.run(quick));
  return results;
}

}  // namespace dln
