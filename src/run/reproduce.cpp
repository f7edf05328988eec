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
      {"agd-fig1",
       "AGD paper Fig. 1: Shamir's plateau and Saxe's sigmoid against AGD; instance-wise "
       "speed-up over shallow GD at three rates; depth 2, 4, 8; two-layer GD from standard inits "
       "at tuned rates",
       {"papers/agd-fig1/pitfalls.toml", "papers/agd-fig1/instance.toml",
        "papers/agd-fig1/depth.toml", "papers/agd-fig1/inits.toml"}},
      {"agd-fig2",
       "AGD paper Fig. 2: the path of the effective vector (curved for AGD) and one acceleration "
       "phase of <Y^, E> per eigenvalue",
       {"papers/agd-fig2/paths.toml"}},
      {"agd-fig3",
       "AGD paper Fig. 3: two-layer GD on unwhitened data turns unstable once the kernel "
       "spectrum leaves the unit interval; AGD stays smooth",
       {"papers/agd-fig3/unstable.toml"}},
      {"agd-fig4",
       "AGD paper Fig. 4: shallow GD at its tuned rate against AGD at depth 2, 4, 8 at that rate, "
       "train and test loss, on MNIST 3-vs-8 and a Fashion-MNIST pair (for CIFAR-10)",
       {"papers/agd-fig4/mnist_gd.toml", "papers/agd-fig4/mnist_agd.toml",
        "papers/agd-fig4/fashion_gd.toml", "papers/agd-fig4/fashion_agd.toml"},
       {{"papers/agd-fig4/mnist_agd.toml", "papers/agd-fig4/mnist_gd.toml"},
        {"papers/agd-fig4/fashion_agd.toml", "papers/agd-fig4/fashion_gd.toml"}}},
      {"hou-lp-rate",
       "Hou et al.: l_4 and l_6 regression on the toy problem converge as t^{-1/(p-2)} for the "
       "shallow and the scalar-depth model; depth changes the constant",
       {"papers/hou-lp-rate/p4.toml", "papers/hou-lp-rate/p6.toml"}},
      {"ji-telgarsky-fig1",
       "Ji & Telgarsky Fig. 1: on separable data, logistic loss, a 4-layer and a 1-layer linear "
       "net both converge to the max-margin separator; the deep net's layers tend to rank one "
       "and align",
       {"papers/ji-telgarsky-fig1/separable.toml"}},
      {"arora-lp",
       "Arora et al.'s l_p experiment on real regression data (diabetes, MNIST onto one-hot): "
       "depth 1, 2, 3 against momentum, Adagrad and Adam on the shallow model, l2 and l4, each "
       "at its selected rate; depth helps l4 and not l2",
       {"papers/arora-lp/diabetes_depth.toml", "papers/arora-lp/diabetes_opt.toml",
        "papers/arora-lp/mnist_depth.toml", "papers/arora-lp/mnist_opt.toml"}},
  };
  return list;
}

}  // namespace dln
