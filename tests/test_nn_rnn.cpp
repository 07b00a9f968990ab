// nn::RNNCell and nn::RNN: gradients (float64 gradcheck through the whole unroll), PyTorch's
// conventions (names, shapes, layouts, init), and behaviour: the reverse direction is the forward
// RNN on the reversed sequence, and a padded batch equals each sequence run alone.
#include <catch2/catch.hpp>

#include <cmath>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
}  // namespace

TEST_CASE("RNN parameters have PyTorch's names, shapes and init range", "[nn][rnn]") {
    manual_seed(1);
    nn::RNN rnn({.input_size = 4, .hidden_size = 5, .num_layers = 2, .bidirectional = true});
    const std::vector<std::pair<std::string, Shape>> expect = {
        {"weight_ih_l0", {5, 4}},          {"weight_hh_l0", {5, 5}},          {"bias_ih_l0", {5}},
        {"bias_hh_l0", {5}},               {"weight_ih_l0_reverse", {5, 4}},  {"weight_hh_l0_reverse", {5, 5}},
        {"bias_ih_l0_reverse", {5}},       {"bias_hh_l0_reverse", {5}},       {"weight_ih_l1", {5, 10}},
        {"weight_hh_l1", {5, 5}},          {"bias_ih_l1", {5}},               {"bias_hh_l1", {5}},
        {"weight_ih_l1_reverse", {5, 10}}, {"weight_hh_l1_reverse", {5, 5}}, {"bias_ih_l1_reverse", {5}},
        {"bias_hh_l1_reverse", {5}}};
    const auto named = rnn.named_parameters();
    REQUIRE(named.size() == expect.size());
    const double bound = 1.0 / std::sqrt(5.0);
    for (std::size_t i = 0; i < expect.size(); ++i) {
        CHECK(named[i].first == expect[i].first);
        CHECK(named[i].second.shape() == expect[i].second);
        CHECK(named[i].second.dtype() == f32);
        for (std::size_t k = 0; k < named[i].second.numel(); ++k) CHECK(std::abs(named[i].second.at(k)) <= bound);
    }
    CHECK_THAT(rnn.summary(), Contains("RNN(4, 5, num_layers=2, bidirectional=true)") &&
                                  Contains("weight_ih_l1_reverse: [5, 10]") && Contains("parameters: 280"));
    nn::RNN no_bias({.input_size = 3, .hidden_size = 2, .bias = false});
    CHECK(no_bias.named_parameters().size() == 2);
}

TEST_CASE("same seed, same weights", "[nn][rnn]") {
    manual_seed(7);
    nn::RNN a({.input_size = 3, .hidden_size = 4});
    manual_seed(7);
    nn::RNN b({.input_size = 3, .hidden_size = 4});
    for (std::size_t i = 0; i < a.parameters().size(); ++i)
        CHECK(max_abs_diff(a.parameters()[i], b.parameters()[i]) == 0.0);
    nn::RNN c({.input_size = 3, .hidden_size = 4});
    CHECK(max_abs_diff(a.parameters()[0], c.parameters()[0]) > 0.0);
}

TEST_CASE("RNNCell computes act(x W_ih^T + b_ih + h W_hh^T + b_hh)", "[nn][rnn]") {
    manual_seed(3);
    for (auto act : {nn::Nonlinearity::tanh, nn::Nonlinearity::relu}) {
        nn::RNNCell cell(3, 4, act);
        cell.to(f64);
        Tensor x = seq({2, 3}, 11), h = seq({2, 4}, 12);
        Tensor y = cell(x, h);
        const auto& W = cell.weight_ih.value<double>();
        const auto& U = cell.weight_hh.value<double>();
        for (std::size_t b = 0; b < 2; ++b)
            for (std::size_t j = 0; j < 4; ++j) {
                double pre = cell.bias_ih.at(j) + cell.bias_hh.at(j);
                for (std::size_t k = 0; k < 3; ++k) pre += x.value<double>()(b, k) * W(j, k);
                for (std::size_t k = 0; k < 4; ++k) pre += h.value<double>()(b, k) * U(j, k);
                const double expect = act == nn::Nonlinearity::tanh ? std::tanh(pre) : std::max(pre, 0.0);
                CHECK(y.value<double>()(b, j) == Approx(expect).margin(1e-12));
            }
        // No state given means a zero state.
        CHECK(max_abs_diff(cell(x), cell(x, zeros({2, 4}, f64))) < 1e-15);
    }
}

TEST_CASE("gradcheck: RNNCell w.r.t. parameters, input and state", "[nn][rnn][gradcheck]") {
    manual_seed(4);
    nn::RNNCell cell(3, 4);
    cell.to(f64);
    Tensor x = seq({2, 3}, 21), h = seq({2, 4}, 22);
    auto r = nn::gradcheck_module(cell, [&] { return weighted_sum(cell(x, h), 5); }, {x, h});
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("gradcheck: 2-layer bidirectional RNN, with and without lengths", "[nn][rnn][gradcheck]") {
    manual_seed(5);
    for (auto act : {nn::Nonlinearity::tanh, nn::Nonlinearity::relu}) {
        nn::RNN rnn({.input_size = 2, .hidden_size = 3, .num_layers = 2, .nonlinearity = act, .bidirectional = true});
        rnn.to(f64);
        Tensor x = seq({4, 3, 2}, 31), h0 = seq({4, 3, 3}, 32);
        for (const std::vector<std::int64_t>& lengths : {std::vector<std::int64_t>{}, {4, 2, 3}}) {
            auto r = nn::gradcheck_module(
                rnn,
                [&] {
                    auto [out, hn] = rnn(x, h0, lengths);
                    return weighted_sum(out, 6) + weighted_sum(hn, 7);
                },
                {x, h0});
            INFO(r.message);
            CHECK(r.ok);
            CHECK(r.compared > 100);
        }
    }
}

TEST_CASE("gradcheck: a long unroll (100 steps) in random-direction mode", "[nn][rnn][gradcheck]") {
    manual_seed(6);
    nn::RNN rnn({.input_size = 3, .hidden_size = 4});
    rnn.to(f64);
    Tensor x = seq({100, 2, 3}, 41);
    auto r = nn::gradcheck_module(rnn, [&] { return weighted_sum(rnn(x).output, 8); }, {x},
                                  {.mode = GradcheckOptions::Mode::random_direction, .directions = 2});
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("the reverse direction equals a forward RNN with the _reverse weights on the reversed sequence",
          "[nn][rnn]") {
    manual_seed(8);
    nn::RNN bi({.input_size = 3, .hidden_size = 4, .bidirectional = true});
    nn::RNN uni({.input_size = 3, .hidden_size = 4});
    bi.to(f64);
    uni.to(f64);
    for (const char* n : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}) {
        Tensor dst = uni.parameter(n);
        dst.mutable_array() = bi.parameter(std::string(n) + "_reverse").array();
    }
    Tensor x = seq({5, 2, 3}, 51);
    auto [out, hn] = bi(x);
    auto [rout, rhn] = uni(flip(x, 0));
    CHECK(max_abs_diff(slice(out, -1, 4, 8), flip(rout, 0)) < 1e-12);
    CHECK(max_abs_diff(select(hn, 0, 1), select(rhn, 0, 0)) < 1e-12);
}

TEST_CASE("a padded batch gives the same outputs and gradients as each sequence alone", "[nn][rnn]") {
    manual_seed(9);
    nn::RNN rnn({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
    rnn.to(f64);
    const std::vector<std::int64_t> lengths = {5, 2, 4};
    Tensor x = seq({5, 3, 2}, 61);
    Tape tape;
    auto [out, hn] = rnn(x, Tensor(), lengths);
    tape.backward(weighted_sum(out, 9) + weighted_sum(hn, 10));
    std::vector<Tensor> batch_grads;
    for (auto& p : rnn.parameters()) batch_grads.push_back(p.grad());
    rnn.zero_grad();

    Tensor w_out = seq(out.shape(), 9), w_hn = seq(hn.shape(), 10);
    for (std::size_t b = 0; b < 3; ++b) {
        const long len = lengths[b];
        Tensor xb = slice(slice(x, 1, b, b + 1), 0, 0, len);  // [len, 1, 2]
        auto [ob, hb] = rnn(xb);
        CHECK(max_abs_diff(ob, slice(slice(out, 1, b, b + 1), 0, 0, len)) < 1e-12);
        CHECK(max_abs_diff(hb, slice(hn, 1, b, b + 1)) < 1e-12);
        // Padded steps emit exact zeros.
        if (len < 5) CHECK(max_abs_diff(slice(slice(out, 1, b, b + 1), 0, len, 5), zeros({static_cast<std::size_t>(5 - len), 1, 6}, f64)) == 0);
        Tensor loss = sum(ob * slice(slice(w_out, 1, b, b + 1), 0, 0, len)) + sum(hb * slice(w_hn, 1, b, b + 1));
        tape.backward(loss);
    }
    const auto params = rnn.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
        INFO(params[i].name());
        CHECK(max_abs_diff(params[i].grad(), batch_grads[i]) < 1e-12);
    }
}

TEST_CASE("batch_first is the transposed layout of the same computation", "[nn][rnn]") {
    manual_seed(10);
    nn::RNN a({.input_size = 3, .hidden_size = 2, .num_layers = 2});
    manual_seed(10);
    nn::RNN b({.input_size = 3, .hidden_size = 2, .num_layers = 2, .batch_first = true});
    Tensor x = seq({4, 2, 3}, 71, f32);
    auto [oa, ha] = a(x);
    auto [ob, hb] = b(transpose(x, 0, 1));
    CHECK(ob.shape() == Shape{2, 4, 2});
    CHECK(max_abs_diff(transpose(ob, 0, 1), oa) < 1e-6);
    CHECK(max_abs_diff(hb, ha) < 1e-6);
}

TEST_CASE("RNN output and h_n layouts", "[nn][rnn]") {
    manual_seed(11);
    nn::RNN rnn({.input_size = 3, .hidden_size = 4, .num_layers = 3, .bidirectional = true});
    auto [out, hn] = rnn(seq({6, 5, 3}, 81, f32));
    CHECK(out.shape() == Shape{6, 5, 8});
    CHECK(hn.shape() == Shape{6, 5, 4});
    // Forward half of the last layer's last step is h_n row (num_layers-1)*2; reverse half at step 0.
    CHECK(max_abs_diff(slice(select(out, 0, 5), -1, 0, 4), select(hn, 0, 4)) < 1e-7);
    CHECK(max_abs_diff(slice(select(out, 0, 0), -1, 4, 8), select(hn, 0, 5)) < 1e-7);
}

TEST_CASE("RNN dropout acts between layers in training only", "[nn][rnn]") {
    manual_seed(12);
    nn::RNN rnn({.input_size = 3, .hidden_size = 8, .num_layers = 2, .dropout = 0.5});
    Tensor x = seq({3, 2, 3}, 91, f32);
    rnn.eval();
    Tensor e1 = rnn(x).output, e2 = rnn(x).output;
    CHECK(max_abs_diff(e1, e2) == 0.0);
    rnn.train();
    Tensor t1 = rnn(x).output;
    CHECK(max_abs_diff(t1, e1) > 1e-4);
}

TEST_CASE("RNN rejects bad input with messages naming the problem", "[nn][rnn]") {
    nn::RNN rnn({.input_size = 10, .hidden_size = 4});
    REQUIRE_THROWS_WITH(rnn(zeros({5, 2, 3})), Contains("input.size(-1) must be equal to input_size. Expected 10, got 3"));
    REQUIRE_THROWS_WITH(rnn(zeros({5, 10})), Contains("RNN") && Contains("3 axes") && Contains("[5, 10]"));
    REQUIRE_THROWS_WITH(rnn(zeros({0, 2, 10})), Contains("empty"));
    REQUIRE_THROWS_WITH(rnn(zeros({5, 2, 10}), zeros({2, 2, 4})), Contains("h0") && Contains("[1, 2, 4]"));
    REQUIRE_THROWS_WITH(rnn(zeros({5, 2, 10}), Tensor(), {5, 6}), Contains("lengths[1] = 6") && Contains("[1, 5]"));
    REQUIRE_THROWS_WITH(rnn(zeros({5, 2, 10}), Tensor(), {0, 5}), Contains("lengths[0] = 0"));
    REQUIRE_THROWS_WITH(rnn(zeros({5, 2, 10}), Tensor(), {-1, 5}), Contains("lengths[0] = -1"));
    REQUIRE_THROWS_WITH(rnn(zeros({5, 2, 10}), Tensor(), {5}), Contains("1 lengths") && Contains("batch of 2"));
    REQUIRE_THROWS_AS(rnn(zeros({5, 2, 10}, f64)), DTypeError);
    REQUIRE_THROWS_AS(nn::RNN({.input_size = 0, .hidden_size = 4}), ValueError);
    nn::RNNCell cell(3, 4);
    REQUIRE_THROWS_WITH(cell(zeros({2, 5})), Contains("RNNCell") && Contains("[2, 5]"));
    REQUIRE_THROWS_WITH(cell(zeros({2, 3}), zeros({2, 5})), Contains("[2, 4]") && Contains("[2, 5]"));
}
