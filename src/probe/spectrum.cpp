#include "dln/probe/spectrum.hpp"

#include <Eigen/SVD>
#include <algorithm>
#include <limits>

#include "dln/core/hessian.hpp"

namespace dln {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// sharpness: the Hessian's largest eigenvalue with respect to all layers.
class Sharpness final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("sharpness");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    out[0] = c.hessian_top()(0);
  }
};

// hessian_eigs.i: the top record.hessian_k eigenvalues (as many as there are parameters).
class HessianEigs final : public Probe {
 public:
  explicit HessianEigs(int k) : k_(k) {}
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    Eigen::Index parameters = 0;
    for (const auto& W : net.layers) parameters += W.size();
    const auto count = std::min<Eigen::Index>(k_, parameters);
    for (Eigen::Index i = 1; i <= count; ++i) out.push_back("hessian_eigs." + std::to_string(i));
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    const Eigen::VectorXd& top = c.hessian_top();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = top(static_cast<Eigen::Index>(i));
  }

 private:
  int k_;
};

class SharpnessE2e final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("sharpness_e2e");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    out[0] = c.hessian_top_e2e();
  }
};

// edge = sharpness * lr / 2: 1 where GD on the quadratic model stops being stable.
class Edge final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("edge");
  }
  void measure(const StepInfo& info, StepCache& c, std::span<double> out) override {
    out[0] = c.hessian_top()(0) * info.lr / 2.0;
  }
};

// hessian_products: the Hessian-vector products the record's Lanczos took.
class HessianProducts final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("hessian_products");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    c.hessian_top();
    out[0] = c.hessian_products();
  }
};

// sv.l.i: the singular values of every layer (descending); sv_e2e.i those of W_e. JacobiSVD
// (one-sided Jacobi after a QR, values only) keeps the small ones to working accuracy, which
// the square root of a Gram matrix's eigenvalues would not.
class SingularValues final : public Probe {
 public:
  explicit SingularValues(bool e2e) : e2e_(e2e) {}
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    if (e2e_) {
      const auto m = std::min(net.output_dim(), net.input_dim());
      for (Eigen::Index i = 1; i <= m; ++i) out.push_back("sv_e2e." + std::to_string(i));
      return;
    }
    for (int l = 1; l <= net.depth(); ++l) {
      const auto& W = net.layers[l - 1];
      const auto m = std::min(W.rows(), W.cols());
      for (Eigen::Index i = 1; i <= m; ++i)
        out.push_back("sv." + std::to_string(l) + "." + std::to_string(i));
    }
  }
  void bind(const StepCache& c) override {
    svds_.clear();
    const auto& net = c.net();
    if (e2e_) {
      svds_.emplace_back(net.output_dim(), net.input_dim());
    } else {
      for (const auto& W : net.layers) svds_.emplace_back(W.rows(), W.cols());
    }
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    std::size_t at = 0;
    for (std::size_t l = 0; l < svds_.size(); ++l) {
      const Eigen::MatrixXd& W = e2e_ ? c.end_to_end() : c.net().layers[l];
      const auto count = std::min(W.rows(), W.cols());
      if (!W.allFinite()) {  // JacobiSVD leaves its last values on non-finite input
        for (Eigen::Index i = 0; i < count; ++i) out[at++] = kNan;
        continue;
      }
      svds_[l].compute(W);
      const auto& s = svds_[l].singularValues();
      for (Eigen::Index i = 0; i < count; ++i) out[at++] = std::isfinite(s(i)) ? s(i) : kNan;
    }
  }

 private:
  bool e2e_;
  std::vector<Eigen::JacobiSVD<Eigen::MatrixXd>> svds_;
};

}  // namespace

bool needs_hessian(const std::string& name) {
  return name == "sharpness" || name == "hessian_eigs" || name == "sharpness_e2e" ||
         name == "edge" || name == "hessian_products";
}

std::unique_ptr<Probe> make_spectrum_probe(const std::string& name, const ProbeOptions& options) {
  if (name == "sharpness") return std::make_unique<Sharpness>();
  if (name == "hessian_eigs") return std::make_unique<HessianEigs>(options.hessian_k);
  if (name == "sharpness_e2e") return std::make_unique<SharpnessE2e>();
  if (name == "edge") return std::make_unique<Edge>();
  if (name == "hessian_products") return std::make_unique<HessianProducts>();
  if (name == "sv") return std::make_unique<SingularValues>(false);
  if (name == "sv_e2e") return std::make_unique<SingularValues>(true);
  return nullptr;
}

}  // namespace dln
