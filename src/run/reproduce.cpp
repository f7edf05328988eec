#include "dln/run/reproduce.hpp"

namespace dln {

const std::vector<Reproduction>& reproductions() {
  static const std::vector<Reproduction> list = {
      {"basu-fig1",
       "Basu et al. Fig. 1: layer norms of 10-6-3 and 10-8-6-4-3 nets on the 3-Gaussian mixture "
       "grow together within their initial gap, ||W_e|| approaches ||Sigma_yx||, and the growth "
       "bound (17) for L = 2, 3, 4",
       {"papers/basu-fig1/three_layer.toml", "papers/basu-fig1/five_layer.toml"}},
      {"steinitz-fig1",
       "Steinitz Fig. 1: linear nets of depth 1-4 on real l2 regression data (diabetes, MNIST "
       "onto one-hot), learning-rate grid then long training: dynamics independent of "
       "intermediate width, and the ranking of depths",
       {"papers/steinitz-fig1/diabetes.toml", "papers/steinitz-fig1/mnist.toml"}},
  };
  return list;
}

}  // namespace dln
