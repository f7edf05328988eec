// `dln reproduce NAME`: a paper's experiment from the configs in experiments/papers/, its
// figures, and each claim of the paper with the number measured this time.
#pragma once

#include <string>
#include <vector>

namespace dln {

struct Reproduction {
  std::string name;
  std::string description;
  std::vector<std::string> configs;  // relative to the experiments folder
};

const std::vector<Reproduction>& reproductions();

}  // namespace dln
