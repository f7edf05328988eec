#include "dln/data/idx_images.hpp"

#include "dln/error.hpp"
#include "dln/io/idx.hpp"

namespace dln {
namespace {

struct Part {
  Eigen::MatrixXd X;
  std::vector<std::size_t> class_of;
};

Part load_part(const std::string& images_path, const std::string& labels_path,
               const std::vector<int>& classes, int per_class) {
  const io::IdxArray images = io::read_idx(images_path);
  const io::IdxArray labels = io::read_idx(labels_path);
  if (images.shape.size() < 2)
    throw InputError(images_path, 0, "", "expected images: an IDX array of (n, rows, cols)");
  if (labels.shape.size() != 1)
    throw InputError(labels_path, 0, "", "expected labels: a one-dimensional IDX array");
  const std::size_t n = images.shape[0];
  if (labels.shape[0] != n)
    throw InputError(labels_path, 0, "",
                     "holds " + std::to_string(labels.shape[0]) + " labels for " +
                         std::to_string(n) + " images in " + images_path);
  const std::size_t pixels = n == 0 ? 0 : images.data.size() / n;
  std::vector<std::size_t> taken(classes.size(), 0), chosen;
  Part part;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < classes.size(); ++c) {
      if (labels.data[i] != classes[c]) continue;
      if (per_class > 0 && taken[c] >= static_cast<std::size_t>(per_class)) break;
      ++taken[c];
      chosen.push_back(i);
      part.class_of.push_back(c);
      break;
    }
  }
  part.X.resize(static_cast<Eigen::Index>(pixels), static_cast<Eigen::Index>(chosen.size()));
  for (std::size_t j = 0; j < chosen.size(); ++j)
    for (std::size_t p = 0; p < pixels; ++p)
      part.X(static_cast<Eigen::Index>(p), static_cast<Eigen::Index>(j)) =
          images.data[chosen[j] * pixels + p] / 255.0;
  return part;
}

}  // namespace

Dataset load_idx_images(const IdxImagesSpec& spec) {
  std::vector<int> classes = spec.classes;
  if (classes.empty()) classes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const bool pm1 = spec.label_mode == "pm1";
  Dataset out;
  Part train = load_part(spec.images, spec.labels, classes, spec.per_class);
  out.X = std::move(train.X);
  out.Y = class_targets(train.class_of, classes.size(), pm1);
  if (!spec.test_images.empty()) {
    Part test = load_part(spec.test_images, spec.test_labels, classes, spec.per_class);
    if (test.X.rows() != out.X.rows())
      throw InputError(spec.test_images, 0, "",
                       "images of " + std::to_string(test.X.rows()) +
                           " pixels; the training "
                           "images have " +
                           std::to_string(out.X.rows()));
    out.test_X = std::move(test.X);
    out.test_Y = class_targets(test.class_of, classes.size(), pm1);
  }
  return out;
}

}  // namespace dln
