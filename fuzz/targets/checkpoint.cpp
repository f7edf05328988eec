// A run's checkpoint (DIR.partial/checkpoint.npz) as a training continues it: the archive, then
// every entry the state loaders read, checked against the run before it is used.
#include <optional>
#include <stdexcept>

#include "dln/io/npz.hpp"
#include "dln/run/config.hpp"
#include "dln/run/experiment.hpp"
#include "dln/run/trainer.hpp"
#include "fuzz_support.hpp"

namespace {

// A small run with optimiser state and probes that carry state from record to record.
constexpr const char* kConfig = R"(
name = "fuzz"
[data]
source = "synthetic.gaussian_mixture"
samples = 20
dim = 3
targets = 2
[model]
widths = [3, 2, 2]
[optimizer]
kind = "adam"
lr = 0.01
steps = 1000
[record]
every = "log"
probes = ["loss", "fro", "loglog_slope", "basu_bound", "mode_theory", "balance_drift"]
)";

dln::PreparedRun& prepared() {
  static dln::PreparedRun run =
      dln::prepare(dln::resolve(dln::parse_config(kConfig, "fuzz.toml", ".", {}, {})));
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dln::fuzz::init();
  (void)prepared();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  dln::StateMap state;
  try {
    for (auto& [key, array] : dln::io::read_npz(dln::fuzz::as_file(data, size, "c.npz")))
      state[key] = array.matrix();
  } catch (const dln::InputError&) {
    return 0;
  }
  dln::PreparedRun& run = prepared();
  dln::LinearNet net = run.net;
  try {
    dln::Training training(*run.problem, net, run.spec.train, nullptr, &state);
    training.advance(3);
    (void)training.finish();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
