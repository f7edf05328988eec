// Initialisers: every layer of a LinearNet from a seed (or from .npy files).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dln/model/linear_net.hpp"
#include "dln/registry.hpp"

namespace dln {

struct InitSpec {
  std::string scheme = "glorot_normal";
  double std = 0.1;    // normal: entry std; balanced: std of the sampled end-to-end entries
  double gain = 1.0;   // orthogonal, identity: multiplies the matrix
  double noise = 0.0;  // identity: std of Gaussian noise added to every entry
  std::vector<std::string> paths = {};   // npy: one (out, in) file per layer
  double strength = 1e-3;                // saxe: initial end-to-end strength of every mode
  std::vector<double> layer_gains = {};  // saxe: per-layer factors on the singular values
  std::vector<double> values = {1.0};    // constant: every entry of W_l (one value, or one per l)
  std::uint64_t seed = 1;
};

const Registry& init_registry();

// Throws InputError for a missing or malformed weights file, or an unknown scheme. `saxe`
// needs the input-output correlation Sigma_yx (k x d).
LinearNet initialize(const std::vector<int>& widths, const InitSpec& spec,
                     const Eigen::MatrixXd* sigma_yx = nullptr);

}  // namespace dln
