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

}  // namespace dln
