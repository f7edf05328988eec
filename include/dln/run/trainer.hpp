// The step loop: optimiser step, due probes, stop rules. Knows nothing of files or configs;
// recorded rows go to a Recorder.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dln/core/problem.hpp"
#include "dln/core/state_map.hpp"
#include "dln/model/linear_net.hpp"
#include "dln/optim/optimizer.hpp"
#include "dln/probe/probe.hpp"

namespace dln {

enum class RunStatus { kCompleted, kConverged, kDiverged, kStopped };
const char* status_name(RunStatus status);

struct StopSpec {
  double loss = 0.0;             // converged below this loss (0: never)
  double diverge_factor = 1e12;  // diverged above factor x initial loss, or non-finite
  bool rise = false;             // diverged if the final loss is above the initial loss
};

struct TrainSpec {
  OptimizerSpec optimizer;
  long every = 1;                    // record every this many steps (and the last step)
  std::vector<long> record_steps;    // if not empty: record at exactly these steps (increasing)
  double dt = 0.0;                   // continuous-time optimisers: the time between records
  std::vector<double> record_times;  // if not empty (continuous time): 0, then these times
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
  // Asked after every record: true ends the run with status `stopped` (a user's callback).
  virtual bool stop_requested() const { return false; }
};

// A recorder that passes rows on to another (adding columns, watching, stopping).
class RecorderFilter : public Recorder {
 public:
  void set_next(Recorder* next) { next_ = next; }

 protected:
  Recorder* next_ = nullptr;
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

// A training in progress, whichever engine runs it: what write_run needs to drive the steps,
// checkpoint them and write the weights. The native linear engine is Training below; the
// nonlinear engine (libtorch) lives in a plugin (dln/nonlinear/torch_engine.hpp).
class Session {
 public:
  virtual ~Session() = default;
  // Takes up to `n` more steps, fewer when a stop rule ends the run or its steps run out;
  // returns the number taken.
  virtual long advance(long n) = 0;
  virtual bool done() const = 0;
  // The result so far (final_loss, time and seconds brought up to date).
  virtual const RunResult& result() = 0;
  // The result, moved out: the training is over.
  virtual RunResult finish() = 0;
  // Steps in the run, and steps taken so far.
  virtual long total_steps() const = 0;
  virtual long steps() const = 0;
  // Everything the steps after this one depend on, for a checkpoint.
  virtual void save(StateMap& state) const = 0;
  // The trained parameters by file name (W1 ... WL; b1 ... for biases), each a matrix (out, in).
  virtual std::vector<std::pair<std::string, Eigen::MatrixXd>> parameters() const = 0;
};

// The step loop, a few steps at a time: train() runs it to the end; a Trainer of the Python
// package steps it by hand, with the same numbers bit for bit. Not movable (the step cache
// holds the worker pool's address).
class Training final : public Session {
 public:
  // Binds the step cache, records the initial state (step 0) and checks the stop rules on it.
  // With `resume` (a checkpoint's state, from save() of a training of the same problem, spec
  // and initial net), continues from there instead: nothing is recorded until the next step.
  Training(const Problem& problem, LinearNet& net, const TrainSpec& spec, Recorder* recorder,
           const StateMap* resume = nullptr);
  ~Training() override;
  Training(const Training&) = delete;
  Training& operator=(const Training&) = delete;

  long advance(long n) override;
  bool done() const override;
  const RunResult& result() override;
  RunResult finish() override;
  // Steps in the run (the configured count, or flow time / record interval).
  long total_steps() const override;
  long steps() const override;
  // Weights, optimiser, schedule and probe state, counters.
  void save(StateMap& state) const override;
  std::vector<std::pair<std::string, Eigen::MatrixXd>> parameters() const override;

  StepCache& cache();
  const std::vector<std::string>& columns() const;
  // Measures the run's own probes now (without recording), into `row`.
  void measure(std::span<double> row);
  // The state after `step` as StepInfo (for probes measured by hand).
  const StepInfo& info() const;
  // After the layers were changed from outside: the cache recomputes from them. The optimiser
  // keeps its state (momentum, moments).
  void weights_changed();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// How many rows a run of `spec` records at most (for recorders that reserve): the initial row,
// one per record interval or record step, and the last step.
long expected_records(const TrainSpec& spec);

// Log-spaced record steps for a run of `steps` steps: 0, 1, the last, and round(10^(j / N)) for
// every j with N = per_decade, deduplicated and increasing.
std::vector<long> log_record_steps(long steps, int per_decade);

// Log-spaced record times of a flow to time `end`: 0, start * 10^(j / N) below `end` for j = 0,
// 1, ... with N = per_decade, and `end`, strictly increasing.
std::vector<double> log_record_times(double end, double start, int per_decade);

// Trains `net` in place. The recorder may be null.
RunResult train(const Problem& problem, LinearNet& net, const TrainSpec& spec, Recorder* recorder);

}  // namespace dln
