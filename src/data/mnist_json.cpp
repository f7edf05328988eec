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
  std::vector<std::vector<double>> images;  // kPixels each
  std::vector<std::size_t> class_of;
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
    const auto n_test = static_cast<std::size_t>(spec.test_fraction * static_cast<double>(count));
    std::vector<std::size_t> chosen(spec.test ? order.begin() : order.begin() + n_test,
                                    spec.test ? order.begin() + n_test : order.end());
    std::sort(chosen.begin(), chosen.end());
    if (spec.per_class > 0 && chosen.size() > static_cast<std::size_t>(spec.per_class))
      chosen.resize(static_cast<std::size_t>(spec.per_class));
    for (std::size_t i : chosen) {
      images.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(i * kPixels),
                          data.begin() + static_cast<std::ptrdiff_t>((i + 1) * kPixels));
      class_of.push_back(c);
    }
  }
  Dataset out;
  const auto n = static_cast<Eigen::Index>(images.size());
  out.X.resize(kPixels, n);
  const bool pm1 = spec.labels == "pm1";
  out.Y = Eigen::MatrixXd::Zero(pm1 ? 1 : static_cast<Eigen::Index>(classes.size()), n);
  for (Eigen::Index j = 0; j < n; ++j) {
    out.X.col(j) = Eigen::Map<const Eigen::VectorXd>(images[j].data(), kPixels);
    if (pm1)
      out.Y(0, j) = class_of[j] == 0 ? -1.0 : 1.0;
    else
      out.Y(static_cast<Eigen::Index>(class_of[j]), j) = 1.0;
  }
  return out;
}

}  // namespace dln
