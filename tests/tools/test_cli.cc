// SPDX-License-Identifier: MIT
// The attn CLI run as a user runs it: output format, PyTorch fixtures through `attn attend`,
// errors.
#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "testing/testing.h"

namespace attn::testing {
namespace {

struct RunResult {
  int code;
  std::string output;  // stdout and stderr together
};

RunResult run_cli(const std::string& args) {
  const std::string cmd = std::string(ATTN_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(CliPe, PrintsTheLectureVector) {
  const auto r = run_cli("pe --pos 1 --dim 512");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(r.output.front(), '[');
  EXPECT_EQ(r.output.substr(0, 33), "[0.8415, 0.5403, 0.8219, 0.5697, ");
  EXPECT_EQ(r.output.substr(r.output.size() - 2), "]\n");
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), ','), 511);  // 512 values
  EXPECT_EQ(run_cli("pe --pos 0 --dim 4").output, "[0.0, 1.0, 0.0, 1.0]\n");
}

TEST(CliPe, WritesAHeatmap) {
  const std::string png = ::testing::TempDir() + "/pe.png";
  std::filesystem::remove(png);
  const auto r = run_cli("pe --positions 50 --dim 64 --png " + png);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_GT(std::filesystem::file_size(png), 100u);
}

TEST(CliPe, ErrorsGoToStderrWithNonZeroExit) {
  auto r = run_cli("pe --dim 0 --pos 1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("attn: attn pe: --dim must be >= 1"), std::string::npos) << r.output;
  r = run_cli("pe --dim 8");
  EXPECT_NE(r.code, 0);
  r = run_cli("pe --pos notanumber");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(run_cli("pe --help").code, 0);
  EXPECT_EQ(run_cli("attend --help").code, 0);
  EXPECT_NE(run_cli("").code, 0);  // a subcommand is required
}

TEST(CliAttend, MatchesPyTorchFixturesForwardAndBackward) {
  const std::string tmp = ::testing::TempDir();
  int cases = 0;
  for (const auto& e : std::filesystem::directory_iterator(golden_path("attention"))) {
    const std::string dir = e.path().string() + "/";
    SCOPED_TRACE(dir);
    std::ifstream f(dir + "meta.json");
    const auto meta = nlohmann::json::parse(f);
    std::string args = "attend --q " + dir + "q.npy --k " + dir + "k.npy --v " + dir +
                       "v.npy --out " + tmp + "/out.npy --lse " + tmp + "/lse.npy --probs " + tmp +
                       "/probs.npy --grad-out " + dir + "dout.npy --dq " + tmp + "/dq.npy --dk " +
                       tmp + "/dk.npy --dv " + tmp + "/dv.npy";
    for (const auto& a : meta["cli_args"]) args += " " + a.get<std::string>();
    if (meta["has_bias"].get<bool>())
      args += " --bias " + dir + "bias.npy --dbias " + tmp + "/dbias.npy";
    const auto r = run_cli(args);
    ASSERT_EQ(r.code, 0) << args << "\n" << r.output;
    auto got = [&](const std::string& k) {
      return io::read_npy(tmp + "/" + k + ".npy").to_double();
    };
    auto want = [&](const std::string& k) { return io::read_npy(dir + k + ".npy").to_double(); };
    for (const char* k : {"out", "lse", "dq", "dk", "dv"})
      EXPECT_TRUE(all_close(got(k), want(k), 1e-6, 1e-6)) << k;
    if (meta["has_bias"].get<bool>()) {
      EXPECT_TRUE(all_close(got("dbias"), want("dbias"), 1e-6, 1e-6));
    }
    // probs rows sum to 1 (or 0 for rows without keys)
    const TensorD p = got("probs");
    for (int64_t i = 0; i < p.numel() / p.dim(3); ++i) {
      double s = 0;
      for (int64_t j = 0; j < p.dim(3); ++j) s += p.data()[i * p.dim(3) + j];
      EXPECT_TRUE(std::abs(s - 1.0) < 1e-6 || s == 0.0) << s;
    }
    ++cases;
  }
  EXPECT_GE(cases, 7);
}

TEST(CliAttend, Float64InputRunsInFloat64) {
  const std::string tmp = ::testing::TempDir();
  Rng rng(1);
  const TensorD q = random_tensor<double>(Shape{1, 2, 3, 4}, rng),
                k = random_tensor<double>(Shape{1, 1, 5, 4}, rng);
  const TensorD v = random_tensor<double>(Shape{1, 1, 5, 2}, rng);
  io::write_npy(tmp + "/q64.npy", q.view());
  io::write_npy(tmp + "/k64.npy", k.view());
  io::write_npy(tmp + "/v64.npy", v.view());
  const auto r = run_cli("attend --q " + tmp + "/q64.npy --k " + tmp + "/k64.npy --v " + tmp +
                         "/v64.npy --out " + tmp + "/o64.npy --causal --reference");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("float64"), std::string::npos);
  const auto out = io::read_npy(tmp + "/o64.npy");
  EXPECT_EQ(out.dtype, io::DType::kFloat64);
  Context ctx;
  ops::AttentionMask m;
  m.causal = true;
  TensorD expected(Shape{1, 2, 3, 2}), lse(Shape{1, 2, 3});
  ops::reference::attention_forward(q.view(), k.view(), v.view(), m, {}, 0.5, expected.view(),
                                    lse.view(), {}, ctx);
  EXPECT_TRUE(all_close(out.to_double(), expected, 0.0));
}

TEST(CliAttend, RejectsBadInputWithAClearMessage) {
  const std::string g = golden_path("attention/basic/");
  const std::string base = "attend --q " + g + "q.npy --k " + g + "k.npy --v " + g +
                           "v.npy --out " + ::testing::TempDir() + "/x.npy ";
  struct Case {
    std::string args, fragment;
  };
  for (const auto& c : std::vector<Case>{
           {"--window -3,1", "window_left must be >= 0 or -1"},
           {"--window 1,2,3", "expected LEFT,RIGHT"},
           {"--window a,b", "expected comma-separated integers"},
           {"--chunk 0", "chunk size must be >= 1"},
           {"--key-lengths 7", "key_lengths has 1 entries but the batch size is 2"},
           {"--key-lengths 7,8", "key_lengths[1] = 8 is outside [0, S = 7]"},
           {"--dilation 0", "dilation must be >= 1"},
           {"--window ''", "--window: expected comma-separated integers, got ''"},
           {"--key-lengths ''", "--key-lengths: expected comma-separated integers"},
           {"--chunk 4,1,2", "expected SIZE[,LEFT_CHUNKS]"},
           {"--bias " + g + "lse.npy", "bias has shape (2, 2, 5)"},
           {"--dq /tmp/x.npy", "need --grad-out"},
       }) {
    const auto r = run_cli(base + c.args);
    EXPECT_EQ(r.code, 1) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.fragment), std::string::npos) << c.args << "\n" << r.output;
  }
  const auto r =
      run_cli("attend --q " + g + "q.npy --k " + g + "lse.npy --v " + g + "v.npy --out /tmp/x.npy");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("(B, NH_kv, S, HS)"), std::string::npos) << r.output;
  const auto missing =
      run_cli("attend --q /nonexistent.npy --k " + g + "k.npy --v " + g + "v.npy --out /tmp/x.npy");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.output.find("cannot open '/nonexistent.npy'"), std::string::npos)
      << missing.output;
}

TEST(CliEncode, MatchesAnExportedPyTorchEncoderWithPadding) {
  // tests/golden/encode: a 2-layer torch.nn.TransformerEncoder (GELU, final norm,
  // batch_first=False) exported by scripts/export_torch_encoder.py, with PyTorch's float64 output
  // for 2 sequences of lengths 20 and 13.
  const std::string g = golden_path("encode/");
  const std::string out = ::testing::TempDir() + "/encoded.npy";
  const auto r = run_cli("encode --config " + g + "config.json --weights " + g +
                         "weights.safetensors --input " + g + "input.npy --out " + out +
                         " --key-lengths 20,13");
  ASSERT_EQ(r.code, 0) << r.output;
  const TensorD y = io::read_npy(out).to_double(),
                expected = io::read_npy(g + "expected.npy").to_double();
  EXPECT_TRUE((all_close<double, double>(y.view(), expected.view(), 1e-5)));
}

TEST(CliEncode, RejectsBadConfigsWeightsAndInputs) {
  const std::string g = golden_path("encode/");
  const std::string tmp = ::testing::TempDir();
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(tmp + "/" + name) << text;
    return tmp + "/" + name;
  };
  const std::string ok_tail =
      " --weights " + g + "weights.safetensors --input " + g + "input.npy --out " + tmp + "/y.npy";
  struct Case {
    std::string args, fragment;
  };
  for (const auto& c : std::vector<Case>{
           {"--config " + write("c1.json", "{\"d_model\": 32}") + ok_tail,
            "missing required key \"nhead\""},
           {"--config " + write("c2.json", "{\"d_model\": 32, \"nhead\": 5, \"num_layers\": 2}") +
                ok_tail,
            "must be a positive multiple of nhead"},
           {"--config " +
                write("c3.json",
                      "{\"d_model\": 32, \"nhead\": 4, \"num_layers\": 2, \"heads\": 4}") +
                ok_tail,
            "unknown key \"heads\""},
           {"--config " +
                write("c4.json", "{\"d_model\": 32, \"nhead\": 4, \"num_layers\": \"2\"}") +
                ok_tail,
            "\"num_layers\" must be an integer"},
           {"--config " + write("c5.json", "{\"d_model\": 32,") + ok_tail, "not valid JSON"},
           {"--config " +
                write("c6.json",
                      "{\"d_model\": 32, \"nhead\": 4, \"num_layers\": 3, \"dim_feedforward\": 64, "
                      "\"batch_first\": false, \"final_norm\": true}") +
                ok_tail,
            "missing keys [layers.2.self_attn.in_proj_weight"},
           {"--config " +
                write("c7.json",
                      "{\"d_model\": 32, \"nhead\": 4, \"num_layers\": 2, \"dim_feedforward\": 32, "
                      "\"batch_first\": false, \"final_norm\": true}") +
                ok_tail,
            "'layers.0.linear1.weight' has shape (64, 32) in the state but (32, 32) in the model"},
           {"--config " + g + "config.json" + ok_tail + " --key-lengths 20", "expected 2 lengths"},
           {"--config " + g + "config.json" + ok_tail + " --key-lengths 20,0",
            "each length must be in [1, 20]"},
           {"--config " + g + "config.json --weights " + g + "input.npy --input " + g +
                "input.npy --out " + tmp + "/y.npy",
            "read_safetensors"},
           {"--config " + g + "config.json --weights " + g + "weights.safetensors --input " + g +
                "weights.safetensors --out " + tmp + "/y.npy",
            "read_npy"},
       }) {
    const auto r = run_cli("encode " + c.args);
    EXPECT_EQ(r.code, 1) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.fragment), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace attn::testing
