#include "dln/data/mnist_json.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "dln/error.hpp"
#include "dln/io/npy.hpp"
#include "dln/rng.hpp"

namespace dln {

Dataset load_mnist_json(const MnistJsonSpec& spec) {
  constexpr int kPixels = 28 * 28;
  std::vector<int> classes = spec.classes;
  if (classes.empty()) classes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  Rng rng(spec.seed);
  // Both parts of the split: [0] the part trained on, [1] the other (held out).
  std::vector<std::vector<std::vector<double>>> images(2);  // kPixels each
  std::vector<std::vector<std::size_t>> class_of(2);
  for (std::size_t c = 0; c < classes.size(); ++c) {
    const std::string path =
        (std::filesystem::path(spec.dir) / (std::to_string(classes[c]) + ".json")).string();
    const std::string text = io::read_file(path);
    std::vector<double> data;
    try {
      const auto json = nlohmann::json::parse(text);
      data = json.at("data").get<std::vector<double>>();
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path, 0, "", std::string("not an mnist digit file: ") + e.what());
    }
    if (data.size() % kPixels != 0)
      throw InputError(path, 0, "", "the data do not hold whole 28x28 images");
    std::size_t count = data.size() / kPixels;
    // Seeded split within the digit: a Fisher-Yates shuffle of the image order.
    std::vector<std::size_t> order(count);
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = count; i > 1; --i)
      std::swap(order[i - 1],
                order[static_cast<std::size_t>(rng.uniform() * static_cast<double>(i))]);
    const auto n_test =
        static_cast<std::ptrdiff_t>(spec.test_fraction * static_cast<double>(count));
    std::vector<std::size_t> test_part(order.begin(), order.begin() + n_test);
    std::vector<std::size_t> train_part(order.begin() + n_test, order.end());
    for (int part = 0; part < 2; ++part) {
      std::vector<std::size_t> chosen = (part == 0) != spec.test ? train_part : test_part;
      std::sort(chosen.begin(), chosen.end());
      if (spec.per_class > 0 && chosen.size() > static_cast<std::size_t>(spec.per_class))
        chosen.resize(static_cast<std::size_t>(spec.per_class));
      for (std::size_t i : chosen) {
        images[part].emplace_back(data.begin() + static_cast<std::ptrdiff_t>(i * kPixels),
                                  data.begin() + static_cast<std::ptrdiff_t>((i + 1) * kPixels));
        class_of[part].push_back(c);
      }
    }
  }
  const bool pm1 = spec.labels == "pm1";
  auto matrix = [&](const std::vector<std::vector<double>>& part) {
    Eigen::MatrixXd X(kPixels, static_cast<Eigen::Index>(part.size()));
    for (Eigen::Index j = 0; j < X.cols(); ++j)
      X.col(j) =
          Eigen::Map<const Eigen::VectorXd>(part[static_cast<std::size_t>(j)].data(), kPixels);
    return X;
  };
  Dataset out;
  out.X = matrix(images[0]);
  out.Y = class_targets(class_of[0], classes.size(), pm1);
  if (!images[1].empty()) {
    out.test_X = matrix(images[1]);
    out.test_Y = class_targets(class_of[1], classes.size(), pm1);
  }
  return out;
}

}  // namespace dln
