// `dln verify`: numerical checks of the theory dln implements (Steinitz, Basu et al., Saxe et
// al., the AGD paper), each a claim, a setting, a measured value, a threshold and a verdict.
#pragma once

#include <string>
#include <vector>

namespace dln {

struct CheckResult {
  int id = 0;
  std::string claim;
  std::string setting;
  std::string measured;
  std::string threshold;
  bool pass = false;
};

struct VerifyCheck {
  int id;
  std::string name;
  CheckResult (*run)(bool quick);
};

const std::vector<VerifyCheck>& verify_checks();

// Runs every check (or only `only`, when > 0); `quick` uses smaller settings.
std::vector<CheckResult> verify(bool quick, int only = 0);

}  // namespace dln
