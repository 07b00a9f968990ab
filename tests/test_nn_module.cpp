// nn::Module bookkeeping, Linear and Embedding: names, modes, dtype conversion, printing,
// values against hand computation, gradients by gradcheck.
#include <catch2/catch.hpp>

#include <cmath>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
struct Tagger : nn::Module {
    nn::Embedding emb{7, 3};
    nn::RNN rnn{{.input_size = 3, .hidden_size = 4}};
    nn::Linear head{4, 2};
    Tagger() {
        register_module("emb", emb);
        register_module("rnn", rnn);
        register_module("head", head);
    }
    std::string type_name() const override { return "Tagger"; }
    Tensor forward(const xt::xarray<std::int64_t>& ids) const { return head(rnn(emb(ids)).output); }
};
}  // namespace

TEST_CASE("named_parameters are dotted and in registration order", "[nn][module]") {
    Tagger m;
    std::vector<std::string> names;
    for (auto& [n, p] : m.named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"emb.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                                            "rnn.bias_hh_l0", "head.weight", "head.bias"});
    CHECK(m.num_parameters() == 7 * 3 + (4 * 3 + 4 * 4 + 4 + 4) + (2 * 4 + 2));
    CHECK(m.parameter("head.bias").shape() == Shape{2});
    REQUIRE_THROWS_WITH(m.parameter("head.nope"), Contains("head.nope") && Contains("head.weight"));
    const std::string s = m.summary();
    CHECK_THAT(s, Contains("Tagger(") && Contains("(emb): Embedding(7, 3)") && Contains("(rnn): RNN(3, 4)") &&
                      Contains("(head): Linear(in_features=4, out_features=2, bias=true)") &&
                      Contains("parameters: 67"));
}

TEST_CASE("train/eval propagate, zero_grad clears, to() converts and back preserves values", "[nn][module]") {
    Tagger m;
    m.eval();
    CHECK_FALSE(m.rnn.is_training());
    m.train();
    CHECK(m.head.is_training());
    xt::xarray<std::int64_t> ids = {{1, 2}, {3, 4}, {5, 6}};
    {
        Tape tape;
        tape.backward(sum(m.forward(ids)));
    }
    for (auto& p : m.parameters()) CHECK(p.has_grad());
    m.zero_grad();
    for (auto& p : m.parameters()) CHECK_FALSE(p.has_grad());
    std::vector<Tensor> before;
    for (auto& p : m.parameters()) before.push_back(p.detach());
    m.to(f64);
    CHECK(m.dtype() == f64);
    CHECK(m.head.weight.dtype() == f64);  // the member handle sees the conversion
    CHECK(m.forward(ids).dtype() == f64);
    m.to(f32);
    const auto after = m.parameters();
    for (std::size_t i = 0; i < before.size(); ++i)
        for (std::size_t k = 0; k < before[i].numel(); ++k) CHECK(after[i].at(k) == before[i].at(k));
}

TEST_CASE("Linear applies to the last axis of any rank", "[nn][linear]") {
    manual_seed(2);
    nn::Linear lin(3, 2);
    lin.to(f64);
    Tensor x = seq({4, 5, 3}, 1);
    Tensor y = lin(x);
    REQUIRE(y.shape() == Shape{4, 5, 2});
    const auto& W = lin.weight.value<double>();
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 5; ++j)
            for (std::size_t o = 0; o < 2; ++o) {
                double e = lin.bias.at(o);
                for (std::size_t k = 0; k < 3; ++k) e += x.value<double>()(i, j, k) * W(o, k);
                CHECK(y.value<double>()(i, j, o) == Approx(e).margin(1e-12));
            }
    const double bound = 1 / std::sqrt(3.0);
    for (std::size_t k = 0; k < 6; ++k) CHECK(std::abs(lin.weight.at(k)) <= bound);
    auto r = nn::gradcheck_module(lin, [&] { return sum(tanh(lin(x))); }, {x});
    INFO(r.message);
    CHECK(r.ok);
    nn::Linear nobias(3, 2, false);
    CHECK(nobias.parameters().size() == 1);
    REQUIRE_THROWS_WITH(lin(zeros({4, 5}, f64)), Contains("Linear(3, 2)") && Contains("[4, 5]"));
}

TEST_CASE("Embedding looks rows up, padding_idx gives zeros and no gradient", "[nn][embedding]") {
    manual_seed(3);
    nn::Embedding emb(5, 3, 0);
    emb.to(f64);
    xt::xarray<std::int64_t> ids = {{1, 0, 4}, {4, 4, 2}};
    Tape tape;
    Tensor y = emb(ids);
    REQUIRE(y.shape() == Shape{2, 3, 3});
    for (std::size_t k = 0; k < 3; ++k) {
        CHECK(y.value<double>()(0, 0, k) == emb.weight.value<double>()(1, k));
        CHECK(y.value<double>()(0, 1, k) == 0.0);
        CHECK(emb.weight.value<double>()(0, k) == 0.0);
    }
    tape.backward(sum(y * y + y));
    const auto& g = emb.weight.grad_value<double>();
    for (std::size_t k = 0; k < 3; ++k) {
        CHECK(g(0, k) == 0.0);  // padding row
        CHECK(g(3, k) == 0.0);  // unused row
        // row 4 is used three times: gradient accumulates 3 * (2w + 1)
        CHECK(g(4, k) == Approx(3 * (2 * emb.weight.value<double>()(4, k) + 1)));
    }
    emb.zero_grad();
    nn::Embedding plain(5, 3);
    plain.to(f64);
    auto r = nn::gradcheck_module(plain, [&] { return sum(tanh(plain(ids))); });
    INFO(r.message);
    CHECK(r.ok);
    REQUIRE_THROWS_AS(nn::Embedding(5, 3, 5), ValueError);
    xt::xarray<std::int64_t> bad = {1, 7};
    REQUIRE_THROWS_WITH(plain(bad), Contains("embedding") && Contains("7"));
}
