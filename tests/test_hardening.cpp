// Hardening: size arithmetic that would wrap modulo 2^64 (or ask for more bytes than one array can
// hold) is refused with a ValueError naming the op and the sizes, never std::bad_alloc, an
// out-of-bounds access or a crash; and the tape's lifetime rules (re-entrant backward, values
// recorded before Tape::clear()). The thread rule of Tape is tested in test_engine.cpp, which runs
// under ThreadSanitizer. No case here allocates more than a few bytes: every refused shape is
// refused before its memory is asked for.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"

using namespace tapegrad;

namespace {
constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
constexpr std::size_t k62 = std::size_t{1} << 62;
}  // namespace

TEST_CASE("hardening: pad refuses a padded size that wraps", "[hardening]") {
    Tensor x = Tensor::of({1.0, 2.0});
    REQUIRE_THROWS_MATCHES(pad(x, 0, 0, kMax, 2.0), ValueError,
                           WhatContains({"pad", "overflows", std::to_string(kMax)}));
    REQUIRE_THROWS_MATCHES(pad(x, 0, kMax, 0), ValueError, WhatContains({"pad", "overflows"}));
    // No wrap, but far more bytes than one array can hold.
    REQUIRE_THROWS_MATCHES(pad(x, 0, k62, 0), ValueError, WhatContains({"pad", "too large"}));
    // An empty x padded along its empty axis: zero elements out, but a row list that cannot exist.
    Tensor e = zeros({0, 3});
    REQUIRE_THROWS_AS(pad(e, 1, k62, 0), ValueError);
}

TEST_CASE("hardening: split refuses sizes whose sum wraps to the axis size", "[hardening]") {
    Tensor x = zeros({5, 2});
    REQUIRE_THROWS_MATCHES(split(x, {2000, kMax - 1994}, 0), ValueError,
                           WhatContains({"split", "sum of the sizes", "overflows", "2000"}));
    Tensor y = zeros({5});
    REQUIRE_THROWS_MATCHES(split(y, {2000, kMax - 1995}, 0), ValueError, WhatContains({"split", "overflows"}));
    // The sum that does not wrap is still checked against the axis.
    REQUIRE_THROWS_AS(split(y, {2, 2}, 0), ShapeError);
}

TEST_CASE("hardening: factories refuse shapes whose byte count cannot be allocated", "[hardening]") {
    REQUIRE_THROWS_MATCHES(zeros({k62}), ValueError, WhatContains({"zeros", "[4611686018427387904]", "too large"}));
    REQUIRE_THROWS_MATCHES(ones({k62}, f64), ValueError, WhatContains({"ones", "too large"}));
    REQUIRE_THROWS_MATCHES(full({2, k62 / 2}, 1.0), ValueError, WhatContains({"full", "too large"}));
    // Elements that fit an index but whose bytes do not (2^61 doubles = 2^64 bytes).
    REQUIRE_THROWS_MATCHES(zeros({std::size_t{1} << 61}, f64), ValueError, WhatContains({"zeros", "8 bytes"}));
    REQUIRE_THROWS_MATCHES(rand({k62}), ValueError, WhatContains({"uniform", "too large"}));
    REQUIRE_THROWS_MATCHES(randn({k62}), ValueError, WhatContains({"randn", "too large"}));
    REQUIRE_THROWS_MATCHES(uniform({k62}, -1.0, 1.0), ValueError, WhatContains({"uniform", "too large"}));
    REQUIRE_THROWS_MATCHES(arange(0.0, 1e300, 1.0), ValueError, WhatContains({"arange", "too many"}));
    REQUIRE_THROWS_MATCHES(LongTensor::zeros({k62}), ValueError, WhatContains({"LongTensor::full", "too large"}));
    REQUIRE_THROWS_MATCHES(BoolTensor::full({k62, 4}, true), ValueError, WhatContains({"BoolTensor::full"}));
    // The shape is compared with the values given before anything is allocated.
    REQUIRE_THROWS_MATCHES(LongTensor::from_vector({1, 2}, {std::size_t{1} << 40}), ValueError,
                           WhatContains({"LongTensor::from_vector", "2 values", "1099511627776"}));
}

TEST_CASE("hardening: joining refuses sizes of empty tensors that add up past 2^64", "[hardening]") {
    // Each [2^62, 0] tensor is empty (no memory), but four of them along axis 0 add up to 2^64.
    Tensor z = zeros({k62, 0});
    REQUIRE_THROWS_MATCHES(concat({z, z, z, z}, 0), ValueError,
                           WhatContains({"concat", "concatenated size", "overflows"}));
    // Two make 2^63: no wrap, but more than an index can hold.
    REQUIRE_THROWS_MATCHES(concat({z, z}, 0), ValueError, WhatContains({"concat", "too large"}));
    LongTensor lz = LongTensor::zeros({k62, 0});
    REQUIRE_THROWS_MATCHES(LongTensor::concat({lz, lz, lz, lz}, 0), ValueError,
                           WhatContains({"LongTensor::concat", "overflows"}));
}

TEST_CASE("hardening: broadcast_to and expand refuse a target too large to allocate", "[hardening]") {
    Tensor x = Tensor::of({1.0});
    REQUIRE_THROWS_MATCHES(broadcast_to(x, {k62}), ValueError, WhatContains({"broadcast_to", "too large"}));
    REQUIRE_THROWS_MATCHES(expand(x, {k62, 2}), ValueError, WhatContains({"expand", "too large"}));
}

TEST_CASE("hardening: a product over an empty inner axis refuses a result too large", "[hardening]") {
    // [M, 0] @ [0, N]: both inputs empty, the [M, N] result of zeros is 2^80 elements.
    Tensor a = zeros({std::size_t{1} << 40, 0});
    Tensor b = zeros({0, std::size_t{1} << 40});
    REQUIRE_THROWS_MATCHES(matmul(a, b), ValueError, WhatContains({"matmul", "too large"}));
    Tensor w = zeros({std::size_t{1} << 40, 0});  // 2^40 output features of no input features
    REQUIRE_THROWS_MATCHES(linear(a, w), ValueError, WhatContains({"linear", "too large"}));
}

TEST_CASE("hardening: one_hot refuses a class count too large", "[hardening]") {
    xt::xarray<std::int64_t> ids = {0, 1};
    REQUIRE_THROWS_MATCHES(one_hot(ids, kMax), ValueError, WhatContains({"one_hot", "num_classes", "too large"}));
    REQUIRE_THROWS_MATCHES(one_hot(ids, k62), ValueError, WhatContains({"one_hot", "too large"}));
}

TEST_CASE("hardening: large-but-fine and zero-size shapes still work", "[hardening]") {
    // Zero-size shapes with huge other axes are valid (no memory). (Ops walk the outer axes of an
    // empty array, so the ones run here get a large-but-walkable outer size.)
    CHECK(zeros({k62, 0}).numel() == 0);
    Tensor z = zeros({1 << 20, 0});
    CHECK(sum(z).item() == 0.0);
    CHECK(concat({z, z}, 1).shape() == Shape{1 << 20, 0});
    CHECK(pad(zeros({0, 3}), 1, 2, 1).shape() == Shape{0, 6});
    CHECK(pad(zeros({0, 3}), 0, 2, 1).shape() == Shape{3, 3});
    CHECK(split(zeros({5, 0}), {2, 3}, 0)[1].shape() == Shape{3, 0});
    CHECK(broadcast_to(zeros({1, 0}), {1 << 20, 0}).numel() == 0);
    CHECK(matmul(zeros({3, 0}), zeros({0, 4})).shape() == Shape{3, 4});
    CHECK(one_hot(xt::xarray<std::int64_t>::from_shape({0}), k62).shape() == Shape{0, k62});
    CHECK(arange(0.0, 0.0, 1.0).numel() == 0);
    // Ordinary sizes, a few million elements.
    Tensor big = ones({1 << 11, 1 << 10});
    CHECK(sum(big).item() == double(1 << 21));
    Tensor p = pad(Tensor::of({1.0, 2.0}), 0, 3, 4, 9.0);
    CHECK(p.shape() == Shape{9});
    CHECK(p.at(3) == 1.0);
    CHECK(p.at(8) == 9.0);
    auto parts = split(arange(0.0, 5.0, 1.0), {2, 3}, 0);
    CHECK(parts[1].at(0) == 2.0);
    CHECK(concat({zeros({2, 3}), ones({4, 3})}, 0).shape() == Shape{6, 3});
    CHECK(stack({zeros({2}), ones({2})}, 0).shape() == Shape{2, 2});
}

// ---- tape lifetime --------------------------------------------------------------------------
TEST_CASE("hardening: a custom backward that runs backward on its own tape is refused", "[hardening][tape]") {
    Tensor x = Tensor::of({1.0, 2.0}, f64, true);
    Tape tape;
    Tensor loss;
    Tensor y = custom_op("reentrant", {x}, Tensor(xt::xarray<double>(x.value<double>() * 2.0)),
                         [&](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
                             tape.backward(loss);  // the mistake: the sweep calling itself
                             return std::vector<Tensor>{g * 2.0};
                         });
    loss = sum(y);
    REQUIRE_THROWS_MATCHES(tape.backward(loss), UsageError,
                           WhatContains({"backward", "already running", "custom_op"}));
    // Through Tensor::backward as well.
    Tape tape2;
    Tensor loss2;
    Tensor y2 = custom_op("reentrant", {x}, Tensor(xt::xarray<double>(x.value<double>() * 2.0)),
                          [&](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
                              loss2.backward();
                              return std::vector<Tensor>{g * 2.0};
                          });
    loss2 = sum(y2);
    REQUIRE_THROWS_MATCHES(loss2.backward(), UsageError, WhatContains({"backward", "already running"}));
}

TEST_CASE("hardening: a backward on another tape inside a custom backward still works", "[hardening][tape]") {
    Tensor x = Tensor::of({1.0, 2.0}, f64, true);
    Tape other;
    Tensor other_loss = sum(x * x);  // recorded on `other`
    Tape tape;                       // innermost: records what follows
    Tensor y = custom_op("double", {x}, Tensor(xt::xarray<double>(x.value<double>() * 2.0)),
                         [&](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
                             other.backward(other_loss);  // another tape's sweep: not re-entrant
                             return std::vector<Tensor>{g * 2.0};
                         });
    tape.backward(sum(y));
    CHECK(x.grad().at(0) == 2.0 * 1.0 + 2.0);
    CHECK(x.grad().at(1) == 2.0 * 2.0 + 2.0);
}

TEST_CASE("hardening: values recorded before Tape::clear() are refused, not silently gradient-free",
          "[hardening][tape]") {
    Tensor w = Tensor::of({1.0, 2.0}, f64, true);
    Tape tape;
    Tensor h = w * 3.0;
    Tensor loss = sum(h);
    tape.clear();
    CHECK(tape.size() == 0);
    REQUIRE_THROWS_MATCHES(loss.backward(), UsageError, WhatContains({"backward", "Tape::clear()", "detach()"}));
    REQUIRE_THROWS_MATCHES(tape.backward(loss), UsageError, WhatContains({"backward", "Tape::clear()"}));
    REQUIRE_THROWS_MATCHES(h * 2.0, UsageError, WhatContains({"mul", "input 0", "Tape::clear()", "detach()"}));
    CHECK_FALSE(w.has_grad());
    // What the message says to do works: the detached value is a constant, new records are fine.
    Tensor l2 = sum(h.detach() * w);
    l2.backward();
    CHECK(w.grad().at(0) == 3.0);
    CHECK(w.grad().at(1) == 6.0);
}

TEST_CASE("hardening: Tape::clear() inside a running backward is refused", "[hardening][tape]") {
    Tensor x = Tensor::of({1.0}, f64, true);
    Tape tape;
    Tensor y = custom_op("clears", {x}, Tensor(x.value<double>()),
                         [&](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
                             tape.clear();
                             return std::vector<Tensor>{g};
                         });
    REQUIRE_THROWS_MATCHES(sum(y).backward(), UsageError, WhatContains({"Tape::clear", "backward"}));
}

// xsimd's exp and tanh convert x / ln 2 to an integer before they select inf or 0 for a large |x|,
// which is undefined behaviour past that integer's range: the UBSan build of this case caught it.
// Every op and fused kernel built on them clamps first; the results are the exact limits.
TEST_CASE("hardening: tanh, sigmoid, exp and the fused kernels take huge and special values", "[hardening]") {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    for (DType dt : {DType::f32, DType::f64}) {
        INFO(dtype_name(dt));
        const double big = dt == DType::f32 ? 3e38 : 1e300;
        // 9 values: more than one SIMD batch of either type, so the vector loop sees them too.
        const Tensor x = Tensor::of({big, -big, 1e30, -1e30, inf, -inf, nan, 0.0, 2e10}, dt);
        const Tensor t = tanh(x), s = sigmoid(x), e = exp(x);
        const std::vector<double> want_t{1, -1, 1, -1, 1, -1, nan, 0, 1}, want_s{1, 0, 1, 0, 1, 0, nan, 0.5, 1},
            want_e{inf, 0, inf, 0, inf, 0, nan, 1, inf};
        for (std::size_t i = 0; i < 9; ++i) {
            INFO("element " << i << " = " << x.at(i));
            for (auto [got, want] : {std::pair{t.at(i), want_t[i]}, std::pair{s.at(i), want_s[i]}, std::pair{e.at(i), want_e[i]}}) {
                if (std::isnan(want)) CHECK(std::isnan(got));
                else CHECK(got == want);
            }
        }
        // The fused LSTM and GRU (sigmoid and tanh kernels) on inputs of 1e30: states saturate.
        for (auto kind : {nn::RecurrentKind::lstm, nn::RecurrentKind::gru}) {
            nn::RecurrentOptions o;
            o.input_size = 3;
            o.hidden_size = 4;
            auto layer = nn::make_recurrent(kind, o);
            layer->to(dt);
            const Tensor in = full({2, 2, 3}, 1e30, dt);
            const nn::RecurrentResult r = (*layer)(in, nn::RecurrentState{});
            for (std::size_t i = 0; i < r.output.numel(); ++i) {
                CHECK(std::isfinite(r.output.at(i)));
                CHECK(std::abs(r.output.at(i)) <= 1.0);
            }
        }
        // cross_entropy's fused softmax (the exp kernel) with logits 1e30 apart.
        const Tensor logits = Tensor::of({{1e30, 0.0, -1e30}, {0.0, 1e30, 5.0}}, dt);
        const Tensor loss = cross_entropy(logits, xt::xarray<std::int64_t>{0, 0});
        // Row 0 picks its best class (loss 0); row 1's target is 1e30 below its best (loss 1e30).
        CHECK(loss.item() == Approx(5e29).epsilon(1e-6));
    }
}
