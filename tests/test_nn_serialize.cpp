// Saving and loading: .npz round trips reproduce outputs exactly, the files are real NumPy .npy
// archives, mismatches are listed, damaged files give clear errors, and no temporary file is left.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
const ScratchDir scratch("tapegrad_test_serialize");
}  // namespace

TEST_CASE("save then load reproduces the model's outputs exactly", "[nn][serialize]") {
    manual_seed(1);
    nn::RNN a({.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true});
    const auto path = scratch("rnn.npz");
    nn::save(a, path.string());
    manual_seed(2);
    nn::RNN b({.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true});
    Generator g(3);
    Tensor x = randn({5, 2, 3}, g);
    CHECK(a(x).output.at(0) != b(x).output.at(0));
    nn::load(b, path.string());
    Tensor ya = a(x).output, yb = b(x).output;
    for (std::size_t i = 0; i < ya.numel(); ++i) CHECK(ya.at(i) == yb.at(i));
    // No temporary files remain next to the saved one.
    std::size_t files = 0;
    for (auto& e : fs::directory_iterator(path.parent_path()))
        if (e.path().filename().string().rfind("rnn.npz", 0) == 0) ++files;
    CHECK(files == 1);
}

TEST_CASE("the archive holds one NumPy .npy entry per parameter", "[nn][serialize]") {
    Tensor w = Tensor::of({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, f64);
    Tensor s = Tensor::scalar(7.5, f32);
    const auto path = scratch("two.npz");
    nn::save_tensors({{"layer.weight", w}, {"scale", s}}, path.string());
    const std::string bytes = read_all(path);
    CHECK(bytes.substr(0, 2) == "PK");  // a zip archive
    CHECK_THAT(bytes, Contains("layer.weight.npy") && Contains("scale.npy"));
    CHECK_THAT(bytes, Contains("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"));
    CHECK_THAT(bytes, Contains("'shape': (), }"));
    const auto back = nn::load_tensors(path.string());
    REQUIRE(back.size() == 2);
    CHECK(back[0].first == "layer.weight");
    CHECK(back[0].second.dtype() == f64);
    CHECK(back[0].second.shape() == Shape{2, 3});
    CHECK(back[0].second.at(5) == 6.0);
    CHECK(back[1].second.shape() == Shape{});
    CHECK(back[1].second.item() == 7.5);
}

TEST_CASE("loading lists every missing, unexpected, misshapen or mistyped entry", "[nn][serialize]") {
    nn::Linear lin(3, 2);
    nn::NamedTensors st = {{"weight", zeros({2, 4})}, {"extra", zeros({1})}};
    REQUIRE_THROWS_WITH(nn::load_state_dict(lin, st),
                        Contains("3 problem(s)") && Contains("'weight' has shape [2, 4] but the model's is [2, 3]") &&
                            Contains("missing 'bias'") && Contains("unexpected 'extra'"));
    nn::NamedTensors typed = {{"weight", zeros({2, 3}, f64)}, {"bias", zeros({2})}};
    REQUIRE_THROWS_WITH(nn::load_state_dict(lin, typed), Contains("'weight' is float64 but the model's is float32"));
    const float before = static_cast<float>(lin.weight.at(0));
    CHECK(lin.weight.at(0) == before);  // nothing changed after a failed load
    const auto path = scratch("lin.npz");
    nn::save_tensors(st, path.string());
    REQUIRE_THROWS_WITH(nn::load(lin, path.string()), Contains(path.string()) && Contains("missing 'bias'"));
}

TEST_CASE("missing, truncated and corrupted files give FormatErrors", "[nn][serialize]") {
    REQUIRE_THROWS_AS(nn::load_tensors(scratch("nope.npz").string()), FormatError);
    nn::Linear lin(3, 2);
    const auto path = scratch("good.npz");
    nn::save(lin, path.string());
    const std::string bytes = read_all(path);
    {
        std::ofstream out(scratch("trunc.npz"), std::ios::binary);
        out << bytes.substr(0, bytes.size() / 2);
    }
    REQUIRE_THROWS_AS(nn::load_tensors(scratch("trunc.npz").string()), FormatError);
    {
        std::ofstream out(scratch("garbage.npz"), std::ios::binary);
        out << "this is not a zip archive at all";
    }
    REQUIRE_THROWS_AS(nn::load_tensors(scratch("garbage.npz").string()), FormatError);
    // A zip whose entry is not a valid .npy (bad magic).
    nn::save_tensors({{"w", zeros({2})}}, scratch("bad_magic.npz").string());
    std::string b = read_all(scratch("bad_magic.npz"));
    const auto pos = b.find("NUMPY");
    REQUIRE(pos != std::string::npos);
    b[pos] = 'X';
    {
        std::ofstream out(scratch("bad_magic.npz"), std::ios::binary);
        out << b;
    }
    REQUIRE_THROWS_AS(nn::load_tensors(scratch("bad_magic.npz").string()), FormatError);
}

TEST_CASE("saving refuses duplicate or empty names and reports unwritable paths", "[nn][serialize]") {
    REQUIRE_THROWS_WITH(nn::save_tensors({{"a", zeros({1})}, {"a", zeros({1})}}, scratch("dup.npz").string()),
                        Contains("'a' appears twice"));
    REQUIRE_THROWS_AS(nn::save_tensors({{"", zeros({1})}}, scratch("empty.npz").string()), ValueError);
    REQUIRE_THROWS_AS(nn::save_tensors({{"a", zeros({1})}}, "/nonexistent-dir/x.npz"), FormatError);
}

TEST_CASE("a model saved with its optimizer resumes training exactly", "[nn][serialize]") {
    auto run_steps = [](nn::Linear& lin, nn::Optimizer& opt, int n, std::uint64_t seed) {
        Generator g(seed);
        for (int i = 0; i < n; ++i) {
            Tensor x = randn({4, 3}, g);
            Tape tape;
            tape.backward(sum(tanh(lin(x))));
            opt.step();
            opt.zero_grad();
        }
    };
    manual_seed(5);
    nn::Linear a(3, 2);
    nn::Adam oa(a.parameters(), {.lr = 0.1});
    run_steps(a, oa, 3, 1);
    const auto path = scratch("with_opt.npz");
    nn::save(a, oa, path.string());
    manual_seed(6);
    nn::Linear b(3, 2);
    nn::Adam ob(b.parameters(), {.lr = 0.1});
    nn::load(b, ob, path.string());
    CHECK(ob.steps() == 3);
    run_steps(a, oa, 2, 2);
    run_steps(b, ob, 2, 2);
    for (std::size_t i = 0; i < a.weight.numel(); ++i) CHECK(a.weight.at(i) == b.weight.at(i));
    // The parameters stay readable by their own names.
    bool found = false;
    for (auto& [n, t] : nn::load_tensors(path.string())) found = found || n == "weight";
    CHECK(found);
    nn::SGD wrong(b.parameters(), {.lr = 0.1, .momentum = 0.9});
    REQUIRE_THROWS_WITH(nn::load(b, wrong, path.string()), Contains("unexpected '0.exp_avg'"));
}
