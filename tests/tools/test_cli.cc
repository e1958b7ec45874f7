// SPDX-License-Identifier: MIT
// The attn CLI run as a user runs it: output format, PyTorch fixtures through `attn attend`,
// errors.
#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "testing/testing.h"

namespace attn::testing {
namespace {

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

// docs/cli.md: one error line "attn: <subcommand>: ...", exit code 2 for usage errors (the parser's
// included), 1 for runtime errors, 0 on success and for --help.
TEST(CliPe, ErrorsGoToStderrWithNonZeroExit) {
  auto r = run_cli("pe --dim 0 --pos 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("attn: pe: --dim: must be >= 1"), std::string::npos) << r.output;
  r = run_cli("pe --dim 8");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("attn: pe: "), std::string::npos) << r.output;
  r = run_cli("pe --pos notanumber");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output.rfind("attn: pe: ", 0), 0u) << r.output;
  r = run_cli("pe --pos -1 --dim 4");  // -1 was taken for "not given"
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("attn: pe: --pos: must be >= 0, got -1"), std::string::npos) << r.output;
  r = run_cli("attend --no-such-option 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output.rfind("attn: attend: ", 0), 0u) << r.output;
  EXPECT_EQ(run_cli("pe --help").code, 0);
  EXPECT_EQ(run_cli("attend --help").code, 0);
  r = run_cli("");  // a subcommand is required
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output.rfind("attn: A subcommand is required", 0), 0u) << r.output;
  r = run_cli("bogus --pos 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output.rfind("attn: unknown subcommand 'bogus'; choose one of pe, attend, bench,", 0),
            0u)
      << r.output;
}

// Every bench takes --simd-target; an unknown target is a usage error that lists the choices.
TEST(CliBench, SimdTargetIsCheckedOnEveryBench) {
  for (const char* bench : {"attention", "images", "speech"}) {
    const auto r = run_cli(std::string("bench ") + bench + " --simd-target NOPE");
    EXPECT_EQ(r.code, 2) << bench << ": " << r.output;
    EXPECT_NE(r.output.find("--simd-target"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("choose one of"), std::string::npos) << r.output;
  }
}

TEST(CliBench, DtypeRunsFloatAndBf16InOneProcessAndIsCheckedFirst) {
  const auto bad = run_cli("bench attention --seq 32 --dtype fp16");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--dtype: must be f32, bf16 or both, got 'fp16'"), std::string::npos)
      << bad.output;
  EXPECT_EQ(bad.output.find("machine:"), std::string::npos) << "checked before any work\n"
                                                            << bad.output;
  const auto seq = run_cli("bench sequence-models --seq 10 --batch 0");  // was about --d-model
  EXPECT_EQ(seq.code, 2) << seq.output;
  EXPECT_NE(seq.output.find("--batch: must be >= 1, got 0"), std::string::npos) << seq.output;
  for (const char* flag : {"--heads", "--head-dim", "--batch"}) {  // were a kernel error, exit 1
    const auto r = run_cli(std::string("bench attention --seq 32 ") + flag + " 0");
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find(std::string(flag) + ": must be >= 1, got 0"), std::string::npos)
        << r.output;
  }
  const auto r =
      run_cli("bench attention --seq 48 --heads 2 --repeats 3 --dtype both --backward --json");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = nlohmann::json::parse(r.output);
  ASSERT_EQ(rows.size(), 6u) << r.output;  // fused f32, bf16, reference; fwd and bwd each
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["pass"], i % 2 == 0 ? "fwd" : "bwd") << i;
    EXPECT_GT(rows[i]["best_ms"].get<double>(), 0.0) << i;
    EXPECT_LE(rows[i]["best_ms"].get<double>(), rows[i]["ms"].get<double>()) << i;
  }
  EXPECT_EQ(rows[0]["dtype"], "f32");
  EXPECT_EQ(rows[2]["dtype"], "bf16");
  EXPECT_EQ(rows[2]["kernel"], ops::bf16_dot_products() ? "bf16-native" : "bf16-widen");
  for (size_t i : {2u, 3u}) EXPECT_GT(rows[i]["speedup_vs_f32"].get<double>(), 0.0) << i;
  EXPECT_FALSE(rows[0].contains("speedup_vs_f32"));
  EXPECT_DOUBLE_EQ(rows[2]["kv_mib"].get<double>(), rows[0]["kv_mib"].get<double>() / 2);
  EXPECT_EQ(rows[4]["kernel"], "reference");
  EXPECT_FALSE(rows[4].contains("speedup_vs_f32"));
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
    int code;  // 2: the command line is wrong; 1: the data does not fit it
  };
  for (const auto& c : std::vector<Case>{
           {"--window -3,1", "--window: each side must be >= 0, or -1", 2},
           {"--window 1,2,3", "expected LEFT,RIGHT", 2},
           {"--window a,b", "expected comma-separated integers", 2},
           {"--chunk 0", "chunk size must be >= 1", 2},
           {"--chunk 4,-2", "LEFT_CHUNKS must be >= 0", 2},
           {"--key-lengths 7", "key_lengths has 1 entries but the batch size is 2", 1},
           {"--key-lengths 7,8", "key_lengths[1] = 8 is outside [0, S = 7]", 1},
           {"--dilation 0", "dilation must be >= 1", 2},
           {"--window ''", "--window: expected comma-separated integers, got ''", 2},
           {"--key-lengths ''", "--key-lengths: expected comma-separated integers", 2},
           {"--chunk 4,1,2", "expected SIZE[,LEFT_CHUNKS]", 2},
           {"--bias " + g + "lse.npy", "bias has shape (2, 2, 5)", 1},
           {"--dq /tmp/x.npy", "need --grad-out", 2},
           {"--grad-out " + g + "dout.npy --dbias /tmp/db.npy", "--dbias: needs --bias", 2},
           {"--threads -1", "--threads: must be >= 0", 2},
       }) {
    const auto r = run_cli(base + c.args);
    EXPECT_EQ(r.code, c.code) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.fragment), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("attn: attend: ", 0), 0u) << r.output;
  }
  // Conflicting options are caught before the forward runs: no output file appears.
  const std::string never = ::testing::TempDir() + "/never.npy";
  std::filesystem::remove(never);
  EXPECT_EQ(run_cli("attend --q " + g + "q.npy --k " + g + "k.npy --v " + g + "v.npy --out " +
                    never + " --grad-out " + g + "dout.npy --dbias /tmp/db.npy")
                .code,
            2);
  EXPECT_FALSE(std::filesystem::exists(never));
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

// Inputs and weights holding NaN or Inf are rejected by default, naming the option, the file and
// the first bad index; --allow-non-finite computes with them (docs/masks.md).
TEST(CliNonFinite, RejectsNaNAndInfInInputsAndWeightsUnlessAllowed) {
  const std::string g = golden_path("attention/basic/"), tmp = ::testing::TempDir();
  Tensor q = io::read_npy(g + "q.npy").to_float(), bias(Shape{1, 1, q.dim(2), 7});
  q(1, 0, 2, 3) = std::numeric_limits<float>::quiet_NaN();
  bias(0, 0, 4, 6) = -std::numeric_limits<float>::infinity();
  bias(0, 0, 1, 2) = std::numeric_limits<float>::infinity();
  io::write_npy(tmp + "/q_nan.npy", q.view());
  io::write_npy(tmp + "/bias_inf.npy", bias.view());
  const std::string kv = " --k " + g + "k.npy --v " + g + "v.npy --out " + tmp + "/o.npy";
  auto r = run_cli("attend --q " + tmp + "/q_nan.npy" + kv);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("attn: attend: --q: " + tmp +
                          "/q_nan.npy (shape (2, 2, 5, 4)) holds "
                          "nan at [1, 0, 2, 3]; --allow-non-finite accepts it"),
            std::string::npos)
      << r.output;
  r = run_cli("attend --q " + g + "q.npy" + kv + " --bias " + tmp + "/bias_inf.npy");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("holds inf at [0, 0, 1, 2]"), std::string::npos) << r.output;
  r = run_cli("attend --q " + tmp + "/q_nan.npy" + kv + " --allow-non-finite");
  ASSERT_EQ(r.code, 0) << r.output;
  const Tensor out = io::read_npy(tmp + "/o.npy").to_float();
  EXPECT_TRUE(std::isnan(out(1, 0, 2, 0)));  // the NaN query's row, and no other
  EXPECT_TRUE(std::isfinite(out(1, 0, 1, 0)) && std::isfinite(out(1, 1, 2, 0)));

  const std::string e = golden_path("encode/");
  io::SafetensorsFile weights = io::read_safetensors(e + "weights.safetensors");
  std::vector<io::NamedTensorView> named;
  for (auto& [name, t] : weights.tensors) {
    if (name == "layers.1.linear2.bias") t(5) = std::numeric_limits<float>::quiet_NaN();
    named.push_back({name, t.view()});
  }
  io::write_safetensors(tmp + "/nan.safetensors", named);
  const std::string args = "encode --config " + e + "config.json --weights " + tmp +
                           "/nan.safetensors --input " + e + "input.npy --out " + tmp + "/y.npy";
  r = run_cli(args);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("tensor 'layers.1.linear2.bias' (shape (32,)) holds nan at [5]"),
            std::string::npos)
      << r.output;
  r = run_cli(args + " --allow-non-finite");
  ASSERT_EQ(r.code, 0) << r.output;
  const Tensor y = io::read_npy(tmp + "/y.npy").to_float();  // the final LayerNorm spreads it
  for (float x : y.values()) EXPECT_TRUE(std::isnan(x));
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
    int code = 1;  // a bad file is a runtime error; a bad option value (code 2) says so
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
           {"--config " + g + "config.json" + ok_tail + " --key-lengths 20", "expected 2 lengths",
            2},
           {"--config " + g + "config.json" + ok_tail + " --key-lengths 20,0",
            "each length must be in [1, 20]", 2},
           {"--config " + g + "config.json --weights " + g + "input.npy --input " + g +
                "input.npy --out " + tmp + "/y.npy",
            "read_safetensors"},
           {"--config " + g + "config.json --weights " + g + "weights.safetensors --input " + g +
                "weights.safetensors --out " + tmp + "/y.npy",
            "read_npy"},
       }) {
    const auto r = run_cli("encode " + c.args);
    EXPECT_EQ(r.code, c.code) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("attn: encode: ", 0), 0u) << r.output;
    EXPECT_NE(r.output.find(c.fragment), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace attn::testing

namespace attn::testing {
namespace {

TEST(CliTrain, ValidatesOptionsFirstAndDrawsPlainLinesOffATerminal) {
  const std::string dir = ::testing::TempDir() + "/cli_train";
  // A short run: the default warm-up (100) shrinks to fit; the target is not reached, yet the run
  // completed, so the exit code is 0. Output goes to a pipe: plain progress lines, no \r redraws.
  auto r = run_cli(
      "train copy --steps 4 --eval-every 2 --d-model 16 --heads 2 --ff 16 --layers 1 --batch 4 "
      "--out-dir " +
      dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find('\r'), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("4/4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not reached"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir + "/checkpoint.safetensors"));
  for (const auto& [args, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"--steps 50 --warmup 60", "--warmup: must be at most --steps (50), got 60"},
           {"--target-accuracy 2", "--target-accuracy: must be in (0, 1]"},
           {"--steps 0", "--steps: must be >= 1"},
           {"--threads -2", "--threads: must be >= 0"},
           // The model's sizes and the checkpoint period: were the library's errors, exit 1.
           {"--ff 0", "--ff: must be >= 1, got 0"},
           {"--layers 0", "--layers: must be >= 1, got 0"},
           {"--heads 3",
            "--d-model/--heads: need d-model >= 1 divisible by heads >= 1, got 64 and 3"},
           {"--checkpoint-every -1", "--checkpoint-every: must be >= 0"},
       }) {
    r = run_cli("train reverse " + args + " --out-dir " + dir);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("attn: train reverse: " + fragment, 0), 0u) << args << "\n"
                                                                         << r.output;
  }
}

// --data-parallel: model replicas in threads, each on its share of every step's batch. The same
// run bit for bit with --threads 1 and 2 per replica (on a 2-core machine the second is capped to
// the hardware's share, with a warning: then it is the same run repeated, whose replicas' timing
// differs), the one-process loss curve to rounding, and shards that do not divide the batch refused
// before any work.
TEST(CliTrain, DataParallelReplicasInThreads) {
  const std::string base =
      "train reverse --steps 6 --eval-every 3 --d-model 16 --heads 2 --ff 16 "
      "--layers 1 --batch 8 --quiet --out-dir " +
      ::testing::TempDir() + "/cli_dp";
  auto losses = [](const std::string& dir) {
    std::ifstream f(dir + "/metrics.csv");
    std::string line;
    std::getline(f, line);  // header: step,lr,loss,...
    std::vector<double> out;
    while (std::getline(f, line)) {
      const size_t a = line.find(','), b = line.find(',', a + 1);
      out.push_back(std::stod(line.substr(b + 1, line.find(',', b + 1) - b - 1)));
    }
    return out;
  };
  std::vector<std::vector<double>> runs;
  for (const std::string extra :
       {" --data-parallel 2 --threads 1", " --data-parallel 2 --threads 2", " --threads 1"}) {
    const std::string dir = ::testing::TempDir() + "/cli_dp" + std::to_string(runs.size());
    const auto r = run_cli(base + std::to_string(runs.size()) + extra);
    ASSERT_EQ(r.code, 0) << extra << "\n" << r.output;
    if (extra.find("--data-parallel 2") != std::string::npos) {
      EXPECT_NE(r.output.find("data-parallel over 2 model replicas in threads"), std::string::npos)
          << r.output;
    }
    runs.push_back(losses(dir));
    ASSERT_EQ(runs.back().size(), 6u) << extra;
  }
  EXPECT_EQ(runs[0], runs[1]);
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(runs[0][i], runs[2][i], 1e-5) << "step " << i + 1;
  for (const auto& [args, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"--data-parallel 0", "--data-parallel: must be >= 1, got 0"},
           {"--data-parallel 3", "--batch: must be a multiple of --data-parallel (3), got 8"},
       }) {
    const auto r = run_cli(base + "x " + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("attn: train reverse: " + fragment, 0), 0u) << r.output;
  }
}

TEST(CliAttend, ShowPrintsWhatOneQueryComputed) {
  const std::string g = golden_path("attention/window_dilation/");
  const std::string base = "attend --q " + g + "q.npy --k " + g + "k.npy --v " + g +
                           "v.npy --out " + ::testing::TempDir() +
                           "/show.npy --window 4,2 --dilation 2 --show ";
  const auto r = run_cli(base + "5");
  ASSERT_EQ(r.code, 0) << r.output;
  // Query 5 under window [1, 7] and dilation 2 sees keys 1, 3, 5 and 7 only.
  for (const char* line : {"      1   yes ", "      2   no (masked)   0.0000", "      7   yes ",
                           "      8   no (masked)   0.0000", "weights sum to 1.0000"})
    EXPECT_NE(r.output.find(line), std::string::npos) << line << "\n" << r.output;
  EXPECT_EQ(run_cli(base + "99").code, 2);
}

TEST(CliLimits, SizesAboveTheMemoryBudgetFailAtOnceWithTheSizeNeeded) {
  setenv("ATTN_MEMORY_BUDGET", "1G", 1);  // the children inherit it
  const auto pe = run_cli("pe --dim 3000000000 --pos 1");
  const auto train =
      run_cli("train reverse --seq-len 100000 --out-dir " + ::testing::TempDir() + "/big");
  unsetenv("ATTN_MEMORY_BUDGET");
  EXPECT_EQ(pe.code, 1);
  EXPECT_EQ(pe.output.rfind(
                "attn: pe: Tensor: a tensor of shape (1, 3000000000) needs 22.35 GiB, more than "
                "the memory budget of 1.00 GiB",
                0),
            0u)
      << pe.output;
  EXPECT_EQ(train.code, 1);
  EXPECT_NE(train.output.find("a training step of these sizes needs"), std::string::npos)
      << train.output;
}

TEST(CliBench, CapsThreadsAtTheHardwareWithAWarning) {
  const auto r = run_cli("bench attention --seq 32 --repeats 1 --reference-max 0 --threads 100000");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("attn: bench attention: warning: --threads 100000 is more than the"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("machine: 100000 threads"), std::string::npos) << r.output;
}

// Decoding shapes: --queries T times T queries at the end of the N keys (bottom-right aligned),
// counting only the pairs they see; more queries than keys is a usage error.
TEST(CliBench, QueriesTimeADecodingShape) {
  auto r = run_cli(
      "bench attention --seq 300 --queries 3 --causal --repeats 1 --reference-max 300 --json");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = nlohmann::json::parse(r.output.substr(r.output.find('[')));
  ASSERT_EQ(rows.size(), 2u);  // fused and reference forward
  for (const auto& row : rows) {
    EXPECT_EQ(row["T"], 3);
    EXPECT_EQ(row["N"], 300);
    // 8 heads x (298 + 299 + 300) visible keys x 4·64 flops
    EXPECT_NEAR(row["gflops"].get<double>() * row["ms"].get<double>() * 1e6, 8.0 * 897 * 256, 1.0);
  }
  r = run_cli("bench attention --seq 64 --queries 65 --repeats 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("attn: bench attention: --queries: must be at most each --seq length"),
            std::string::npos)
      << r.output;
}

// The RNN-versus-attention bench: a row per model and length with a time per thread count, JSON
// rows per thread count, the plot written, and its options checked.
TEST(CliBench, SequenceModelsTimesEachModelAndPlots) {
  const std::string png = ::testing::TempDir() + "/sequence-models.png";
  std::filesystem::remove(png);
  auto r = run_cli(
      "bench sequence-models --seq 8,16 --d-model 16 --heads 2 --batch 2 --threads 1 "
      "--repeats 1 --backward --json --plot " +
      png);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = nlohmann::json::parse(r.output.substr(r.output.find('[')));
  ASSERT_EQ(rows.size(), 8u);  // 4 models x 2 lengths x 1 thread count
  std::set<std::string> models;
  for (const auto& row : rows) {
    models.insert(row["model"].get<std::string>());
    EXPECT_GT(row["fwd_ms"].get<double>(), 0.0);
    EXPECT_GT(row["fwd_bwd_ms"].get<double>(), 0.0);
  }
  EXPECT_EQ(models, (std::set<std::string>{"attention", "gru", "lstm", "truncated"}));
  EXPECT_TRUE(std::filesystem::exists(png));
  r = run_cli("bench sequence-models --models lstm,rnn --plot ''");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--models: unknown model 'rnn'"), std::string::npos) << r.output;
  r = run_cli("bench sequence-models --d-model 10 --heads 4 --plot ''");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("divisible by heads"), std::string::npos) << r.output;
  // Options that shape only models left out were ignored without a word.
  r = run_cli("bench sequence-models --models lstm,attention --window 3 --plot ''");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--window: shapes only the truncated model"), std::string::npos)
      << r.output;
  r = run_cli("bench sequence-models --models gru --heads 2 --plot ''");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--heads: shapes only the attention models"), std::string::npos)
      << r.output;
  // Without attention models, the width need not divide by the (default) heads.
  r = run_cli(
      "bench sequence-models --models lstm --seq 4 --d-model 10 --batch 1 --threads 1 --repeats 1 "
      "--plot '' --json");
  EXPECT_EQ(r.code, 0) << r.output;
}

// attn encode on a recurrent config: --lengths checked against the input; the recurrent-only
// options are usage errors on a transformer config, and the attention masks on a recurrent one.
TEST(CliEncode, RecurrentConfigTakesLengthsAndRejectsThemOtherwise) {
  const std::string dir = ::testing::TempDir() + "/encode_rnn";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/config.json") << R"({"type": "gru", "input_size": 4, "hidden_size": 3})";
  }
  Rng rng(1);
  Tensor x(Shape{5, 2, 4});
  for (float& v : x.values()) v = static_cast<float>(rng.normal());
  io::write_npy(dir + "/x.npy", x.view());
  nn::GRU gru({.input_size = 4, .hidden_size = 3}, rng);
  io::write_safetensors(dir + "/w.safetensors", gru.state_dict());
  const std::string base = "encode --config " + dir + "/config.json --weights " + dir +
                           "/w.safetensors --input " + dir + "/x.npy --out " + dir + "/y.npy";
  auto r = run_cli(base + " --lengths 5,2 --state-out " + dir + "/h.npy");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1-layer GRU, hidden 3"), std::string::npos) << r.output;
  EXPECT_EQ(io::read_npy(dir + "/h.npy").shape, (Shape{1, 2, 3}));
  r = run_cli(base + " --lengths 5,6");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("lengths[1] = 6 is not in [1, T = 5]"), std::string::npos) << r.output;
  r = run_cli(base + " --window 3 --causal");  // attention masks were ignored on an RNN
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("are attention masks for transformer encoders"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("got causal window=3"), std::string::npos) << r.output;
  const std::string e = std::string(ATTN_GOLDEN_DIR) + "/encode/";
  r = run_cli("encode --config " + e + "config.json --weights " + e +
              "weights.safetensors --input " + e + "input.npy --out " + dir + "/t.npy --lengths 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("are for recurrent models"), std::string::npos) << r.output;
}

// The RNN-versus-attention experiment end to end on a tiny setting: a table row per model and
// distance, results.csv and accuracy.png written; a bad distance is a usage error.
TEST(CliExperiment, RnnVsAttentionWritesTableCsvAndPlot) {
  const std::string dir = ::testing::TempDir() + "/rnn-vs-attention";
  std::filesystem::remove_all(dir);
  auto r = run_cli(
      "experiment rnn-vs-attention --distances 3,5 --steps 4 --batch 4 --d-model 16 "
      "--quiet --out-dir " +
      dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Claim: an RNN struggles"), std::string::npos) << r.output;
  std::ifstream csv(dir + "/results.csv");
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 1 + 4);  // header, 2 models x 2 distances
  EXPECT_TRUE(std::filesystem::exists(dir + "/accuracy.png"));
  r = run_cli("experiment rnn-vs-attention --distances 0 --out-dir " + dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--distances: distances must be >= 1"), std::string::npos) << r.output;
  // --quick presets only what the line leaves out (it once replaced --steps and --distances).
  r = run_cli(
      "experiment rnn-vs-attention --quick --steps 3 --distances 4 --batch 2 --d-model 8 "
      "--quiet --out-dir " +
      dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("3 steps of batch 2"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\ntransformer      10 "), std::string::npos) << r.output;
}

// Fuzz smoke of the argument parser: random option lists for every subcommand, drawn from its real
// options and from values that are valid, out of range, malformed, empty, or paths that are
// missing, directories or devices. Every run must end with exit code 0, 1 or 2, a nonzero code
// must come with an "attn: " error line, and nothing may crash, abort or trip a sanitizer. Work
// is kept small (train runs 2 steps, bench one tiny case) so that a lucky valid draw is quick.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

TEST(CliFuzz, RandomArgumentListsEndInACleanExitCode) {
  const std::string g = golden_path("attention/basic/"), e = golden_path("encode/"),
                    tmp = ::testing::TempDir();
  const std::vector<std::string> values = {"0",
                                           "1",
                                           "-1",
                                           "3",
                                           "17",
                                           "2,3",
                                           "-3,1",
                                           "4,1,2",
                                           "abc",
                                           "",
                                           ",",
                                           "1,",
                                           "1e9",
                                           "0.5",
                                           "-0.5",
                                           "nan",
                                           "inf",
                                           "99999999999999999999",
                                           "0x10",
                                           "--",
                                           "-",
                                           "/nonexistent/x",
                                           "/tmp",
                                           "/dev/null",
                                           g + "q.npy",
                                           g + "k.npy",
                                           g + "v.npy",
                                           g + "bias.npy",
                                           g + "dout.npy",
                                           e + "config.json",
                                           e + "weights.safetensors",
                                           e + "input.npy",
                                           tmp + "/fuzz_out.npy",
                                           tmp + "/fuzz.png"};
  const std::vector<std::string> mask = {"--causal", "--window",      "--dilation",
                                         "--chunk",  "--key-lengths", "--query-offset",
                                         "--alibi",  "--threads"};
  struct Command {
    std::string prefix;
    std::vector<std::string> options;
  };
  auto with_mask = [&](std::vector<std::string> o) {
    o.insert(o.end(), mask.begin(), mask.end());
    return o;
  };
  const std::vector<Command> commands = {
      {"pe", {"--pos", "--dim", "--positions", "--png", "--base"}},
      {"attend", with_mask({"--q", "--k", "--v", "--out", "--lse", "--probs", "--bias", "--scale",
                            "--reference", "--grad-out", "--dq", "--dk", "--dv", "--dbias",
                            "--show", "--allow-non-finite"})},
      {"encode", with_mask({"--config", "--weights", "--input", "--out", "--non-strict", "--quiet",
                            "--allow-non-finite", "--lengths", "--state-out"})},
      {"bench sequence-models --seq 8 --d-model 8 --heads 2 --batch 1 --repeats 1 --plot ''",
       {"--seq", "--d-model", "--batch", "--heads", "--window", "--threads", "--models",
        "--backward", "--json", "--repeats", "--plot"}},
      {"experiment rnn-vs-attention --distances 2 --steps 2 --batch 2 --d-model 8 --quiet "
       "--out-dir " +
           tmp + "/fuzz_experiment",
       {"--distances", "--steps", "--batch", "--lr", "--seed", "--threads", "--out-dir"}},
      {"bench attention --seq 64 --repeats 1 --reference-max 16",
       with_mask({"--heads", "--head-dim", "--batch", "--backward", "--json"})},
      {"train reverse --steps 2 --eval-every 1 --quiet --out-dir " + tmp + "/fuzz_train",
       {"--vocab", "--seq-len", "--d-model", "--heads", "--ff", "--layers", "--batch", "--warmup",
        "--lr", "--clip", "--target-accuracy", "--seed", "--threads", "--checkpoint-every",
        "--resume"}},
      {"",
       {"pe", "attend", "train", "bench", "encode", "experiment", "--help", "--version",
        "--bogus"}},
  };
  Rng rng(2024);
  auto pick = [&](const auto& v) { return v[rng.next_u64() % v.size()]; };
  std::map<int, int> codes;
  for (int run = 0; run < 120; ++run) {
    const Command& c = commands[static_cast<size_t>(run) % commands.size()];
    std::string args = c.prefix;
    const int n = static_cast<int>(rng.next_u64() % 6);
    for (int i = 0; i < n; ++i) {
      args += " " + pick(c.options);
      if (rng.next_u64() % 4 != 0) args += " " + shell_quote(pick(values));
    }
    if (c.prefix == "attend" && rng.next_u64() % 2)  // often complete enough to get past the parser
      args += " --q " + g + "q.npy --k " + g + "k.npy --v " + g + "v.npy --out " + tmp + "/f.npy";
    const auto r = run_cli(args);
    ++codes[r.code];
    EXPECT_TRUE(r.code == 0 || r.code == 1 || r.code == 2) << args << "\n" << r.output;
    if (r.code != 0) {
      EXPECT_TRUE(r.output.rfind("attn: ", 0) == 0 ||
                  r.output.find("\nattn: ") != std::string::npos)
          << args << "\n"
          << r.output;
    }
    for (const char* bad : {"terminate called", "Sanitizer", "runtime error:", "Aborted"})
      EXPECT_EQ(r.output.find(bad), std::string::npos) << args << "\n" << r.output;
  }
  // The draws reach past the parser: some succeed, most are rejected as usage errors.
  EXPECT_GT(codes[0], 5);
  EXPECT_GT(codes[2], 30);
}

}  // namespace
}  // namespace attn::testing
