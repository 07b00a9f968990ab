// nn::init: the initialisers' distributions (sample moments of a large tensor, within bounds derived
// from the sample size), exact gains and fans as PyTorch computes them, orthogonality in both
// orientations with PyTorch's sign convention, float32 and float64, seeds, and bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
namespace init = tapegrad::nn::init;

namespace {
constexpr std::size_t kRows = 400, kCols = 250;  // 100 000 samples

struct Moments {
    double mean = 0, std = 0, min = 0, max = 0;
};
Moments moments(const Tensor& t) {
    const std::vector<double> v = values(t);
    Moments m;
    for (double x : v) m.mean += x;
    m.mean /= static_cast<double>(v.size());
    for (double x : v) m.std += (x - m.mean) * (x - m.mean);
    m.std = std::sqrt(m.std / static_cast<double>(v.size() - 1));
    m.min = *std::min_element(v.begin(), v.end());
    m.max = *std::max_element(v.begin(), v.end());
    return m;
}
// The sample mean and standard deviation of n draws from a distribution with this mean, standard
// deviation sigma and kurtosis (4th central moment / sigma^4; 3 for a normal, 9/5 for a uniform)
// lie within 5 standard errors: SE(mean) = sigma / sqrt(n), SE(std) ~ sigma sqrt((kurtosis - 1) / (4 n)).
void check_moments(const Tensor& t, double mean, double sigma, double kurtosis) {
    const Moments m = moments(t);
    const double n = static_cast<double>(t.numel());
    INFO("sample mean " << m.mean << ", std " << m.std << "; expected " << mean << ", " << sigma);
    CHECK(std::abs(m.mean - mean) <= 5 * sigma / std::sqrt(n));
    CHECK(std::abs(m.std - sigma) <= 5 * sigma * std::sqrt((kurtosis - 1) / (4 * n)));
}
constexpr double kUniformKurtosis = 9.0 / 5.0, kNormalKurtosis = 3.0;

// Checks that the rows (orthonormal_rows) or the columns of a [r, c] matrix times 1/gain are
// orthonormal: M M^T = gain^2 I or M^T M = gain^2 I, to tol.
void check_orthonormal(const std::vector<double>& m, std::size_t r, std::size_t c, bool rows, double gain, double tol) {
    const std::size_t k = rows ? r : c, len = rows ? c : r;
    auto at = [&](std::size_t vec, std::size_t i) { return rows ? m[vec * c + i] : m[i * c + vec]; };
    double worst = 0;
    for (std::size_t a = 0; a < k; ++a)
        for (std::size_t b = 0; b < k; ++b) {
            double dot = 0;
            for (std::size_t i = 0; i < len; ++i) dot += at(a, i) * at(b, i);
            worst = std::max(worst, std::abs(dot - (a == b ? gain * gain : 0.0)));
        }
    CHECK(worst <= tol);
}
}  // namespace

TEST_CASE("init: fans as PyTorch computes them, for 2-D and 4-D shapes", "[nn][init]") {
    const init::Fans linear = init::calculate_fan_in_and_fan_out(Shape{3, 5});  // [out, in]
    CHECK(linear.fan_in == 5);
    CHECK(linear.fan_out == 3);
    const init::Fans conv = init::calculate_fan_in_and_fan_out(zeros({16, 8, 3, 3}));  // [out, in, kh, kw]
    CHECK(conv.fan_in == 8 * 9);
    CHECK(conv.fan_out == 16 * 9);
    const init::Fans three = init::calculate_fan_in_and_fan_out(Shape{2, 3, 4});
    CHECK(three.fan_in == 12);
    CHECK(three.fan_out == 8);
    REQUIRE_THROWS_MATCHES(init::calculate_fan_in_and_fan_out(Shape{7}), ShapeError,
                           WhatContains({"calculate_fan_in_and_fan_out", "fewer than 2 dimensions", "[7]"}));
}

TEST_CASE("init: calculate_gain gives PyTorch's exact gains", "[nn][init]") {
    CHECK(init::calculate_gain("linear") == 1.0);
    CHECK(init::calculate_gain("sigmoid") == 1.0);
    CHECK(init::calculate_gain("conv2d") == 1.0);
    CHECK(init::calculate_gain("conv_transpose3d") == 1.0);
    CHECK(init::calculate_gain("tanh") == 5.0 / 3.0);
    CHECK(init::calculate_gain("relu") == std::sqrt(2.0));
    CHECK(init::calculate_gain("leaky_relu") == std::sqrt(2.0 / (1.0 + 0.01 * 0.01)));
    CHECK(init::calculate_gain("leaky_relu", 0.2) == std::sqrt(2.0 / 1.04));
    CHECK(init::calculate_gain("leaky_relu", 0.0) == std::sqrt(2.0));
    CHECK(init::calculate_gain("selu") == 0.75);
    CHECK(init::calculate_gain("tanh", 7.0) == 5.0 / 3.0);  // param only matters for leaky_relu
    REQUIRE_THROWS_MATCHES(init::calculate_gain("swish"), ValueError,
                           WhatContains({"calculate_gain", "unsupported nonlinearity 'swish'", "leaky_relu"}));
    REQUIRE_THROWS_MATCHES(init::calculate_gain("leaky_relu", NAN), ValueError, WhatContains({"negative_slope nan"}));
}

TEST_CASE("init: uniform_ and normal_ have the asked moments and bounds, in float32 and float64", "[nn][init]") {
    for (DType dt : {f32, f64}) {
        INFO(dtype_name(dt));
        Generator gen(11);
        Tensor u = init::uniform_(zeros({kRows, kCols}, dt), -2.0, 3.0, gen);
        check_moments(u, 0.5, 5.0 / std::sqrt(12.0), kUniformKurtosis);
        const Moments mu = moments(u);
        CHECK(mu.min >= -2.0);
        CHECK(mu.max < 3.0);
        CHECK(mu.min < -2.0 + 1e-3);  // the whole interval is used
        CHECK(mu.max > 3.0 - 1e-3);
        Tensor n = init::normal_(zeros({kRows, kCols}, dt), 1.5, 0.25, gen);
        check_moments(n, 1.5, 0.25, kNormalKurtosis);
        CHECK(u.dtype() == dt);
    }
    Tensor same = init::uniform_(zeros({3}, f64), 0.5, 0.5);
    CHECK(values(same) == std::vector<double>{0.5, 0.5, 0.5});
    Tensor flat = init::normal_(zeros({4}, f32), -1.0, 0.0);
    CHECK(values(flat) == std::vector<double>{-1, -1, -1, -1});
}

TEST_CASE("init: a seed reproduces the weights, and float32 is float64 rounded", "[nn][init]") {
    Generator g1(5), g2(5), g3(5);
    Tensor a = init::xavier_uniform_(zeros({20, 30}, f64), 1.0, g1);
    Tensor b = init::xavier_uniform_(zeros({20, 30}, f64), 1.0, g2);
    Tensor c = init::xavier_uniform_(zeros({20, 30}, f32), 1.0, g3);
    CHECK(values(a) == values(b));
    for (std::size_t i = 0; i < a.numel(); ++i) CHECK(c.at(i) == static_cast<double>(static_cast<float>(a.at(i))));
    // Without a generator: the thread's default one, which manual_seed restarts.
    manual_seed(77);
    Tensor d = init::kaiming_normal_(zeros({8, 9}, f64));
    manual_seed(77);
    Tensor e = init::kaiming_normal_(zeros({8, 9}, f64));
    CHECK(values(d) == values(e));
}

TEST_CASE("init: xavier_ scales with fan_in + fan_out and the gain", "[nn][init]") {
    const double fan_sum = kRows + kCols;
    for (DType dt : {f32, f64}) {
        INFO(dtype_name(dt));
        Generator gen(21);
        const double gain = init::calculate_gain("tanh");
        Tensor w = init::xavier_uniform_(zeros({kRows, kCols}, dt), gain, gen);
        const double bound = gain * std::sqrt(6.0 / fan_sum);
        check_moments(w, 0.0, bound / std::sqrt(3.0), kUniformKurtosis);
        const Moments m = moments(w);
        CHECK(m.min >= -bound * (1 + 1e-7));
        CHECK(m.max <= bound * (1 + 1e-7));
        CHECK(m.max > 0.999 * bound);
        Tensor v = init::xavier_normal_(zeros({kRows, kCols}, dt), 1.0, gen);
        check_moments(v, 0.0, std::sqrt(2.0 / fan_sum), kNormalKurtosis);
    }
    // A 4-D weight: fans include the receptive field.
    Generator gen(22);
    Tensor k = init::xavier_normal_(zeros({100, 50, 5, 4}, f64), 2.0, gen);
    check_moments(k, 0.0, 2.0 * std::sqrt(2.0 / (50.0 * 20 + 100.0 * 20)), kNormalKurtosis);
}

TEST_CASE("init: kaiming_ with fan_in and fan_out and each nonlinearity's gain", "[nn][init]") {
    for (DType dt : {f32, f64}) {
        INFO(dtype_name(dt));
        Generator gen(31);
        // The default: leaky_relu with a = 0, so gain sqrt(2), fan_in: b = sqrt(6 / fan_in).
        Tensor w = init::kaiming_uniform_(zeros({kRows, kCols}, dt), {}, gen);
        const double bound = std::sqrt(6.0 / kCols);
        check_moments(w, 0.0, bound / std::sqrt(3.0), kUniformKurtosis);
        CHECK(moments(w).max <= bound * (1 + 1e-7));
        // PyTorch's Linear weight: kaiming_uniform_(a = sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        Tensor lin = init::kaiming_uniform_(zeros({kRows, kCols}, dt), {.a = std::sqrt(5.0)}, gen);
        const double lin_bound = 1.0 / std::sqrt(static_cast<double>(kCols));
        check_moments(lin, 0.0, lin_bound / std::sqrt(3.0), kUniformKurtosis);
        CHECK(moments(lin).max <= lin_bound * (1 + 1e-7));
        CHECK(moments(lin).max > 0.999 * lin_bound);
        // fan_out of a 4-D weight, relu: std = sqrt(2) / sqrt(out * 9).
        Tensor conv = init::kaiming_normal_(zeros({256, 48, 3, 3}, dt),
                                            {.mode = init::FanMode::fan_out, .nonlinearity = "relu"}, gen);
        check_moments(conv, 0.0, std::sqrt(2.0) / std::sqrt(256.0 * 9), kNormalKurtosis);
        Tensor selu = init::kaiming_normal_(zeros({kRows, kCols}, dt), {.nonlinearity = "selu"}, gen);
        check_moments(selu, 0.0, 0.75 / std::sqrt(static_cast<double>(kCols)), kNormalKurtosis);
    }
}

TEST_CASE("init: orthogonal_ gives orthonormal rows or columns, with PyTorch's signs", "[nn][init]") {
    for (DType dt : {f32, f64}) {
        INFO(dtype_name(dt));
        const double tol = dt == f64 ? 1e-12 : 1e-5;
        for (auto [rows, cols] : {std::pair<std::size_t, std::size_t>{10, 6}, {6, 10}, {7, 7}}) {
            INFO(rows << " x " << cols);
            const std::uint64_t seed = 40 + rows;
            Generator gen(seed);
            Tensor q = init::orthogonal_(zeros({rows, cols}, dt), 1.0, gen);
            const std::vector<double> m = values(q);
            if (rows >= cols) check_orthonormal(m, rows, cols, false, 1.0, tol);  // Q^T Q = I
            if (rows <= cols) check_orthonormal(m, rows, cols, true, 1.0, tol);   // Q Q^T = I
            // The sign convention: the normal matrix A drawn from the same seed is Q R with R's
            // diagonal positive, so Q^T A (or Q A^T when rows < cols) is upper triangular with a
            // positive diagonal.
            Generator again(seed);
            const std::vector<double> a = values(randn({rows, cols}, again, f64));
            const std::size_t n = std::min(rows, cols);
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j) {
                    double r = 0;
                    if (rows >= cols)
                        for (std::size_t k = 0; k < rows; ++k) r += m[k * cols + i] * a[k * cols + j];
                    else
                        for (std::size_t k = 0; k < cols; ++k) r += m[i * cols + k] * a[j * cols + k];
                    if (i == j) CHECK(r > 0);
                    if (i > j) CHECK(std::abs(r) <= 1e3 * tol);
                }
        }
        // More than 2 dimensions: flattened to [size(0), rest]; a gain scales it.
        Generator gen(50);
        Tensor w = init::orthogonal_(zeros({4, 2, 3}, dt), 2.0, gen);
        check_orthonormal(values(w), 4, 6, true, 2.0, 4 * tol);
    }
}

TEST_CASE("init: constants, identity, and the version counter", "[nn][init]") {
    Tensor t = zeros({2, 3}, f32);
    CHECK(values(init::constant_(t, 0.25)) == std::vector<double>(6, 0.25));
    CHECK(values(init::ones_(t)) == std::vector<double>(6, 1.0));
    CHECK(values(init::zeros_(t)) == std::vector<double>(6, 0.0));
    CHECK(values(init::eye_(zeros({2, 3}, f64))) == std::vector<double>{1, 0, 0, 0, 1, 0});
    CHECK(values(init::eye_(zeros({3, 2}, f64))) == std::vector<double>{1, 0, 0, 1, 0, 0});
    // In place: the same handle sees the values, and a tape that saved the old value refuses backward.
    nn::Linear lin(3, 2);
    Tensor w = lin.weight;
    init::constant_(lin.weight, 0.5);
    CHECK(w.at(0) == 0.5);
    Tape tape;
    Tensor loss = sum(lin.weight * lin.weight);
    init::ones_(lin.weight);
    REQUIRE_THROWS_AS(tape.backward(loss), UsageError);
}

TEST_CASE("init: bad input is refused, naming the function and the shape or value", "[nn][init]") {
    Tensor vec = zeros({5}), scalar = Tensor::scalar(1.0), mat = zeros({3, 4});
    REQUIRE_THROWS_MATCHES(init::xavier_uniform_(vec), ShapeError,
                           WhatContains({"xavier_uniform_", "fewer than 2 dimensions", "[5]"}));
    REQUIRE_THROWS_MATCHES(init::xavier_normal_(scalar), ShapeError, WhatContains({"xavier_normal_", "[]"}));
    REQUIRE_THROWS_MATCHES(init::kaiming_uniform_(vec), ShapeError, WhatContains({"kaiming_uniform_", "[5]"}));
    REQUIRE_THROWS_MATCHES(init::kaiming_normal_(scalar), ShapeError, WhatContains({"kaiming_normal_"}));
    REQUIRE_THROWS_MATCHES(init::orthogonal_(vec), ShapeError, WhatContains({"orthogonal_", "[5]"}));
    REQUIRE_THROWS_MATCHES(init::eye_(zeros({2, 2, 2})), ShapeError, WhatContains({"eye_", "[2, 2, 2]"}));
    REQUIRE_THROWS_MATCHES(init::normal_(mat, 0.0, -1.0), ValueError, WhatContains({"normal_", "std -1", "[3, 4]"}));
    REQUIRE_THROWS_MATCHES(init::normal_(mat, NAN, 1.0), ValueError, WhatContains({"normal_", "mean nan"}));
    REQUIRE_THROWS_MATCHES(init::uniform_(mat, 1.0, 0.0), ValueError, WhatContains({"uniform_", "a 1 must be <= b 0"}));
    REQUIRE_THROWS_MATCHES(init::uniform_(mat, NAN, 1.0), ValueError, WhatContains({"uniform_", "a nan"}));
    REQUIRE_THROWS_MATCHES(init::uniform_(mat, 0.0, INFINITY), ValueError, WhatContains({"uniform_", "b inf"}));
    REQUIRE_THROWS_MATCHES(init::constant_(mat, NAN), ValueError, WhatContains({"constant_", "value nan"}));
    REQUIRE_THROWS_MATCHES(init::xavier_uniform_(mat, NAN), ValueError, WhatContains({"xavier_uniform_", "gain nan"}));
    REQUIRE_THROWS_MATCHES(init::xavier_normal_(mat, -1.0), ValueError, WhatContains({"xavier_normal_", "gain -1"}));
    REQUIRE_THROWS_MATCHES(init::orthogonal_(mat, INFINITY), ValueError, WhatContains({"orthogonal_", "gain inf"}));
    REQUIRE_THROWS_MATCHES(init::kaiming_uniform_(mat, {.nonlinearity = "gelu"}), ValueError,
                           WhatContains({"kaiming_uniform_", "unsupported nonlinearity 'gelu'"}));
    REQUIRE_THROWS_MATCHES(init::kaiming_normal_(mat, {.a = NAN}), ValueError, WhatContains({"kaiming_normal_", "a nan"}));
    REQUIRE_THROWS_MATCHES(init::zeros_(Tensor()), ValueError, WhatContains({"zeros_", "undefined"}));
    // A refused call changes nothing.
    CHECK(values(mat) == std::vector<double>(12, 0.0));
    // Empty tensors of a valid rank: nothing to fill.
    CHECK(init::kaiming_uniform_(zeros({0, 3})).numel() == 0);
    CHECK(init::orthogonal_(zeros({0, 3})).numel() == 0);
}
