// The state of a training run kept in a checkpoint: named matrices (scalars as 1 x 1), written
// as the members of an .npz (docs/config.md#checkpoints-and-resuming).
#pragma once

#include <Eigen/Core>
#include <map>
#include <string>
#include <vector>

namespace dln {

using StateMap = std::map<std::string, Eigen::MatrixXd>;

inline void put_scalar(StateMap& state, const std::string& key, double value) {
  state[key] = Eigen::MatrixXd::Constant(1, 1, value);
}

// The entry `key`, which must exist with the given shape (a checkpoint of another run is
// refused by the caller before this is reached; this is the last line of defence).
const Eigen::MatrixXd& state_entry(const StateMap& state, const std::string& key, Eigen::Index rows,
                                   Eigen::Index cols);
double state_scalar(const StateMap& state, const std::string& key);
// A whole number from `lo` to `hi` (a count or a position), checked before it is converted.
long state_count(const StateMap& state, const std::string& key, long lo, long hi);

// A list of matrices as key.1, key.2, ...; load_list restores into matrices of the same shapes.
void save_list(StateMap& state, const std::string& key, const std::vector<Eigen::MatrixXd>& list);
void load_list(const StateMap& state, const std::string& key, std::vector<Eigen::MatrixXd>& list);

}  // namespace dln
