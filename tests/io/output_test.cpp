// The module that owns every path dln writes, and the checks of what it reads.
#include "dln/io/output.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "dln/error.hpp"
#include "dln/io/input.hpp"

namespace dln::io {
namespace {
namespace fs = std::filesystem;

// A scratch directory, the current directory while the test runs, removed afterwards.
class Scratch : public ::testing::Test {
 protected:
  void SetUp() override {
    old_ = fs::current_path();
    dir_ = fs::temp_directory_path() /
           ("dln_output_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    dir_ = fs::canonical(dir_);
    fs::current_path(dir_);
  }
  void TearDown() override {
    fs::current_path(old_);
    fs::remove_all(dir_);
  }
  static void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  // A directory as dln writes one: staged, filled, marked, committed.
  void dln_run(const std::string& name) {
    Output out(output_path(name, "--out"), true);
    const fs::path stage = out.fresh_staging();
    write(stage / "summary.json", "{}");
    write(stage / "weights" / "W1.npy", "w");
    mark_dir(stage, "run");
    out.commit(stage);
  }
  fs::path dir_, old_;
};

TEST_F(Scratch, OutputPathNormalisesSlashesAndRefusesDotsRootAndTheCurrentDirectory) {
  EXPECT_EQ(output_path("fresh/", "--out"), dir_ / "fresh");
  EXPECT_EQ(output_path("a/./b//", "--out"), dir_ / "a" / "b");
  EXPECT_EQ(output_path("nosuch/../x", "--out"), dir_ / "x");
  for (const char* bad : {".", "./", "nosuch/..", "..", "../..", "/", ""})
    EXPECT_THROW(output_path(bad, "--out"), InputError) << bad;
  try {
    output_path(".", "name");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.key(), "name");
    EXPECT_NE(std::string(e.what()).find("current directory"), std::string::npos);
  }
}

TEST_F(Scratch, ASecondWriterOfTheSameTargetIsRefusedUntilTheFirstIsDone) {
  const fs::path target = output_path("t", "--out");
  {
    Output first(target, false);
    EXPECT_THROW(Output(target, true), InputError);
    EXPECT_NO_THROW(Output(output_path("other", "--out"), false));
  }
  EXPECT_NO_THROW(Output(target, false));
  EXPECT_FALSE(fs::exists(dir_ / ".t.dln-lock"));  // the lock file goes with the lock
}

TEST_F(Scratch, ForceReplacesOnlyADirectoryDlnWroteThatHoldsNothingElse) {
  dln_run("r");
  EXPECT_EQ(foreign_content(dir_ / "r"), "");
  EXPECT_THROW(Output(output_path("r", "--out"), false), InputError);  // exists, no force
  dln_run("r");                                                        // force: replaced
  write(dir_ / "r" / "weights" / "mine.txt", "x");
  EXPECT_NE(foreign_content(dir_ / "r").find("weights/mine.txt"), std::string::npos);
  EXPECT_THROW(Output(output_path("r", "--out"), true), InputError);
  EXPECT_TRUE(fs::exists(dir_ / "r" / "weights" / "mine.txt"));

  write(dir_ / "user" / "thesis.tex", "x");
  EXPECT_THROW(Output(output_path("user", "--out"), true), InputError);
  EXPECT_THROW(remove_dln_dir(dir_ / "user"), std::logic_error);
  EXPECT_TRUE(fs::exists(dir_ / "user" / "thesis.tex"));
  // A forged marker that lists nothing does not make the user's files dln's.
  write(dir_ / "user" / ".dln", R"({"written_by": "dln", "kind": "run", "entries": []})");
  EXPECT_THROW(Output(output_path("user", "--out"), true), InputError);
  fs::create_directory(dir_ / "empty");
  EXPECT_NO_THROW(Output(output_path("empty", "--out"), false));  // nothing there to lose
  fs::create_symlink(dir_ / "r", dir_ / "link");
  EXPECT_THROW(Output(output_path("link", "--out"), true), InputError);
}

TEST_F(Scratch, AMarkedSubfolderIsCheckedByItsOwnMarker) {
  Output out(output_path("sweep", "--out"), false);
  const fs::path stage = out.fresh_staging();
  make_staging_dir(stage / "000");
  write(stage / "000" / "summary.json", "{}");
  mark_dir(stage / "000", "run");
  write(stage / "runs.csv", "run\n000\n");
  mark_dir(stage, "sweep");
  out.commit(stage);
  EXPECT_EQ(foreign_content(dir_ / "sweep"), "");
  write(dir_ / "sweep" / "000" / "notes.txt", "x");
  EXPECT_NE(foreign_content(dir_ / "sweep").find("000"), std::string::npos);
}

TEST_F(Scratch, StagingOfAWriterThatDiedIsRemovedAndOtherNamesAreKept) {
  make_staging_dir(dir_ / "t.tmp-99999");
  write(dir_ / "t.tmp-99999" / "metrics.csv", "step\n");
  fs::create_directory(dir_ / "t.tmp-12");  // the user's: no marker
  fs::create_directory(dir_ / "t.tmp-x");
  { Output out(output_path("t", "--out"), false); }
  EXPECT_FALSE(fs::exists(dir_ / "t.tmp-99999"));
  EXPECT_TRUE(fs::exists(dir_ / "t.tmp-12"));
  EXPECT_TRUE(fs::exists(dir_ / "t.tmp-x"));
  // An uncommitted staging directory goes with its writer.
  {
    Output out(output_path("t", "--out"), false);
    EXPECT_TRUE(fs::exists(out.fresh_staging()));
  }
  EXPECT_FALSE(fs::exists(dir_ / ("t.tmp-" + std::to_string(::getpid()))));
  EXPECT_FALSE(fs::exists(dir_ / "t"));
}

TEST_F(Scratch, AtomicWritesReplaceWholeAndLeaveNoTemporary) {
  write_file_atomic(dir_ / "f.json", "first");
  write_file_atomic(dir_ / "f.json", "second, longer");
  std::ifstream in(dir_ / "f.json");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "second, longer");
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
}

TEST_F(Scratch, ReadersRefuseWhatIsNotARegularFile) {
  fs::create_directory(dir_ / "folder");
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  for (const std::string p : {"/dev/zero", "fifo", "folder", "missing"})
    EXPECT_THROW(read_file(p), InputError) << p;
}

TEST(MemoryBudget, SaturatingProductsAndTheMessageNameTheBudget) {
  EXPECT_EQ(mul_sat(1ull << 32, 1ull << 32), ~0ull);
  EXPECT_EQ(mul_sat(3, 5), 15u);
  EXPECT_GT(memory_budget(), 0u);
  try {
    require_memory(1e30, "the thing", "f.csv", "data.path");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "f.csv");
    EXPECT_EQ(e.key(), "data.path");
    EXPECT_NE(std::string(e.what()).find("memory budget"), std::string::npos);
  }
}

}  // namespace
}  // namespace dln::io
