#include "dln/data/mnist_json.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "dln/error.hpp"
#include "dln/io/npy.hpp"
#include "dln/rng.hpp"

namespace dln {

namespace {

constexpr std::size_t kPixels = 28 * 28;

// A SAX reader of {"data": [numbers]}: counts the numbers of the top-level "data" array and, if
// given `place`, hands each to it with its index. No document is built, so the data go straight
// into the data matrix.
template <class Place>
class DigitValues {
 public:
  explicit DigitValues(Place* place) : place_(place) {}
  std::size_t count() const { return count_; }
  bool seen_data() const { return seen_data_; }
  const std::string& problem() const { return problem_; }

  bool number_integer(std::int64_t v) { return number(static_cast<double>(v)); }
  bool number_unsigned(std::uint64_t v) { return number(static_cast<double>(v)); }
  bool number_float(double v, const std::string&) { return number(v); }
  bool null() { return other(); }
  bool boolean(bool) { return other(); }
  bool string(std::string&) { return other(); }
  bool binary(nlohmann::json::binary_t&) { return other(); }
  bool start_object(std::size_t) {
    if (in_data()) return other();
    ++depth_;
    return true;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool key(std::string& k) {
    if (depth_ == 1) key_is_data_ = k == "data";
    return true;
  }
  bool start_array(std::size_t) {
    if (in_data()) return other();
    ++depth_;
    if (depth_ == 2 && key_is_data_) seen_data_ = true;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    problem_ = e.what();
    return false;
  }

 private:
  bool in_data() const { return depth_ == 2 && key_is_data_; }
  bool number(double v) {
    if (!in_data()) return true;
    if (place_ != nullptr) (*place_)(count_, v);
    ++count_;
    return true;
  }
  bool other() {
    if (!in_data()) return true;
    problem_ = "\"data\" holds something other than numbers";
    return false;
  }

  Place* place_;
  int depth_ = 0;
  bool key_is_data_ = false, seen_data_ = false;
  std::size_t count_ = 0;
  std::string problem_;
};

// Parses one digit file, handing each value to place (may be null); returns the count.
template <class Place>
std::size_t read_digits(const std::string& path, Place* place) {
  const std::string text = io::read_file(path);
  DigitValues<Place> reader(place);
  const bool ok = nlohmann::json::sax_parse(text, &reader);
  if (!ok || !reader.seen_data())
    throw InputError(
        path, 0, "",
        "not an mnist digit file: " +
            (reader.problem().empty() ? std::string("no \"data\" array") : reader.problem()));
  if (reader.count() % kPixels != 0)
    throw InputError(path, 0, "", "the data do not hold whole 28x28 images");
  return reader.count() / kPixels;
}

}  // namespace

Dataset load_mnist_json(const MnistJsonSpec& spec) {
  std::vector<int> classes = spec.classes;
  if (classes.empty()) classes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto path_of = [&](std::size_t c) {
    return (std::filesystem::path(spec.dir) / (std::to_string(classes[c]) + ".json")).string();
  };
  // Pass 1: how many images each file holds, and which go where. Both parts of the split:
  // [0] the part trained on, [1] the other (held out).
  Rng rng(spec.seed);
  std::vector<std::vector<std::vector<std::size_t>>> chosen(classes.size());  // [c][part]
  std::vector<std::vector<std::size_t>> class_of(2);
  for (std::size_t c = 0; c < classes.size(); ++c) {
    const std::size_t count = read_digits<void (*)(std::size_t, double)>(path_of(c), nullptr);
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
    chosen[c].resize(2);
    for (int part = 0; part < 2; ++part) {
      auto& pick = chosen[c][part];
      pick = (part == 0) != spec.test ? train_part : test_part;
      std::sort(pick.begin(), pick.end());
      if (spec.per_class > 0 && pick.size() > static_cast<std::size_t>(spec.per_class))
        pick.resize(static_cast<std::size_t>(spec.per_class));
      class_of[part].insert(class_of[part].end(), pick.size(), c);
    }
  }
  // Pass 2: each value straight into its column of the data matrices.
  Dataset out;
  out.X.resize(static_cast<Eigen::Index>(kPixels), static_cast<Eigen::Index>(class_of[0].size()));
  out.test_X.resize(static_cast<Eigen::Index>(kPixels),
                    static_cast<Eigen::Index>(class_of[1].size()));
  std::array<Eigen::Index, 2> next = {0, 0};
  for (std::size_t c = 0; c < classes.size(); ++c) {
    // Image i of this file goes to column column[i] of part part[i] (or nowhere: part -1).
    std::vector<Eigen::Index> column;
    std::vector<int> part_of;
    for (int part = 0; part < 2; ++part)
      for (std::size_t i : chosen[c][part]) {
        if (column.size() <= i) {
          column.resize(i + 1, -1);
          part_of.resize(i + 1, -1);
        }
        column[i] = next[part]++;
        part_of[i] = part;
      }
    auto place = [&](std::size_t index, double v) {
      const std::size_t i = index / kPixels;
      if (i >= column.size() || part_of[i] < 0) return;
      Eigen::MatrixXd& X = part_of[i] == 0 ? out.X : out.test_X;
      X(static_cast<Eigen::Index>(index % kPixels), column[i]) = v;
    };
    read_digits(path_of(c), &place);
  }
  const bool pm1 = spec.labels == "pm1";
  out.Y = class_targets(class_of[0], classes.size(), pm1);
  if (class_of[1].empty()) {
    out.test_X.resize(0, 0);
  } else {
    out.test_Y = class_targets(class_of[1], classes.size(), pm1);
  }
  return out;
}

}  // namespace dln
