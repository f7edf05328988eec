// Labelled images in IDX files (MNIST, Fashion-MNIST: images (n, rows, cols) and labels (n)),
// scaled to [0, 1], with a class filter, a cap per class, labels one-hot or -1/+1, and an
// optional held-out pair of files.
#pragma once

#include <string>
#include <vector>

#include "dln/data/dataset.hpp"

namespace dln {

struct IdxImagesSpec {
  std::string images, labels;            // the training pair
  std::string test_images, test_labels;  // the held-out pair (both empty: none)
  std::vector<int> classes;              // labels to keep, in this order (empty: 0 ... 9)
  std::string label_mode = "onehot";     // onehot, or pm1 (two classes: -1, +1)
  int per_class = 0;                     // at most this many images per class (0: all)
};

// Throws InputError naming the file for malformed or mismatched files.
Dataset load_idx_images(const IdxImagesSpec& spec);

}  // namespace dln
