// Reductions: each one's forward against a by-hand grouping of the input elements (in float32 and
// float64, over every axis and sets of axes, with and without keepdims), its gradient by a float64
// full-Jacobian gradcheck, ties and NaN for max/min, stability of logsumexp and norm, empty axes,
// the overloads a caller writes (sum(x, 0), sum(x, -1, true), sum(x, {0, 1})) and bad axes.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {

// A reduction worked out by hand: the output shape, and for each output element (row-major) the
// flat indices of the input elements it reduces, in row-major order.
struct Groups {
    Shape out;
    std::vector<std::vector<std::size_t>> members;
};
Groups groups(const Shape& shape, std::vector<long> axes, bool keepdims) {
    std::vector<bool> reduced(shape.size(), false);
    for (long a : axes) reduced[static_cast<std::size_t>(a < 0 ? a + static_cast<long>(shape.size()) : a)] = true;
    Groups g;
    std::size_t n_out = 1, n_in = 1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        n_in *= shape[d];
        if (!reduced[d]) n_out *= shape[d];
        if (!reduced[d] || keepdims) g.out.push_back(reduced[d] ? 1 : shape[d]);
    }
    g.members.resize(n_out);
    for (std::size_t k = 0; k < n_in; ++k) {
        std::size_t rest = k, j = 0, scale = 1;
        for (std::size_t d = shape.size(); d-- > 0;) {  // peel the index of axis d off the flat index
            const std::size_t i = rest % shape[d];
            rest /= shape[d];
            if (!reduced[d]) {
                j += i * scale;
                scale *= shape[d];
            }
        }
        g.members[j].push_back(k);
    }
    return g;
}

using Reducer = std::function<double(const std::vector<double>&)>;
double ref_sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
double ref_mean(const std::vector<double>& v) { return ref_sum(v) / static_cast<double>(v.size()); }
double ref_max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }
double ref_min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double ref_lse(const std::vector<double>& v) {  // naive: fine for the moderate inputs used with it
    double s = 0;
    for (double e : v) s += std::exp(e);
    return std::log(s);
}
double ref_norm(const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e * e;
    return std::sqrt(s);
}

// y against the reducer applied to each group of x's elements.
void require_reduced(const Tensor& x, const Tensor& y, const Groups& g, const Reducer& ref) {
    REQUIRE(y.shape() == g.out);
    REQUIRE(y.dtype() == x.dtype());
    const double tol = x.dtype() == f32 ? 1e-5 : 1e-12;
    for (std::size_t j = 0; j < g.members.size(); ++j) {
        std::vector<double> vals;
        for (std::size_t k : g.members[j]) vals.push_back(x.at(k));
        INFO("output element " << j);
        CHECK(y.at(j) == Approx(ref(vals)).epsilon(tol).margin(tol));
    }
}

// One-axis reductions by name, so every one runs through the same checks.
using AxisOp = std::function<Tensor(const Tensor&, long, bool)>;
using AllOp = std::function<Tensor(const Tensor&)>;
struct Case {
    const char* name;
    AxisOp on_axis;
    AllOp on_all;
    Reducer ref;
};
const std::vector<Case> kCases = {
    {"sum", [](const Tensor& x, long a, bool k) { return sum(x, a, k); }, [](const Tensor& x) { return sum(x); }, ref_sum},
    {"mean", [](const Tensor& x, long a, bool k) { return mean(x, a, k); }, [](const Tensor& x) { return mean(x); },
     ref_mean},
    {"max", [](const Tensor& x, long a, bool k) { return max(x, a, k); }, [](const Tensor& x) { return max(x); }, ref_max},
    {"min", [](const Tensor& x, long a, bool k) { return min(x, a, k); }, [](const Tensor& x) { return min(x); }, ref_min},
    {"logsumexp", [](const Tensor& x, long a, bool k) { return logsumexp(x, a, k); },
     [](const Tensor& x) { return logsumexp(x); }, ref_lse},
    {"norm", [](const Tensor& x, long a, bool k) { return norm(x, a, k); }, [](const Tensor& x) { return norm(x); },
     ref_norm},
};

}  // namespace

TEST_CASE("every reduction over all elements and over each axis: values in both dtypes", "[reduce]") {
    std::mt19937 gen(21);
    const Shape shape{2, 3, 4};
    for (const Case& c : kCases) {
        INFO(c.name);
        for (DType dt : {f32, f64}) {
            const Tensor x = uniform(gen, shape, dt, -2, 2);
            require_reduced(x, c.on_all(x), groups(shape, {0, 1, 2}, false), c.ref);
            for (long axis : {0L, 1L, 2L, -1L, -3L})
                for (bool keep : {false, true}) {
                    INFO("axis " << axis << (keep ? ", keepdims" : ""));
                    require_reduced(x, c.on_axis(x, axis, keep), groups(shape, {axis}, keep), c.ref);
                }
        }
        // A vector and a 0-d scalar reduce too.
        const Tensor v = uniform(gen, {5}), s = Tensor::scalar(0.75, f64);
        require_reduced(v, c.on_axis(v, 0, false), groups({5}, {0}, false), c.ref);
        require_reduced(s, c.on_all(s), groups({}, {}, false), c.ref);
    }
}

TEST_CASE("every reduction: gradients over all elements and each axis, a value used twice, a diamond",
          "[reduce]") {
    std::mt19937 gen(22);
    for (const Case& c : kCases) {
        INFO(c.name);
        // Random values: no ties for max/min, no zero norms.
        require_gradcheck([&](const std::vector<Tensor>& in) { return c.on_all(in[0]); }, {uniform(gen, {3, 4})});
        for (long axis : {0L, 1L, -1L})
            for (bool keep : {false, true}) {
                INFO("axis " << axis << (keep ? ", keepdims" : ""));
                require_gradcheck([&](const std::vector<Tensor>& in) { return c.on_axis(in[0], axis, keep); },
                                  {uniform(gen, {2, 3, 4})});
            }
        // The reduced value multiplies its own input (broadcast back by keepdims) and is used twice.
        require_gradcheck(
            [&](const std::vector<Tensor>& in) {
                const Tensor r = c.on_axis(in[0], -1, true);  // [3, 1]
                return r * in[0] + r * r;
            },
            {uniform(gen, {3, 4})});
    }
    // A diamond through several reductions of one value.
    require_gradcheck(
        [](const std::vector<Tensor>& in) {
            const Tensor h = tanh(in[0]);
            return sum(h, 0) * max(h, 0) + logsumexp(h, 0) - norm(h, 0) + mean(h, {0, 1}) * min(h);
        },
        {uniform(gen, {3, 4})});
}

TEST_CASE("sum and mean over any set of axes, with and without keepdims", "[reduce]") {
    std::mt19937 gen(23);
    const Shape shape{2, 3, 4};
    const std::vector<std::vector<long>> sets = {{0}, {1}, {-1}, {0, 1}, {0, 2}, {2, 0}, {-1, -3}, {1, 2}, {0, 1, 2}, {}};
    for (const auto& axes : sets) {
        for (bool keep : {false, true}) {
            INFO("axes " << axes.size() << " of them, first " << (axes.empty() ? 99 : axes[0])
                         << (keep ? ", keepdims" : ""));
            for (DType dt : {f32, f64}) {
                const Tensor x = uniform(gen, shape, dt, -2, 2);
                require_reduced(x, sum(x, axes, keep), groups(shape, axes, keep), ref_sum);
                require_reduced(x, mean(x, axes, keep), groups(shape, axes, keep), ref_mean);
            }
            require_gradcheck([&](const std::vector<Tensor>& in) { return sum(in[0], axes, keep) * 2.0; },
                              {uniform(gen, shape)});
            require_gradcheck([&](const std::vector<Tensor>& in) { return mean(in[0], axes, keep); },
                              {uniform(gen, shape)});
        }
    }
}

TEST_CASE("the overloads a caller writes pick the intended reduction", "[reduce]") {
    std::mt19937 gen(24);
    const Tensor x = uniform(gen, {2, 3, 4});
    CHECK(sum(x, 0).shape() == Shape{3, 4});
    CHECK(sum(x, -1, true).shape() == Shape{2, 3, 1});
    CHECK(sum(x, {0, 1}).shape() == Shape{4});
    CHECK(sum(x, {0, 2}, true).shape() == Shape{1, 3, 1});
    CHECK(sum(x, {1}).shape() == Shape{2, 4});
    CHECK(sum(x, {}).shape() == Shape{2, 3, 4});  // no axes: a copy, not axis 0
    CHECK(sum(x).shape() == Shape{});
    CHECK(mean(x, 1).shape() == Shape{2, 4});
    CHECK(mean(x, {-1, 0}).shape() == Shape{3});
    CHECK(mean(x, {}).shape() == Shape{2, 3, 4});
    const std::vector<long> axes{0, 2};
    CHECK(sum(x, axes).shape() == Shape{3});
    CHECK(mean(x, axes, true).shape() == Shape{1, 3, 1});
    const int axis = 1;
    CHECK(max(x, axis).shape() == Shape{2, 4});
    CHECK(min(x, -1, true).shape() == Shape{2, 3, 1});
    CHECK(logsumexp(x, 0).shape() == Shape{3, 4});
    CHECK(norm(x, 2, true).shape() == Shape{2, 3, 1});
    // sum(x, {}) is x itself, element for element.
    const Tensor same = sum(x, {});
    for (std::size_t i = 0; i < x.numel(); ++i) CHECK(same.at(i) == x.at(i));
    // Each axis-set call agrees with the single-axis one it spells.
    const Tensor a = sum(x, {1}), b = sum(x, 1);
    for (std::size_t i = 0; i < a.numel(); ++i) CHECK(a.at(i) == b.at(i));
}

TEST_CASE("bad axes name the op, the axes and the shape", "[reduce]") {
    const Tensor x = zeros({2, 3, 4});
    REQUIRE_THROWS_AS(sum(x, {0, 0}), ShapeError);
    REQUIRE_THROWS_WITH(sum(x, {0, 0}), Contains("sum:") && Contains("axis 0 twice") && Contains("[2, 3, 4]"));
    REQUIRE_THROWS_WITH(mean(x, {2, -1}), Contains("mean:") && Contains("axes [2, -1]") && Contains("[2, 3, 4]"));
    REQUIRE_THROWS_WITH(sum(x, 3), Contains("sum:") && Contains("axis 3") && Contains("[2, 3, 4]"));
    REQUIRE_THROWS_WITH(mean(x, {0, -4}), Contains("mean:") && Contains("axis -4") && Contains("[2, 3, 4]"));
    for (const Case& c : kCases) {
        INFO(c.name);
        REQUIRE_THROWS_AS(c.on_axis(x, 3, false), ShapeError);
        REQUIRE_THROWS_WITH(c.on_axis(x, -4, true),
                            Contains(std::string(c.name) + ":") && Contains("axis -4") && Contains("[2, 3, 4]"));
        REQUIRE_THROWS_WITH(c.on_all(Tensor()), Contains(std::string(c.name) + ":") && Contains("undefined"));
        REQUIRE_THROWS_WITH(c.on_axis(Tensor(), 0, false), Contains(std::string(c.name) + ":") && Contains("undefined"));
    }
}

TEST_CASE("reductions over an empty axis: sum 0, mean NaN, logsumexp -inf, norm 0, max/min refuse", "[reduce]") {
    for (DType dt : {f32, f64}) {
        const Tensor x = zeros({2, 0}, dt);
        CHECK(sum(x).item() == 0.0);
        CHECK(std::isnan(mean(x).item()));
        const Tensor s = sum(x, 1), m = mean(x, 1, true), l = logsumexp(x, 1), n = norm(x, 1);
        REQUIRE(s.shape() == Shape{2});
        REQUIRE(m.shape() == Shape{2, 1});
        for (std::size_t i = 0; i < 2; ++i) {
            CHECK(s.at(i) == 0.0);
            CHECK(std::isnan(m.at(i)));
            CHECK(l.at(i) == -INFINITY);
            CHECK(n.at(i) == 0.0);
        }
        CHECK(sum(x, 0).shape() == Shape{0});  // nothing to reduce into: an empty result, no error
        CHECK(max(x, 0).shape() == Shape{0});
        for (const char* op : {"max", "min"}) {
            auto f = [&](long axis) { return std::string(op) == "max" ? max(x, axis) : min(x, axis); };
            REQUIRE_THROWS_AS(f(1), ShapeError);
            REQUIRE_THROWS_WITH(f(-1), Contains(std::string(op) + ":") && Contains("axis 1") && Contains("[2, 0]") &&
                                           Contains("empty"));
            REQUIRE_THROWS_WITH(std::string(op) == "max" ? max(x) : min(x),
                                Contains(std::string(op) + ":") && Contains("[2, 0]"));
        }
    }
}

TEST_CASE("max and min: ties send the gradient to the first occurrence, NaN propagates", "[reduce]") {
    for (DType dt : {f32, f64}) {
        const Tensor x = Tensor::of({{1.0, 3.0, 3.0}, {2.0, 2.0, 0.0}}, dt);
        // Along axis 1: row 0's max 3 first at column 1; row 1's max 2 first at column 0.
        const Tensor g1 = grad_of([](const Tensor& t) { return max(t, 1); }, x);
        const std::vector<double> want1{0, 1, 0, 1, 0, 0};
        for (std::size_t i = 0; i < 6; ++i) CHECK(g1.at(i) == want1[i]);
        // Over everything: 3 first at flat index 1.
        const Tensor ga = grad_of([](const Tensor& t) { return max(t); }, x);
        for (std::size_t i = 0; i < 6; ++i) CHECK(ga.at(i) == (i == 1 ? 1.0 : 0.0));
        // min along axis 0 with ties in columns 0 and 2: the first row.
        const Tensor y = Tensor::of({{1.0, 0.5, 0.0}, {1.0, 5.0, 0.0}}, dt);
        const Tensor gm = grad_of([](const Tensor& t) { return min(t, 0); }, y);
        const std::vector<double> wantm{1, 1, 1, 0, 0, 0};
        for (std::size_t i = 0; i < 6; ++i) CHECK(gm.at(i) == wantm[i]);
        const Tensor gma = grad_of([](const Tensor& t) { return min(t); }, y);
        for (std::size_t i = 0; i < 6; ++i) CHECK(gma.at(i) == (i == 2 ? 1.0 : 0.0));

        // NaN is the result and takes the gradient (the first NaN), wherever it sits in the row.
        const Tensor n = Tensor::of({{1.0, NAN, 5.0, NAN}, {NAN, 7.0, -1.0, 2.0}}, dt);
        for (bool is_max : {true, false}) {
            INFO((is_max ? "max" : "min"));
            auto f = [is_max](const Tensor& t) { return is_max ? max(t, 1) : min(t, 1); };
            const Tensor r = f(n);
            CHECK(std::isnan(r.at(0)));
            CHECK(std::isnan(r.at(1)));
            const Tensor g = grad_of(f, n);
            const std::vector<double> want{0, 1, 0, 0, 1, 0, 0, 0};
            for (std::size_t i = 0; i < 8; ++i) CHECK(g.at(i) == want[i]);
            CHECK(std::isnan(is_max ? max(n).item() : min(n).item()));
        }
    }
}

TEST_CASE("logsumexp is stable: large logits, all -inf rows, infinities and NaN", "[reduce]") {
    for (DType dt : {f32, f64}) {
        const double eps = dt == f32 ? 1e-4 : 1e-10;  // float32 rounds x - max to about 1e-4 at |x| = 1000
        const Tensor big = Tensor::of({{1000.0, 1000.0, 999.0}, {-1000.0, -1000.0, -1001.0}}, dt);
        const Tensor l = logsumexp(big, 1);
        const double tail = std::log(2.0 + std::exp(-1.0));
        CHECK(l.at(0) == Approx(1000.0 + tail));
        CHECK(l.at(1) == Approx(-1000.0 + tail));
        CHECK(logsumexp(big).item() == Approx(1000.0 + tail));
        // The gradient is softmax along the axis: finite, each row summing to 1.
        const Tensor g = grad_of([](const Tensor& t) { return logsumexp(t, 1); }, big);
        CHECK(g.at(0) == Approx(1.0 / (2.0 + std::exp(-1.0))).epsilon(eps));
        CHECK(g.at(0) + g.at(1) + g.at(2) == Approx(1.0).epsilon(eps));
        CHECK(g.at(3) + g.at(4) + g.at(5) == Approx(1.0).epsilon(eps));

        // A row of all -inf gives -inf, no NaN, and passes no gradient; the other row is unaffected.
        const Tensor ninf = Tensor::of({{-INFINITY, -INFINITY}, {0.0, 0.0}}, dt);
        const Tensor ln = logsumexp(ninf, -1, true);
        REQUIRE(ln.shape() == Shape{2, 1});
        CHECK(ln.at(0) == -INFINITY);
        CHECK(ln.at(1) == Approx(std::log(2.0)));
        const Tensor gn = grad_of([](const Tensor& t) { return logsumexp(t, -1, true); }, ninf);
        CHECK(gn.at(0) == 0.0);
        CHECK(gn.at(1) == 0.0);
        CHECK(gn.at(2) == Approx(0.5));
        CHECK(gn.at(3) == Approx(0.5));
        CHECK(logsumexp(Tensor::of({-INFINITY, -INFINITY}, dt)).item() == -INFINITY);
        // +inf gives +inf; NaN gives NaN; -inf among finite values simply contributes nothing.
        CHECK(logsumexp(Tensor::of({INFINITY, 0.0}, dt)).item() == INFINITY);
        CHECK(std::isnan(logsumexp(Tensor::of({NAN, 0.0}, dt)).item()));
        CHECK(std::isnan(logsumexp(Tensor::of({0.0, NAN}, dt)).item()));
        CHECK(logsumexp(Tensor::of({-INFINITY, 0.0}, dt)).item() == 0.0);
    }
}

TEST_CASE("norm: zero vectors pass a zero gradient, large and tiny float32 values do not overflow", "[reduce]") {
    for (DType dt : {f32, f64}) {
        const Tensor x = Tensor::of({{0.0, 0.0}, {3.0, -4.0}}, dt);
        const Tensor n = norm(x, 1);
        CHECK(n.at(0) == 0.0);
        CHECK(n.at(1) == 5.0);
        const Tensor g = grad_of([](const Tensor& t) { return norm(t, 1); }, x);
        CHECK(g.at(0) == 0.0);
        CHECK(g.at(1) == 0.0);
        CHECK(g.at(2) == Approx(0.6));
        CHECK(g.at(3) == Approx(-0.8));
        CHECK(grad_of([](const Tensor& t) { return norm(t); }, zeros({3}, dt)).at(0) == 0.0);
        // Squares accumulated in double: 3e20 and 4e20 square past float's range, 3e-30 below it.
        CHECK(norm(Tensor::of({3e20, 4e20}, dt)).item() == Approx(5e20));
        CHECK(norm(Tensor::of({3e-30, 4e-30}, dt)).item() == Approx(5e-30));
    }
}
