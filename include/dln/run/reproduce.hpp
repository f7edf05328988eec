// `dln reproduce NAME`: a paper's experiment from the configs in experiments/papers/, its
// figures, and each claim of the paper with the number measured this time.
#pragma once

#include <string>
#include <vector>

namespace dln {

struct Reproduction {
  std::string name;
  std::string description;
  std::vector<std::string> configs;  // relative to the experiments folder, run in order
  // (config, earlier config): run the config with the values its [select] chose for the earlier
  // one (its single best point, e.g. a tuned learning rate) set as overrides.
  std::vector<std::pair<std::string, std::string>> best_from = {};
};

const std::vector<Reproduction>& reproductions();

// Runs every config of reproduction `name` into OUT/<config name> (OUT is `out`, or runs/NAME
// when empty), written beside OUT and renamed into place; returns OUT. The figures and claims
// are drawn by the Python module dln.reproductions. InputError for an unknown name or an OUT
// that may not be written.
std::string run_reproduction(const std::string& name, const std::string& out, bool force, int jobs);

}  // namespace dln
