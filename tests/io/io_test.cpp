// File formats and data preparation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <Eigen/LU>
#include <filesystem>
#include <fstream>

#include "dln/data/dataset.hpp"
#include "dln/data/synthetic.hpp"
#include "dln/error.hpp"
#include "dln/io/csv.hpp"
#include "dln/io/npy.hpp"
#include "dln/rng.hpp"

namespace dln {
namespace {
namespace fs = std::filesystem;

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("dln_io_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// An .npy file written here byte by byte, independently of write_npy.
std::string npy_bytes(const std::string& descr, const std::string& shape, const std::string& data,
                      bool fortran = false) {
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(Npy, ReadsFloat64AndFloat32InCAndFortranOrder) {
  const fs::path dir = temp_dir();
  write_bytes(dir / "a.npy", npy_bytes("<f8", "(2, 3)", raw<double>({1, 2, 3, 4, 5, 6})));
  write_bytes(dir / "b.npy", npy_bytes("<f4", "(2, 3)", raw<float>({1, 2, 3, 4, 5, 6})));
  write_bytes(dir / "c.npy", npy_bytes("<f8", "(2, 3)", raw<double>({1, 4, 2, 5, 3, 6}), true));
  const Eigen::MatrixXd expected = (Eigen::MatrixXd(2, 3) << 1, 2, 3, 4, 5, 6).finished();
  for (const char* name : {"a.npy", "b.npy", "c.npy"}) {
    const auto a = io::read_npy((dir / name).string());
    EXPECT_EQ(a.shape, (std::vector<std::size_t>{2, 3})) << name;
    EXPECT_EQ(a.matrix(), expected) << name;
  }
  // An (n, d) sample array is the d x n data matrix.
  EXPECT_EQ(io::read_npy((dir / "a.npy").string()).transposed_matrix(), expected.transpose());
  // Read straight into the data matrix: the same matrix from every layout, and (n,) as 1 x n.
  for (const char* name : {"a.npy", "b.npy", "c.npy"}) {
    std::vector<std::size_t> shape;
    EXPECT_EQ(io::read_npy_samples((dir / name).string(), shape), expected.transpose()) << name;
    EXPECT_EQ(shape, (std::vector<std::size_t>{2, 3})) << name;
  }
  write_bytes(dir / "v.npy", npy_bytes("<f8", "(3,)", raw<double>({7, 8, 9})));
  std::vector<std::size_t> shape;
  EXPECT_EQ(io::read_npy_samples((dir / "v.npy").string(), shape),
            (Eigen::MatrixXd(1, 3) << 7, 8, 9).finished());
  write_bytes(dir / "short.npy", npy_bytes("<f8", "(2, 3)", raw<double>({1, 2, 3})));
  try {
    io::read_npy_samples((dir / "short.npy").string(), shape);
    ADD_FAILURE() << "a truncated file was read";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Npy, WriteThenReadRoundTripsExactly) {
  const fs::path dir = temp_dir();
  Rng rng(1);
  const Eigen::MatrixXd m = rng.normal_matrix(5, 3);
  io::write_npy((dir / "m.npy").string(), m);
  const auto a = io::read_npy((dir / "m.npy").string());
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{5, 3}));
  EXPECT_EQ(a.matrix(), m);
  fs::remove_all(dir);
}

TEST(Npy, RejectsTruncatedWrongDtypeAndMissingFiles) {
  const fs::path dir = temp_dir();
  write_bytes(dir / "short.npy", npy_bytes("<f8", "(2, 3)", raw<double>({1, 2, 3})));
  write_bytes(dir / "int.npy", npy_bytes("<i8", "(2,)", raw<std::int64_t>({1, 2})));
  write_bytes(dir / "junk.npy", "hello");
  auto message = [](const fs::path& p) {
    try {
      io::read_npy(p.string());
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(dir / "short.npy").find("truncated"), std::string::npos);
  EXPECT_NE(message(dir / "int.npy").find("'<i8' is not supported"), std::string::npos);
  EXPECT_NE(message(dir / "junk.npy").find("not a .npy file"), std::string::npos);
  EXPECT_NE(message(dir / "missing.npy").find("cannot open"), std::string::npos);
  EXPECT_EQ(message(dir / "short.npy").rfind((dir / "short.npy").string(), 0), 0u)
      << "the message starts with the file name";
  fs::remove_all(dir);
}

TEST(Csv, ReadsHeaderAndRowsAndNamesTheLineOfABadRow) {
  const fs::path dir = temp_dir();
  write_bytes(dir / "ok.csv", "a,b,y\n1,2,3\n4, 5.5 ,-6e-1\n");
  const auto t = io::read_csv((dir / "ok.csv").string());
  EXPECT_EQ(t.columns, (std::vector<std::string>{"a", "b", "y"}));
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.at(1, 1), 5.5);
  EXPECT_EQ(t.at(1, 2), -0.6);

  write_bytes(dir / "ragged.csv", "a,b\n1,2\n3\n");
  write_bytes(dir / "word.csv", "a,b\n1,2\n3,x\n");
  try {
    io::read_csv((dir / "ragged.csv").string());
    ADD_FAILURE() << "ragged row accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 3);
  }
  try {
    io::read_csv((dir / "word.csv").string());
    ADD_FAILURE() << "non-number accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(std::string(e.what()).find("'x' is not a number"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(Data, WhitenGivesIdentitySecondMomentEvenWhenIllConditioned) {
  Dataset data;
  Rng rng(2);
  data.X = rng.normal_matrix(6, 500);
  data.X.row(2) *= 1e4;                                  // condition number of Sigma_xx ~ 1e8...
  data.X.row(4) = data.X.row(1) + 1e-2 * data.X.row(4);  // ...and ~ 1e12 with this row
  data.Y = rng.normal_matrix(2, 500);
  ASSERT_TRUE(whiten(data));
  const Eigen::MatrixXd sigma = data.X * data.X.transpose() / 500.0;
  EXPECT_LT((sigma - Eigen::MatrixXd::Identity(6, 6)).cwiseAbs().maxCoeff(), 1e-10);

  Dataset singular;
  singular.X = Eigen::MatrixXd::Ones(3, 10);
  singular.Y = Eigen::MatrixXd::Ones(1, 10);
  EXPECT_FALSE(whiten(singular));
}

TEST(Data, StandardizeCentresAndScalesEveryFeature) {
  Dataset data;
  Rng rng(3);
  data.X = 5.0 * rng.normal_matrix(4, 200).array() + 3.0;
  data.Y = rng.normal_matrix(1, 200);
  standardize(data);
  EXPECT_LT(data.X.rowwise().mean().cwiseAbs().maxCoeff(), 1e-14);
  for (Eigen::Index i = 0; i < 4; ++i) EXPECT_NEAR(data.X.row(i).squaredNorm() / 200.0, 1.0, 1e-13);
}

TEST(Data, GaussianMixtureHasTheRequestedShapeAndIsSeeded) {
  GaussianMixtureSpec spec;  // Basu et al.: 3 x 400 samples, d = 10, k = 3
  const Dataset a = gaussian_mixture(spec), b = gaussian_mixture(spec);
  EXPECT_EQ(a.X.rows(), 10);
  EXPECT_EQ(a.X.cols(), 1200);
  EXPECT_EQ(a.Y.rows(), 3);
  EXPECT_EQ(a.X, b.X);
  spec.seed = 2;
  EXPECT_NE(gaussian_mixture(spec).X, a.X);
  // Noiseless targets are an exact linear map of the inputs.
  const Eigen::MatrixXd M = a.Y * a.X.transpose() * (a.X * a.X.transpose()).inverse();
  EXPECT_LT((M * a.X - a.Y).norm(), 1e-9 * a.Y.norm());
}

}  // namespace
}  // namespace dln
