// The step loop: optimiser step, due probes, stop rules. Knows nothing of files or configs;
// recorded rows go to a Recorder.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "dln/core/problem.hpp"
#include "dln/model/linear_net.hpp"
#include "dln/optim/optimizer.hpp"
#include "dln/probe/probe.hpp"

namespace dln {

enum class RunStatus { kCompleted, kConverged, kDiverged };
const char* status_name(RunStatus status);

struct StopSpec {
  double loss = 0.0;             // converged below this loss (0: never)
  double diverge_factor = 1e12;  // diverged above factor x initial loss, or non-finite
};

struct TrainSpec {
  OptimizerSpec optimizer;
  long every = 1;   // record every this many steps (and the last step)
  double dt = 0.0;  // continuous-time optimisers: the time between records
  std::vector<std::string> probes;
  ProbeOptions probe_options;
  StopSpec stop;
  int threads = 1;  // threads for the large passes over the data; the numbers do not depend on it
};

class Recorder {
 public:
  virtual ~Recorder() = default;
  virtual void begin(const std::vector<std::string>& columns) = 0;
  // Called with the probes' row after step `step` (0 is the initial state). Must not allocate.
  virtual void record(long step, std::span<const double> row) = 0;
};

struct RunResult {
  RunStatus status = RunStatus::kCompleted;
  long steps = 0;        // steps taken
  double seconds = 0.0;  // wall time of the step loop
  double initial_loss = 0.0;
  double final_loss = 0.0;
  double time = 0.0;     // continuous time reached: the sum of learning rates, or flow time
  long evaluations = 0;  // right-hand-side evaluations of an ODE solver
  std::vector<std::string> columns;
  std::vector<double> final_row;  // the last recorded row
};

// Trains `net` in place. The recorder may be null.
RunResult train(const Problem& problem, LinearNet& net, const TrainSpec& spec, Recorder* recorder);

}  // namespace dln
