// Errors, not crashes: the engine and the op families (elementwise, activation, reduce, shape,
// linalg, functional, random) refuse bad input with a tapegrad::Error subclass whose message names
// the op and the shapes or values involved, and handle empty tensors as PyTorch does. The last test
// case checks every row of docs/errors.md against what the library really prints.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"

using namespace tapegrad;

namespace {
using Ids = xt::xarray<std::int64_t>;

bool all_nan(const Tensor& t) {
    for (std::size_t i = 0; i < t.numel(); ++i)
        if (!std::isnan(t.at(i))) return false;
    return t.numel() > 0;
}
}  // namespace

// ---- engine -------------------------------------------------------------------------------------
TEST_CASE("errors: backward of a non-scalar needs a gradient, and runs once per record", "[errors][engine]") {
    Tensor x = Tensor::of({1.0, 2.0, 3.0}, f64, true);
    Tape tape;
    Tensor y = x * 2.0;
    REQUIRE_THROWS_MATCHES(tape.backward(y), UsageError, WhatContains({"backward", "[3]", "grad_output"}));
    REQUIRE_THROWS_MATCHES(tape.backward(y, Tensor::of({1.0, 1.0}, f64)), ShapeError,
                           WhatContains({"backward", "grad_output has shape [2]", "[3]"}));
    REQUIRE_THROWS_MATCHES(tape.backward(y, Tensor::of({1.0, 1.0, 1.0}, f32)), DTypeError,
                           WhatContains({"backward", "float32", "float64"}));
    Tensor loss = sum(y);
    tape.backward(loss);
    CHECK(x.grad().at(2) == 2.0);
    REQUIRE_THROWS_MATCHES(tape.backward(loss), UsageError, WhatContains({"already released", "retain_graph"}));
    // The released record also refuses to extend: y's history is gone.
    REQUIRE_THROWS_MATCHES(y * 2.0, UsageError, WhatContains({"mul", "input 0", "[3]", "detach()"}));
    CHECK(x.grad().at(2) == 2.0);  // the failed calls added nothing
}

TEST_CASE("errors: a tensor whose tape no longer exists", "[errors][engine]") {
    Tensor x = Tensor::of({1.0, 2.0}, f64, true);
    Tensor y;
    {
        Tape tape;
        y = x * x;
    }
    REQUIRE_THROWS_MATCHES(y.backward(Tensor::of({1.0, 1.0}, f64)), UsageError,
                           WhatContains({"backward", "no longer exists"}));
    Tape tape;
    REQUIRE_THROWS_MATCHES(y + x, UsageError, WhatContains({"add", "input 0 (shape [2])", "no longer exists",
                                                            "detach()"}));
    // Its value is still usable as a constant, which is what detach() says.
    Tensor z = sum(y.detach() * x);
    tape.backward(z);
    CHECK(x.grad().at(1) == 4.0);
}

TEST_CASE("errors: engine misuse is a UsageError naming what was misused", "[errors][engine]") {
    Tensor x = Tensor::of({1.0, 2.0}, f64, true);
    {
        Tape tape;
        Tensor y = x * x;
        x.mutable_value<double>()(0) = 5.0;  // the saved input changed under the record
        REQUIRE_THROWS_MATCHES(tape.backward(sum(y)), UsageError, WhatContains({"mul", "modified in place"}));
    }
    REQUIRE_THROWS_MATCHES(Tensor::of({1.0}).grad_value<float>(), UsageError, WhatContains({"grad_value"}));
    REQUIRE_THROWS_MATCHES(zeros({2}).backward(), UsageError, WhatContains({"does not require grad", "[2]"}));
    Tape tape;
    Tensor y = x * 2.0;
    REQUIRE_THROWS_MATCHES(y.set_requires_grad(false), UsageError, WhatContains({"set_requires_grad", "leaves"}));
    REQUIRE_THROWS_MATCHES(tanh(Tensor()), UsageError, WhatContains({"tanh", "undefined"}));
    REQUIRE_THROWS_MATCHES(Tensor().shape(), UsageError, WhatContains({"shape", "undefined"}));
    REQUIRE_THROWS_MATCHES(zeros({2, 2}).item(), ValueError, WhatContains({"item", "[2, 2]", "4 elements"}));
    REQUIRE_THROWS_MATCHES(zeros({2, 2}).at(4), ValueError, WhatContains({"at", "4", "[2, 2]"}));
    REQUIRE_THROWS_MATCHES(zeros({2}).value<double>(), DTypeError, WhatContains({"float64", "float32"}));
}

// ---- elementwise --------------------------------------------------------------------------------
TEST_CASE("errors: elementwise ops refuse shapes that do not broadcast and mixed dtypes", "[errors][elementwise]") {
    const Tensor a = zeros({2, 3}), b = zeros({4}), c64 = zeros({2, 3}, f64);
    using Binary = Tensor (*)(const Tensor&, const Tensor&);
    const std::vector<std::pair<const char*, Binary>> ops{
        {"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}, {"maximum", maximum}, {"minimum", minimum},
        {"pow", [](const Tensor& x, const Tensor& y) { return pow(x, y); }}};
    for (const auto& [name, op] : ops) {
        INFO(name);
        REQUIRE_THROWS_MATCHES(op(a, b), ShapeError, WhatContains({name, "[2, 3]", "[4]", "3 vs 4"}));
        REQUIRE_THROWS_MATCHES(op(a, c64), DTypeError, WhatContains({name, "float32", "float64"}));
        REQUIRE_THROWS_MATCHES(op(a, Tensor()), UsageError, WhatContains({name, "second input", "undefined"}));
    }
    REQUIRE_THROWS_MATCHES(a * 2.0 + c64, DTypeError, WhatContains({"add", "float32", "float64"}));
    REQUIRE_THROWS_MATCHES(where(zeros({2}), zeros({3}), zeros({4})), ShapeError,
                           WhatContains({"where", "mask [2]", "a [3]", "b [4]"}));
    REQUIRE_THROWS_MATCHES(where(zeros({3}), zeros({3}), zeros({3}, f64)), DTypeError, WhatContains({"where"}));
    REQUIRE_THROWS_MATCHES(clamp(a, 1.0, 0.0), ValueError, WhatContains({"clamp", "min 1", "max 0", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(clamp(a, NAN, 1.0), ValueError, WhatContains({"clamp", "nan"}));
}

TEST_CASE("errors: elementwise ops take zero-size tensors, broadcasting included, as PyTorch", "[errors][elementwise]") {
    Tensor e = zeros({0, 3}, f64, true), row = Tensor::of({1.0, 2.0, 3.0}, f64, true);
    Tape tape;
    for (const Tensor& y : {e + row, e * row, e / row, maximum(e, row), pow(e, row), where(e, e, row), exp(e),
                            log(e), sqrt(e), abs(e), pow(e, 2.0), clamp(e, -1, 1), -e}) {
        CHECK(y.shape() == Shape{0, 3});
        CHECK(y.numel() == 0);
    }
    // The gradient of a broadcast row over zero rows is zeros of the row's shape.
    tape.backward(sum(e * row));
    REQUIRE(row.has_grad());
    CHECK(row.grad().shape() == Shape{3});
    for (std::size_t i = 0; i < 3; ++i) CHECK(row.grad().at(i) == 0.0);
    CHECK(e.grad().shape() == Shape{0, 3});
    // [0] against [1] broadcasts to [0]; [0] against [2] does not broadcast.
    CHECK((zeros({0}) + zeros({1})).shape() == Shape{0});
    REQUIRE_THROWS_MATCHES(zeros({0}) + zeros({2}), ShapeError, WhatContains({"add", "[0]", "[2]"}));
}

// ---- activation ---------------------------------------------------------------------------------
TEST_CASE("errors: activations name themselves, take empty tensors and pass NaN through", "[errors][activation]") {
    using Unary = std::function<Tensor(const Tensor&)>;
    const std::vector<std::pair<const char*, Unary>> acts{
        {"tanh", [](const Tensor& x) { return tanh(x); }},
        {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
        {"relu", [](const Tensor& x) { return relu(x); }},
        {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.01); }},
        {"hardtanh", [](const Tensor& x) { return hardtanh(x, -1, 1); }},
        {"softplus", [](const Tensor& x) { return softplus(x, 1, 20); }}};
    for (const auto& [name, f] : acts) {
        INFO(name);
        REQUIRE_THROWS_MATCHES(f(Tensor()), UsageError, WhatContains({name, "undefined"}));
        Tensor e = zeros({2, 0}, f64, true);
        Tape tape;
        Tensor y = f(e);
        CHECK(y.shape() == Shape{2, 0});
        tape.backward(sum(y));
        CHECK(e.grad().shape() == Shape{2, 0});
        CHECK(all_nan(f(Tensor::of({NAN, NAN}))));
    }
    REQUIRE_THROWS_MATCHES(hardtanh(zeros({3}), 1, 0), ValueError, WhatContains({"hardtanh", "min 1", "max 0"}));
    REQUIRE_THROWS_MATCHES(softplus(zeros({3}), 0, 20), ValueError, WhatContains({"softplus", "beta", "got 0"}));
    REQUIRE_THROWS_MATCHES(softplus(zeros({3}), NAN, 20), ValueError, WhatContains({"softplus", "beta"}));
}

// ---- reduce -------------------------------------------------------------------------------------
TEST_CASE("errors: reductions check their axes", "[errors][reduce]") {
    const Tensor x = zeros({2, 3});
    REQUIRE_THROWS_MATCHES(sum(x, 2), ShapeError, WhatContains({"sum", "axis 2", "[2, 3]", "-2 to 1"}));
    REQUIRE_THROWS_MATCHES(mean(x, -3), ShapeError, WhatContains({"mean", "axis -3", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(max(x, 5), ShapeError, WhatContains({"max", "axis 5"}));
    REQUIRE_THROWS_MATCHES(logsumexp(x, 2), ShapeError, WhatContains({"logsumexp", "axis 2"}));
    REQUIRE_THROWS_MATCHES(norm(x, 2), ShapeError, WhatContains({"norm", "axis 2"}));
    REQUIRE_THROWS_MATCHES(sum(x, {0, -2}), ShapeError, WhatContains({"sum", "twice", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(sum(Tensor::scalar(1.0), 0), ShapeError, WhatContains({"sum", "shape []"}));
}

TEST_CASE("errors: reductions of empty tensors follow PyTorch", "[errors][reduce]") {
    Tensor e = zeros({0, 3}, f64, true);
    Tape tape;
    CHECK(sum(e).item() == 0.0);
    CHECK(std::isnan(mean(e).item()));  // PyTorch: nan, not an error
    CHECK(logsumexp(e).item() == -INFINITY);
    CHECK(norm(e).item() == 0.0);
    REQUIRE_THROWS_MATCHES(max(e), ShapeError, WhatContains({"max", "axis 0", "[0, 3]", "empty"}));
    REQUIRE_THROWS_MATCHES(min(e, 0), ShapeError, WhatContains({"min", "axis 0", "[0, 3]", "empty"}));
    // Reducing a non-empty axis of an empty tensor is fine: the result is empty too.
    CHECK(max(e, 1).shape() == Shape{0});
    CHECK(sum(e, 0).shape() == Shape{3});
    CHECK(sum(e, 1, true).shape() == Shape{0, 1});
    tape.backward(sum(sum(e, 0) * 2.0));
    CHECK(e.grad().shape() == Shape{0, 3});
}

// ---- shape --------------------------------------------------------------------------------------
TEST_CASE("errors: shape ops name themselves and the shapes", "[errors][shape]") {
    const Tensor x = zeros({2, 3});
    REQUIRE_THROWS_MATCHES(reshape(x, {4, -1}), ShapeError, WhatContains({"reshape", "[2, 3]", "[4, -1]"}));
    REQUIRE_THROWS_MATCHES(reshape(x, {4, 2}), ShapeError, WhatContains({"reshape", "6 elements", "8 elements"}));
    REQUIRE_THROWS_MATCHES(reshape(x, {-2, 3}), ShapeError, WhatContains({"reshape", "negative size -2"}));
    REQUIRE_THROWS_MATCHES(squeeze(x, 0), ShapeError, WhatContains({"squeeze", "axis 0", "size 2"}));
    REQUIRE_THROWS_MATCHES(unsqueeze(x, 4), ShapeError, WhatContains({"unsqueeze", "axis 4"}));
    REQUIRE_THROWS_MATCHES(transpose(zeros({3}), -2, -1), ShapeError, WhatContains({"transpose", "[3]"}));
    REQUIRE_THROWS_MATCHES(permute(x, {0}), ShapeError, WhatContains({"permute", "[2, 3]", "[0]"}));
    REQUIRE_THROWS_MATCHES(permute(x, {1, 1}), ShapeError, WhatContains({"permute", "twice"}));
    REQUIRE_THROWS_MATCHES(broadcast_to(x, {3, 3}), ShapeError, WhatContains({"broadcast_to", "[2, 3]", "[3, 3]"}));
    REQUIRE_THROWS_MATCHES(expand(x, {3}), ShapeError, WhatContains({"expand", "fewer axes"}));
    REQUIRE_THROWS_MATCHES(select(x, 1, 3), ShapeError, WhatContains({"select", "index 3", "size 3", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(select(x, 0, -3), ShapeError, WhatContains({"select", "index -3"}));
    REQUIRE_THROWS_MATCHES(slice(x, 0, 0, 2, 0), ValueError, WhatContains({"slice", "step 0"}));
    REQUIRE_THROWS_MATCHES(index_select(x, 1, {0, 3}), ValueError, WhatContains({"index_select", "index 3", "0 to 2"}));
    REQUIRE_THROWS_MATCHES(index_select(x, 0, {-1}), ValueError, WhatContains({"index_select", "index -1"}));
    REQUIRE_THROWS_MATCHES(gather(x, 1, Ids{{0, 3}}), ValueError, WhatContains({"gather", "index 3", "[0, 1]"}));
    REQUIRE_THROWS_MATCHES(gather(x, 1, Ids{0, 1}), ShapeError, WhatContains({"gather", "rank"}));
    REQUIRE_THROWS_MATCHES(flip(x, 2), ShapeError, WhatContains({"flip", "axis 2"}));
    REQUIRE_THROWS_MATCHES(pad(x, 3, 1, 1), ShapeError, WhatContains({"pad", "axis 3"}));
    REQUIRE_THROWS_MATCHES(stack({zeros({2}), zeros({3})}, 0), ShapeError, WhatContains({"stack", "[3]", "[2]"}));
    REQUIRE_THROWS_MATCHES(stack({zeros({2}), zeros({2}, f64)}, 0), DTypeError,
                           WhatContains({"stack", "float64", "float32"}));
    REQUIRE_THROWS_MATCHES(stack({}, 0), ValueError, WhatContains({"stack", "empty list"}));
    REQUIRE_THROWS_MATCHES(concat({x, zeros({2, 4})}, 0), ShapeError, WhatContains({"concat", "[2, 4]", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(concat({x, zeros({2, 3}, f64)}, 0), DTypeError, WhatContains({"concat", "float64"}));
    REQUIRE_THROWS_MATCHES(concat({x, zeros({3})}, 0), ShapeError, WhatContains({"concat", "[3]"}));
    REQUIRE_THROWS_MATCHES(split(x, {1, 1}, 1), ShapeError, WhatContains({"split", "sum to 2", "size 3"}));
    REQUIRE_THROWS_MATCHES(chunk(x, 0, 0), ValueError, WhatContains({"chunk", "0 chunks"}));
}

TEST_CASE("errors: a shape whose sizes overflow a 64-bit index is refused, even when it is empty", "[errors][shape]") {
    // Empty, so nothing would be allocated; but the strides are products of the sizes and overflow.
    const Shape huge{0, std::size_t{1} << 40, std::size_t{1} << 40};
    REQUIRE_THROWS_MATCHES(zeros(huge), ValueError,
                           WhatContains({"zeros", "[0, 1099511627776, 1099511627776]", "overflows"}));
    REQUIRE_THROWS_MATCHES(randn(huge), ValueError, WhatContains({"randn", "overflows"}));
    REQUIRE_THROWS_MATCHES(rand(huge), ValueError, WhatContains({"uniform", "overflows"}));
    const Tensor e = zeros({0});
    REQUIRE_THROWS_MATCHES(broadcast_to(e, huge), ValueError, WhatContains({"broadcast_to", "overflows"}));
    REQUIRE_THROWS_MATCHES(reshape(e, {0, 1L << 40, 1L << 40}), ValueError, WhatContains({"reshape", "overflows"}));
    // 2^32 * 2^32 wraps to 0 in 64 bits, which equals the element count of e: it must not pass.
    REQUIRE_THROWS_MATCHES(reshape(e, {1L << 32, 1L << 32}), ValueError, WhatContains({"reshape", "overflows"}));
    REQUIRE_THROWS_MATCHES(reshape(e, {0, 1L << 40, 1L << 40, -1}), ValueError, WhatContains({"reshape", "overflows"}));
    // Sizes whose product fits are fine when one of them is zero.
    CHECK(zeros({0, std::size_t{1} << 31, std::size_t{1} << 31}).numel() == 0);
    CHECK(reshape(e, {1L << 31, 0, 1L << 31}).shape() == Shape{std::size_t{1} << 31, 0, std::size_t{1} << 31});
}

TEST_CASE("errors: token ids out of range are refused by embedding and one_hot", "[errors][shape]") {
    const Tensor table = zeros({5, 4});
    REQUIRE_THROWS_MATCHES(embedding(table, Ids{1, 5}), ValueError,
                           WhatContains({"embedding", "id 5", "position [1]", "[5, 4]", "0 to 4"}));
    REQUIRE_THROWS_MATCHES(embedding(table, Ids{{0, 1}, {-1, 2}}), ValueError,
                           WhatContains({"embedding", "id -1", "position [1, 0]", "ids [2, 2]"}));
    REQUIRE_THROWS_MATCHES(embedding(zeros({5}), Ids{1}), ShapeError, WhatContains({"embedding", "[V, E]", "[5]"}));
    REQUIRE_THROWS_MATCHES(embedding(zeros({0, 4}), Ids{0}), ValueError, WhatContains({"embedding", "empty"}));
    REQUIRE_THROWS_MATCHES(one_hot(Ids{0, 4}, 4), ValueError, WhatContains({"one_hot", "id 4", "num_classes 4"}));
    REQUIRE_THROWS_MATCHES(one_hot(Ids{-1}, 4), ValueError, WhatContains({"one_hot", "id -1", "0 to 3"}));
    // No ids is not an error: the result has no rows.
    CHECK(embedding(table, Ids::from_shape({0})).shape() == Shape{0, 4});
    CHECK(one_hot(Ids::from_shape({0}), 4).shape() == Shape{0, 4});
}

TEST_CASE("errors: shape ops take zero-size axes", "[errors][shape]") {
    Tensor e = zeros({0, 3}, f64, true);
    Tape tape;
    CHECK(reshape(e, {3, 0}).shape() == Shape{3, 0});
    CHECK(transpose(e, 0, 1).shape() == Shape{3, 0});
    CHECK(slice(e, 0, 0, 5).shape() == Shape{0, 3});
    CHECK(flip(e, 0).shape() == Shape{0, 3});
    CHECK(concat({e, zeros({2, 3}, f64)}, 0).shape() == Shape{2, 3});
    CHECK(stack({e, e}, 1).shape() == Shape{0, 2, 3});
    CHECK(split(e, {0}, 0).size() == 1);
    CHECK(pad(e, 0, 1, 1).shape() == Shape{2, 3});
    CHECK(index_select(e, 1, {2, 0}).shape() == Shape{0, 2});
    REQUIRE_THROWS_MATCHES(select(e, 0, 0), ShapeError, WhatContains({"select", "size 0"}));
    REQUIRE_THROWS_MATCHES(index_select(e, 0, {0}), ValueError, WhatContains({"index_select", "the axis is empty"}));
    Tensor y = pad(e, 0, 1, 1);
    tape.backward(sum(y));
    CHECK(e.grad().shape() == Shape{0, 3});
}

// ---- linalg -------------------------------------------------------------------------------------
TEST_CASE("errors: matmul, linear and outer check shapes and dtypes", "[errors][linalg]") {
    REQUIRE_THROWS_MATCHES(matmul(zeros({2, 3}), zeros({4, 5})), ShapeError,
                           WhatContains({"matmul", "[2, 3] @ [4, 5]", "3 and 4"}));
    REQUIRE_THROWS_MATCHES(matmul(zeros({3}), zeros({3, 5})), ShapeError, WhatContains({"matmul", "at least 2 axes"}));
    REQUIRE_THROWS_MATCHES(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})), ShapeError, WhatContains({"matmul", "batch"}));
    REQUIRE_THROWS_MATCHES(matmul(zeros({2, 3}), zeros({3, 4}, f64)), DTypeError,
                           WhatContains({"matmul", "float32", "float64"}));
    REQUIRE_THROWS_MATCHES(linear(zeros({2, 3}), zeros({4, 5}), Tensor()), ShapeError,
                           WhatContains({"linear", "input [2, 3]", "weight [4, 5]", "3", "5"}));
    REQUIRE_THROWS_MATCHES(linear(zeros({2, 3}), zeros({4, 3}), zeros({5})), ShapeError,
                           WhatContains({"linear", "bias [5]", "must be [4]"}));
    REQUIRE_THROWS_MATCHES(linear(zeros({2, 3}), zeros({4, 3}, f64), Tensor()), DTypeError,
                           WhatContains({"linear", "float64"}));
    REQUIRE_THROWS_MATCHES(linear(zeros({2, 3}), zeros({4, 3}), zeros({4}, f64)), DTypeError,
                           WhatContains({"linear", "float64"}));
    REQUIRE_THROWS_MATCHES(linear(Tensor::scalar(1.0), zeros({4, 3}), Tensor()), ShapeError, WhatContains({"linear"}));
    REQUIRE_THROWS_MATCHES(outer(zeros({2, 2}), zeros({2})), ShapeError, WhatContains({"outer", "[2, 2]", "1-D"}));
    REQUIRE_THROWS_MATCHES(outer(zeros({2}), zeros({2}, f64)), DTypeError, WhatContains({"outer"}));
}

TEST_CASE("errors: a product over an empty inner axis is zeros, as in PyTorch", "[errors][linalg]") {
    Tensor a = zeros({2, 0}, f64, true), b = zeros({0, 3}, f64, true);
    Tape tape;
    Tensor y = matmul(a, b);
    REQUIRE(y.shape() == Shape{2, 3});
    for (std::size_t i = 0; i < y.numel(); ++i) CHECK(y.at(i) == 0.0);
    tape.backward(sum(y));
    CHECK(a.grad().shape() == Shape{2, 0});
    CHECK(b.grad().shape() == Shape{0, 3});
    // linear with no input features leaves the bias; with no rows, an empty result.
    Tensor bias = Tensor::of({1.0, 2.0}, f64);
    Tensor l = linear(zeros({3, 0}, f64), zeros({2, 0}, f64), bias);
    REQUIRE(l.shape() == Shape{3, 2});
    CHECK(l.at(0) == 1.0);
    CHECK(l.at(5) == 2.0);
    CHECK(linear(zeros({0, 4}), zeros({2, 4}), zeros({2})).shape() == Shape{0, 2});
    CHECK(matmul(zeros({0, 3}), zeros({3, 2})).shape() == Shape{0, 2});
    CHECK(outer(zeros({0}), zeros({3})).shape() == Shape{0, 3});
}

// ---- functional ---------------------------------------------------------------------------------
TEST_CASE("errors: losses check shapes, dtypes and targets", "[errors][functional]") {
    const Tensor logits = zeros({2, 3});
    REQUIRE_THROWS_MATCHES(softmax(logits, 2), ShapeError, WhatContains({"softmax", "axis 2", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(log_softmax(Tensor::scalar(1.0), -1), ShapeError, WhatContains({"log_softmax"}));
    REQUIRE_THROWS_MATCHES(cross_entropy(logits, Ids{0, 3}), ValueError,
                           WhatContains({"cross_entropy", "target 3", "position [1]", "C = 3", "0 to 2"}));
    REQUIRE_THROWS_MATCHES(cross_entropy(logits, Ids{-2, 0}), ValueError,
                           WhatContains({"cross_entropy", "target -2", "position [0]"}));
    REQUIRE_THROWS_MATCHES(cross_entropy(logits, Ids{0, 1, 2}), ShapeError,
                           WhatContains({"cross_entropy", "logits [2, 3]", "targets [3]"}));
    REQUIRE_THROWS_MATCHES(cross_entropy(Tensor::scalar(1.0), Ids{0}), ShapeError,
                           WhatContains({"cross_entropy", "no class axis"}));
    REQUIRE_THROWS_MATCHES(cross_entropy(logits, Ids{0, 1}, {.weight = zeros({3})}), ShapeError,
                           WhatContains({"cross_entropy", "weight [3]", "[2]"}));
    REQUIRE_THROWS_MATCHES(nll_loss(logits, Ids{0, 3}), ValueError, WhatContains({"nll_loss", "target 3", "log_probs"}));
    REQUIRE_THROWS_MATCHES(mse_loss(zeros({2}), zeros({3})), ShapeError, WhatContains({"mse_loss", "[2]", "[3]"}));
    REQUIRE_THROWS_MATCHES(mse_loss(zeros({2}), zeros({2}, f64)), DTypeError, WhatContains({"mse_loss", "float64"}));
    REQUIRE_THROWS_MATCHES(binary_cross_entropy_with_logits(zeros({2}), zeros({2, 1})), ShapeError,
                           WhatContains({"binary_cross_entropy_with_logits", "[2, 1]"}));
    REQUIRE_THROWS_MATCHES(binary_cross_entropy_with_logits(zeros({2}), zeros({2}, f64)), DTypeError,
                           WhatContains({"binary_cross_entropy_with_logits"}));
    REQUIRE_THROWS_MATCHES(binary_cross_entropy_with_logits(zeros({2}), Tensor::of({0.0, NAN})), ValueError,
                           WhatContains({"binary_cross_entropy_with_logits", "nan", "position [1]"}));
    REQUIRE_THROWS_MATCHES(dropout(zeros({2}), 1.5, true), ValueError, WhatContains({"dropout", "1.5"}));
    REQUIRE_THROWS_MATCHES(dropout(zeros({2}), NAN, true), ValueError, WhatContains({"dropout", "nan"}));
}

TEST_CASE("errors: cross_entropy propagates NaN logits instead of failing", "[errors][functional]") {
    Tensor logits = Tensor::of({{0.0, NAN, 1.0}, {0.5, 0.25, 0.0}}, f64, true);
    Tape tape;
    Tensor per_row = cross_entropy(logits, Ids{2, 0}, {.reduction = Reduction::none});
    CHECK(std::isnan(per_row.at(0)));
    CHECK(std::isfinite(per_row.at(1)));  // the other row is untouched
    Tensor loss = cross_entropy(logits, Ids{2, 0});
    CHECK(std::isnan(loss.item()));
    tape.backward(loss);
    CHECK(std::isnan(logits.grad().at(0)));
    // An ignored row's NaN logits reach neither the loss nor the gradient.
    logits.zero_grad();
    Tensor masked = cross_entropy(logits, Ids{-100, 0});
    CHECK(std::isfinite(masked.item()));
    tape.backward(masked);
    for (std::size_t i = 0; i < 3; ++i) CHECK(logits.grad().at(i) == 0.0);
}

TEST_CASE("errors: losses over no rows: the mean is NaN and the sum 0, as in PyTorch", "[errors][functional]") {
    Tensor logits = zeros({0, 4}, f64, true);
    Tape tape;
    CHECK(std::isnan(cross_entropy(logits, Ids::from_shape({0})).item()));
    Tensor s = cross_entropy(logits, Ids::from_shape({0}), {.reduction = Reduction::sum});
    CHECK(s.item() == 0.0);
    tape.backward(s);
    CHECK(logits.grad().shape() == Shape{0, 4});
    CHECK(std::isnan(mse_loss(zeros({0}), zeros({0})).item()));
    CHECK(softmax(zeros({2, 0}), -1).shape() == Shape{2, 0});
    CHECK(log_softmax(zeros({0, 3}), -1).shape() == Shape{0, 3});
}

// ---- random -------------------------------------------------------------------------------------
TEST_CASE("errors: random factories and the generator check their arguments", "[errors][random]") {
    Generator gen(1);
    REQUIRE_THROWS_MATCHES(uniform({2}, 1.0, 0.0, gen), ValueError, WhatContains({"uniform", "[1, 0)", "[2]"}));
    REQUIRE_THROWS_MATCHES(uniform({2}, 0.0, INFINITY, gen), ValueError, WhatContains({"uniform", "finite"}));
    REQUIRE_THROWS_MATCHES(gen.randint(0), ValueError, WhatContains({"randint", "empty"}));
    REQUIRE_THROWS_MATCHES(gen.set_state("not a state"), ValueError, WhatContains({"set_state"}));
    REQUIRE_THROWS_MATCHES(arange(0, 1, 0), ValueError, WhatContains({"arange", "step 0"}));
    CHECK(rand({0, 3}, gen).shape() == Shape{0, 3});
}

// ---- docs/errors.md -----------------------------------------------------------------------------
namespace {
// What a row of the table says: the exception type's name and the message, verbatim.
struct DocRow {
    std::string type, message;
};

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}
std::string unquote(const std::string& s) {  // `text` -> text
    return s.size() >= 2 && s.front() == '`' && s.back() == '`' ? s.substr(1, s.size() - 2) : s;
}

// The rows of the table "| area | case | exception type | example message |", keyed by case.
std::map<std::string, DocRow> read_error_table(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    std::map<std::string, DocRow> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("| ", 0) != 0) continue;
        std::vector<std::string> cells;
        std::size_t pos = 1;
        // Messages are in backticks and never contain " | ", so the cells split on it.
        while (pos < line.size()) {
            std::size_t next = line.find(" |", pos);
            if (next == std::string::npos) break;
            cells.push_back(trim(line.substr(pos, next - pos)));
            pos = next + 2;
        }
        if (cells.size() != 4 || cells[0] == "area" || cells[0].rfind("---", 0) == 0) continue;
        INFO(line);
        CHECK(rows.count(cells[1]) == 0);  // each case once
        rows[cells[1]] = DocRow{unquote(cells[2]), unquote(cells[3])};
    }
    return rows;
}

// Runs f, which must throw a tapegrad::Error, and returns its most derived type's name and message.
DocRow thrown(const std::function<void()>& f) {
    try {
        f();
    } catch (const ShapeError& e) {
        return {"ShapeError", e.what()};
    } catch (const DTypeError& e) {
        return {"DTypeError", e.what()};
    } catch (const UsageError& e) {
        return {"UsageError", e.what()};
    } catch (const ValueError& e) {
        return {"ValueError", e.what()};
    } catch (const FormatError& e) {
        return {"FormatError", e.what()};
    }
    return {"nothing", "(no exception)"};
}
}  // namespace

// Each entry triggers the error of one row of docs/errors.md, named by its "case" cell. The test
// runs them all and compares type and message with the table, so the page cannot drift.
TEST_CASE("errors: every row of docs/errors.md is what the library throws", "[errors][docs]") {
    const std::vector<std::pair<std::string, std::function<void()>>> cases{
        // engine
        {"backward of a non-scalar without a gradient",
         [] {
             Tensor x = Tensor::of({1.0, 2.0, 3.0}, f32, true);
             Tape tape;
             tape.backward(x * 2.0);
         }},
        {"backward twice over one record",
         [] {
             Tensor x = Tensor::of({1.0, 2.0, 3.0}, f32, true);
             Tape tape;
             Tensor loss = sum(x * 2.0);
             tape.backward(loss);
             tape.backward(loss);
         }},
        {"an op on a tensor whose tape has ended",
         [] {
             Tensor x = Tensor::of({1.0, 2.0, 3.0}, f32, true), y;
             {
                 Tape tape;
                 y = x * 2.0;
             }
             Tape tape;
             (void)(y * 2.0);
         }},
        {"backward on a tensor whose tape has ended",
         [] {
             Tensor x = Tensor::of({1.0, 2.0, 3.0}, f32, true), loss;
             {
                 Tape tape;
                 loss = sum(x * 2.0);
             }
             loss.backward();
         }},
        {"an input changed in place after it was recorded",
         [] {
             Tensor x = Tensor::of({1.0, 2.0, 3.0}, f32, true);
             Tape tape;
             Tensor y = x * x;
             x.mutable_value<float>()(0) = 5.0f;
             tape.backward(sum(y));
         }},
        {"an undefined tensor", [] { (void)(Tensor() + zeros({3})); }},
        // elementwise and activation
        {"shapes that do not broadcast", [] { (void)add(zeros({2, 3}), zeros({4})); }},
        {"float32 mixed with float64", [] { (void)mul(zeros({3}), zeros({3}, f64)); }},
        {"where with three shapes that do not broadcast", [] { (void)where(zeros({2}), zeros({3}), zeros({4})); }},
        {"clamp with min above max", [] { (void)clamp(zeros({3}), 1, 0); }},
        {"softplus with beta <= 0", [] { (void)softplus(zeros({3}), 0, 20); }},
        // reduce
        {"an axis out of range", [] { (void)sum(zeros({2, 3}), 2); }},
        {"the max of an empty axis", [] { (void)max(zeros({0, 3})); }},
        // shape
        {"reshape to a different element count", [] { (void)reshape(zeros({2, 3}), {4, -1}); }},
        {"select past the end", [] { (void)select(zeros({2, 3}), 1, 3); }},
        {"concat of mismatched shapes", [] { (void)concat({zeros({2, 3}), zeros({2, 4})}, 0); }},
        {"stack of mixed dtypes", [] { (void)stack({zeros({2}), zeros({2}, f64)}, 0); }},
        {"an embedding id >= the vocabulary", [] { (void)embedding(zeros({5, 4}), Ids{1, 5}); }},
        {"a negative one_hot id", [] { (void)one_hot(Ids{-1}, 4); }},
        // linalg
        {"matmul inner sizes differ", [] { (void)matmul(zeros({2, 3}), zeros({4, 5})); }},
        {"linear input and weight differ", [] { (void)linear(zeros({2, 3}), zeros({4, 5}), Tensor()); }},
        // functional
        {"a cross_entropy target out of range", [] { (void)cross_entropy(zeros({2, 3}), Ids{0, 3}); }},
        {"cross_entropy targets of the wrong shape", [] { (void)cross_entropy(zeros({2, 3}), Ids{0, 1, 2}); }},
        {"mse_loss of different shapes", [] { (void)mse_loss(zeros({2}), zeros({3})); }},
        {"dropout probability outside [0, 1]", [] { (void)dropout(zeros({2}), 1.5, true); }},
        // nn layers
        {"Linear input of the wrong size",
         [] {
             nn::Linear lin(3, 2);
             (void)lin(zeros({4, 5}));
         }},
        {"Linear input of the wrong dtype",
         [] {
             nn::Linear lin(3, 2);
             (void)lin(zeros({4, 3}, f64));
         }},
        {"an Embedding id >= num_embeddings",
         [] {
             nn::Embedding emb(5, 4);
             (void)emb(Ids{1, 5});
         }},
        {"an LSTMCell state of the wrong shape",
         [] {
             nn::LSTMCell cell(3, 4);
             (void)cell(zeros({2, 3}), zeros({2, 4}), zeros({3, 4}));
         }},
        {"an RNN input with the wrong feature size",
         [] {
             nn::RNN rnn({.input_size = 3, .hidden_size = 4});
             (void)rnn(zeros({5, 2, 6}));
         }},
        {"an RNN sequence of length 0",
         [] {
             nn::RNN rnn({.input_size = 3, .hidden_size = 4});
             (void)rnn(zeros({0, 2, 3}));
         }},
        {"a length longer than the padded sequence",
         [] {
             nn::GRU gru({.input_size = 3, .hidden_size = 4});
             (void)gru(zeros({5, 2, 3}), Tensor(), {5, 6});
         }},
        {"an initial state of the wrong shape",
         [] {
             nn::LSTM lstm({.input_size = 3, .hidden_size = 4});
             (void)lstm(zeros({5, 2, 3}), Tensor(), zeros({1, 3, 4}));
         }},
        {"a head given a length out of range", [] { (void)nn::last_step(zeros({3, 2, 4}), {1, 4}); }},
        // training
        {"a parameter given twice",
         [] {
             nn::Linear lin(3, 2);
             nn::SGD sgd({lin.weight, lin.bias, lin.weight});
         }},
        {"a non-leaf given to an optimizer",
         [] {
             Tensor w = zeros({2}, f32, true);
             Tape tape;
             nn::Adam adam({w * 2.0});
         }},
        {"clip_grad_norm with a NaN gradient",
         [] {
             nn::Linear lin(3, 2);
             Tape tape;
             tape.backward(sum(lin(Tensor::of({{1.0, NAN, 0.0}}))));
             nn::clip_grad_norm(lin.parameters(), 1.0);
         }},
        {"sampling from NaN logits",
         [] {
             Generator gen(1);
             (void)nn::sample_logits(Tensor::of({0.5, NAN, 0.25}), {.length = 1}, gen);
         }},
        {"a state dict of another model",
         [] {
             nn::Linear small(3, 2), big(3, 4);
             nn::load_state_dict(small, nn::state_dict(big));
         }},
        {"SGD with a NaN momentum",
         [] {
             Tensor w = zeros({2}, f32, true);
             nn::SGD sgd({w}, {.lr = 0.1, .momentum = NAN});
         }},
        // files
        {"reading something that is not a regular file", [] { (void)nn::read_text_file("/dev/zero"); }},
        {"saving an entry name with a NUL byte",
         [] { nn::save_tensors({{std::string("enc\0oder", 8), Tensor::of({1.0})}}, "model.npz"); }},
    };

    const auto table = read_error_table(std::string(TAPEGRAD_DOCS_DIR) + "/errors.md");
    for (const auto& [name, trigger] : cases) {
        INFO("case: " << name);
        const auto it = table.find(name);
        REQUIRE(it != table.end());
        const DocRow got = thrown(trigger);
        CHECK(got.type == it->second.type);
        CHECK(got.message == it->second.message);
    }
    // And no row of the table is left unchecked.
    CHECK(table.size() == cases.size());
    for (const auto& entry : table) {
        const std::string& name = entry.first;  // a named variable: clang 14 cannot capture a binding
        INFO("row: " << name);
        CHECK(std::any_of(cases.begin(), cases.end(), [&](const auto& c) { return c.first == name; }));
    }
}
