#include "dln/core/state_map.hpp"

#include <cmath>
#include <stdexcept>

namespace dln {

const Eigen::MatrixXd& state_entry(const StateMap& state, const std::string& key, Eigen::Index rows,
                                   Eigen::Index cols) {
  const auto it = state.find(key);
  if (it == state.end()) throw std::runtime_error("the checkpoint holds no " + key);
  if (it->second.rows() != rows || it->second.cols() != cols)
    throw std::runtime_error("the checkpoint's " + key + " has the wrong shape");
  return it->second;
}

double state_scalar(const StateMap& state, const std::string& key) {
  return state_entry(state, key, 1, 1)(0, 0);
}

long state_count(const StateMap& state, const std::string& key, long lo, long hi) {
  const double v = state_scalar(state, key);
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) || v != std::floor(v))
    throw std::runtime_error("the checkpoint's " + key + " is out of range");
  return static_cast<long>(v);
}

void save_list(StateMap& state, const std::string& key, const std::vector<Eigen::MatrixXd>& list) {
  for (std::size_t i = 0; i < list.size(); ++i) state[key + "." + std::to_string(i + 1)] = list[i];
}

void load_list(const StateMap& state, const std::string& key, std::vector<Eigen::MatrixXd>& list) {
  for (std::size_t i = 0; i < list.size(); ++i)
    list[i] = state_entry(state, key + "." + std::to_string(i + 1), list[i].rows(), list[i].cols());
}

}  // namespace dln
