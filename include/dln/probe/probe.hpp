// Probes: named groups of metric columns measured from the step cache when a step is
// recorded. A probe declares its columns up front, sizes its buffers in bind(), and neither
// allocates nor writes files in measure(). Formulas: docs/metrics.md.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dln/core/state_map.hpp"
#include "dln/core/step_cache.hpp"
#include "dln/registry.hpp"

namespace dln {

// What a step tells its observers.
struct StepInfo {
  long step = 0;      // steps taken so far
  double time = 0.0;  // wall seconds since the run started
  double lr = 0.0;    // learning rate of the next step (flow: the record interval)
  double t = 0.0;     // continuous time: the sum of the learning rates so far, or flow time
};

class Probe {
 public:
  virtual ~Probe() = default;
  // Column names for this net (and, after bind, this problem), appended to `out`.
  virtual void columns(const LinearNet& net, std::vector<std::string>& out) const = 0;
  // Sizes any buffers; called once, before columns() and the first measure().
  virtual void bind(const StepCache&) {}
  // Writes exactly as many values as columns() named.
  virtual void measure(const StepInfo& info, StepCache& cache, std::span<double> out) = 0;
  // What a probe carries from one record to the next (an integrated ODE, a window of rows),
  // for checkpoints; what bind() takes from the initial weights is bound again on resuming.
  virtual void save(StateMap& /*state*/, const std::string& /*prefix*/) const {}
  virtual void load(const StateMap& /*state*/, const std::string& /*prefix*/) {}
};

// Settings some probes take from the config.
struct ProbeOptions {
  double basu_kappa1 = 1.0;  // basu_bound: Basu et al.'s kappa_1 and kappa_2 (Theorem 3)
  double basu_kappa2 = 0.0;
  int eigs = 2;                  // err_eig: leading eigen-directions of X^T X
  int slope_window = 20;         // loglog_slope: recorded rows in the fit
  int hessian_k = 1;             // hessian_eigs: eigenvalues recorded
  int hessian_iters = 100;       // Lanczos iterations (vectors kept) at most
  double hessian_tol = 1e-10;    // Lanczos residual tolerance, relative to the top eigenvalue
  std::string optimizer = "gd";  // the optimiser's kind: kernel probes use its layer rates
};

const Registry& probe_registry();
// Throws std::invalid_argument for an unknown name.
std::unique_ptr<Probe> make_probe(const std::string& name, const ProbeOptions& options = {});
// Why a probe cannot run on this problem with this optimiser (empty if it can): dist_opt and
// mode_theory need the l2 loss, e2e_dev a discrete optimiser on the layers, test_loss a
// held-out split, and so on.
std::string probe_unavailable(const std::string& name, const Problem& problem,
                              const std::string& optimizer_kind = "gd", bool end_to_end = false);

// The probes a config asks for, as one row of columns.
class ProbeSet {
 public:
  // Enables the cache's Hessian when a probe needs it.
  ProbeSet(const std::vector<std::string>& names, StepCache& cache,
           const ProbeOptions& options = {});
  const std::vector<std::string>& columns() const { return columns_; }
  void measure(const StepInfo& info, StepCache& cache, std::span<double> row);
  void save(StateMap& state) const;
  void load(const StateMap& state);

 private:
  std::vector<std::unique_ptr<Probe>> probes_;
  std::vector<std::size_t> widths_;
  std::vector<std::string> columns_;
};

}  // namespace dln
