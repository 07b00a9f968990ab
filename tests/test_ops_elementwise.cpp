// Elementwise ops: each one's forward against plain loops in float32 and float64, its gradient by a
// float64 full-Jacobian gradcheck (broadcasting, 0-d scalars, a value used twice and a diamond), its
// behaviour at the boundaries (0 for sqrt/log/pow, ties, NaN) and its refusal of bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {

// Entries with |v| in [0.2, 1.5) and a random sign: clear of a kink at 0.
Tensor signed_away_from_zero(std::mt19937& gen, const Shape& shape, DType dt = f64) {
    Tensor t = uniform(gen, shape, f64, 0.2, 1.5);
    std::bernoulli_distribution coin(0.5);
    auto& v = t.mutable_value<double>();
    for (std::size_t i = 0; i < v.size(); ++i)
        if (coin(gen)) v.data()[i] = -v.data()[i];
    return dt == f64 ? t : t.to(f32);
}

// t's element read at index idx of a larger broadcast shape (NumPy: shapes align on the right and a
// size-1 axis repeats).
double bcast_at(const Tensor& t, const Shape& idx) {
    const Shape s = t.shape();
    std::size_t k = 0;
    for (std::size_t d = 0; d < s.size(); ++d) k = k * s[d] + (s[d] == 1 ? 0 : idx[idx.size() - s.size() + d]);
    return t.at(k);
}

// y has `shape` and each element matches ref(idx) within a tolerance fitting y's dtype (NaN and
// infinities must match exactly).
void require_close(const Tensor& y, const Shape& shape, const std::function<double(const Shape&)>& ref) {
    REQUIRE(y.shape() == shape);
    const double tol = y.dtype() == f32 ? 2e-6 : 1e-13;
    std::size_t k = 0;
    for_each_index(shape, [&](const Shape& idx) {
        const double want = ref(idx), got = y.at(k++);
        INFO("element " << k - 1 << " of " << shape_str(shape) << ": got " << got << ", want " << want);
        if (std::isnan(want)) CHECK(std::isnan(got));
        else if (std::isinf(want)) CHECK(got == want);
        else CHECK(got == Approx(want).epsilon(tol).margin(tol));
    });
}

// Gradients of sum(f(inputs)) on a fresh tape, for fresh copies of the inputs: one per input
// (undefined if it got none).
std::vector<Tensor> grads_of(const std::function<Tensor(std::vector<Tensor>&)>& f, std::vector<Tensor> inputs) {
    for (Tensor& t : inputs) t = t.detach().set_requires_grad(true);
    Tape tape;
    tape.backward(sum(f(inputs)));
    std::vector<Tensor> g;
    for (Tensor& t : inputs) g.push_back(t.has_grad() ? t.grad() : Tensor());
    return g;
}

// Shape pairs that broadcast: equal, trailing vector, outer product, rank 3 with rank 2, 0-d scalars.
const std::vector<std::pair<Shape, Shape>> kBroadcastPairs = {
    {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{}, {2, 3}}, {{2, 3}, {}}, {{}, {}}};

Shape broadcast(const Shape& a, const Shape& b) {
    Shape out(std::max(a.size(), b.size()), 1);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::size_t da = i < a.size() ? a[a.size() - 1 - i] : 1, db = i < b.size() ? b[b.size() - 1 - i] : 1;
        out[out.size() - 1 - i] = std::max(da, db);
    }
    return out;
}

using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;
struct BinaryCase {
    const char* name;
    BinaryFn f;
    std::function<double(double, double)> ref;
    double b_lo, b_hi;  // the range of the second input (kept away from 0 for div)
};

const std::vector<BinaryCase> kArithmetic = {
    {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double a, double b) { return a + b; }, -1, 1},
    {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double a, double b) { return a - b; }, -1, 1},
    {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double a, double b) { return a * b; }, -1, 1},
    {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double a, double b) { return a / b; }, 0.5, 2},
    {"+", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }, -1, 1},
    {"-", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }, -1, 1},
    {"*", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }, -1, 1},
    {"/", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; }, 0.5, 2},
};

// Forward against loops for every broadcast pair and both dtypes, then gradcheck for each pair.
void check_binary(const BinaryCase& c, std::mt19937& gen, double a_lo = -1, double a_hi = 1) {
    for (const auto& [sa, sb] : kBroadcastPairs) {
        INFO(c.name << ": " << shape_str(sa) << " with " << shape_str(sb));
        for (DType dt : {f32, f64}) {
            const Tensor a = uniform(gen, sa, dt, a_lo, a_hi), b = uniform(gen, sb, dt, c.b_lo, c.b_hi);
            const Tensor y = c.f(a, b);
            CHECK(y.dtype() == dt);
            require_close(y, broadcast(sa, sb), [&](const Shape& i) { return c.ref(bcast_at(a, i), bcast_at(b, i)); });
        }
        const Tensor a = uniform(gen, sa, f64, a_lo, a_hi), b = uniform(gen, sb, f64, c.b_lo, c.b_hi);
        require_gradcheck([&](const std::vector<Tensor>& in) { return c.f(in[0], in[1]); }, {a, b});
    }
}

}  // namespace

// ---- arithmetic ---------------------------------------------------------------------------------

TEST_CASE("add, sub, mul, div and their operators broadcast like NumPy, values and gradients", "[elementwise]") {
    std::mt19937 gen(1);
    for (const BinaryCase& c : kArithmetic) check_binary(c, gen);
}

TEST_CASE("arithmetic: a value used twice and a diamond accumulate every path", "[elementwise]") {
    std::mt19937 gen(2);
    const Tensor x = uniform(gen, {3, 4}, f64, 0.5, 1.5), b = uniform(gen, {4}, f64, 0.5, 1.5);
    require_gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0] + in[0]; }, {x});
    require_gradcheck(
        [](const std::vector<Tensor>& in) {
            const Tensor h = in[0] * in[1];   // [3, 4]
            const Tensor l = h - in[1], r = h / in[0];  // two paths from h, both reading the inputs again
            return l * r + (-h);
        },
        {x, b});
    // By hand: y = x*x + x at x = 3 gives dy/dx = 7.
    const auto g = grads_of([](std::vector<Tensor>& in) { return in[0] * in[0] + in[0]; },
                            {Tensor::scalar(3.0, f64)});
    CHECK(g[0].item() == 7.0);
}

TEST_CASE("neg: values in both dtypes and gradient", "[elementwise]") {
    std::mt19937 gen(3);
    for (DType dt : {f32, f64}) {
        const Tensor x = uniform(gen, {2, 5}, dt);
        require_close(neg(x), {2, 5}, [&](const Shape& i) { return -bcast_at(x, i); });
        require_close(-x, {2, 5}, [&](const Shape& i) { return -bcast_at(x, i); });
    }
    require_gradcheck([](const std::vector<Tensor>& in) { return -in[0] * in[0]; }, {uniform(gen, {2, 3})});
    REQUIRE_THROWS_WITH(neg(Tensor()), Contains("neg") && Contains("undefined"));
}

TEST_CASE("scalar arithmetic keeps the tensor's dtype, values and gradients", "[elementwise]") {
    std::mt19937 gen(4);
    using S = std::function<Tensor(const Tensor&)>;
    const std::vector<std::pair<S, std::function<double(double)>>> cases = {
        {[](const Tensor& x) { return x + 1.5; }, [](double v) { return v + 1.5; }},
        {[](const Tensor& x) { return 1.5 + x; }, [](double v) { return 1.5 + v; }},
        {[](const Tensor& x) { return x - 1.5; }, [](double v) { return v - 1.5; }},
        {[](const Tensor& x) { return 1.5 - x; }, [](double v) { return 1.5 - v; }},
        {[](const Tensor& x) { return x * -2.0; }, [](double v) { return v * -2.0; }},
        {[](const Tensor& x) { return -2.0 * x; }, [](double v) { return -2.0 * v; }},
        {[](const Tensor& x) { return x / 4.0; }, [](double v) { return v / 4.0; }},
        {[](const Tensor& x) { return 4.0 / x; }, [](double v) { return 4.0 / v; }},
    };
    for (std::size_t k = 0; k < cases.size(); ++k) {
        INFO("case " << k);
        for (DType dt : {f32, f64}) {
            const Tensor x = uniform(gen, {3, 2}, dt, 0.5, 2.0);
            const Tensor y = cases[k].first(x);
            CHECK(y.dtype() == dt);
            require_close(y, {3, 2}, [&](const Shape& i) { return cases[k].second(bcast_at(x, i)); });
        }
        require_gradcheck([&](const std::vector<Tensor>& in) { return cases[k].first(in[0]); },
                          {uniform(gen, {3, 2}, f64, 0.5, 2.0)});
    }
    // d/dx (2 / x - x * 3 + 1) = -2 / x^2 - 3 = -3.5 at x = 2
    const auto g = grads_of([](std::vector<Tensor>& in) { return 2.0 / in[0] - in[0] * 3.0 + 1.0; },
                            {Tensor::scalar(2.0, f32)});
    CHECK(g[0].dtype() == f32);
    CHECK(g[0].item() == Approx(-3.5));
    REQUIRE_THROWS_WITH(Tensor() * 2.0, Contains("undefined"));
}

TEST_CASE("binary ops name themselves and both shapes on a mismatch", "[elementwise]") {
    const Tensor a = zeros({2, 3}, f64), b = zeros({4}, f64), c = zeros({2, 3}, f32);
    const std::vector<std::pair<std::string, BinaryFn>> ops = {
        {"add", [](const Tensor& x, const Tensor& y) { return x + y; }},
        {"sub", [](const Tensor& x, const Tensor& y) { return x - y; }},
        {"mul", [](const Tensor& x, const Tensor& y) { return x * y; }},
        {"div", [](const Tensor& x, const Tensor& y) { return x / y; }},
        {"pow", [](const Tensor& x, const Tensor& y) { return pow(x, y); }},
        {"maximum", [](const Tensor& x, const Tensor& y) { return maximum(x, y); }},
        {"minimum", [](const Tensor& x, const Tensor& y) { return minimum(x, y); }},
    };
    for (const auto& [name, f] : ops) {
        INFO(name);
        REQUIRE_THROWS_AS(f(a, b), ShapeError);
        REQUIRE_THROWS_WITH(f(a, b), Contains(name + ":") && Contains("[2, 3]") && Contains("[4]"));
        REQUIRE_THROWS_AS(f(a, c), DTypeError);
        REQUIRE_THROWS_WITH(f(a, c), Contains(name + ":") && Contains("float64") && Contains("float32"));
        REQUIRE_THROWS_WITH(f(a, Tensor()), Contains(name + ":") && Contains("undefined"));
    }
}

// ---- unary math -----------------------------------------------------------------------------------

TEST_CASE("exp, log, sqrt, abs, pow(x, p): values, gradients, a value used twice and a diamond", "[elementwise]") {
    std::mt19937 gen(5);
    using U = std::function<Tensor(const Tensor&)>;
    struct Case {
        const char* name;
        U f;
        std::function<double(double)> ref;
        bool positive;  // domain x > 0 (else: both signs, clear of 0)
    };
    const std::vector<Case> cases = {
        {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, false},
        {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, true},
        {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, true},
        {"abs", [](const Tensor& x) { return abs(x); }, [](double v) { return std::abs(v); }, false},
        {"pow", [](const Tensor& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, false},
        {"pow", [](const Tensor& x) { return pow(x, 2.0); }, [](double v) { return v * v; }, false},
        {"pow", [](const Tensor& x) { return pow(x, -1.5); }, [](double v) { return std::pow(v, -1.5); }, true},
        {"pow", [](const Tensor& x) { return pow(x, 0.0); }, [](double) { return 1.0; }, false},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        auto input = [&](DType dt) {
            return c.positive ? uniform(gen, {3, 4}, dt, 0.3, 2.0) : signed_away_from_zero(gen, {3, 4}, dt);
        };
        for (DType dt : {f32, f64}) {
            const Tensor x = input(dt);
            const Tensor y = c.f(x);
            CHECK(y.dtype() == dt);
            require_close(y, {3, 4}, [&](const Shape& i) { return c.ref(bcast_at(x, i)); });
        }
        require_gradcheck([&](const std::vector<Tensor>& in) { return c.f(in[0]); }, {input(f64)});
        // y used twice, x used twice, and a diamond a -> (y, a * y).
        require_gradcheck(
            [&](const std::vector<Tensor>& in) {
                const Tensor a = in[0] * 1.25;
                const Tensor y = c.f(a);
                return y * y + a * y + in[0];
            },
            {input(f64)});
        REQUIRE_THROWS_WITH(c.f(Tensor()), Contains(std::string(c.name) + ":") && Contains("undefined"));
    }
}

TEST_CASE("exp, log, sqrt, abs and pow at their boundaries", "[elementwise]") {
    const auto v = [](std::initializer_list<double> l) { return Tensor::of(l, f64); };
    // log: 0 -> -inf, negative -> NaN; the gradient 1/x is +inf at 0.
    const Tensor l = log(v({0.0, -1.0, 1.0}));
    CHECK(l.at(0) == -INFINITY);
    CHECK(std::isnan(l.at(1)));
    CHECK(l.at(2) == 0.0);
    CHECK(grads_of([](std::vector<Tensor>& in) { return log(in[0]); }, {v({0.0})})[0].item() == INFINITY);
    // sqrt: 0 -> 0 with gradient +inf, negative -> NaN.
    const Tensor s = sqrt(v({0.0, -4.0, 4.0}));
    CHECK(s.at(0) == 0.0);
    CHECK(std::isnan(s.at(1)));
    CHECK(s.at(2) == 2.0);
    CHECK(grads_of([](std::vector<Tensor>& in) { return sqrt(in[0]); }, {v({0.0})})[0].item() == INFINITY);
    // abs: gradient sign(x), 0 at 0.
    const Tensor ga = grads_of([](std::vector<Tensor>& in) { return abs(in[0]); }, {v({-2.0, 0.0, 3.0})})[0];
    CHECK(ga.at(0) == -1.0);
    CHECK(ga.at(1) == 0.0);
    CHECK(ga.at(2) == 1.0);
    CHECK(std::isnan(abs(v({NAN})).item()));
    // pow with exponent 0: 1 everywhere, gradient 0 even at x = 0 (not 0 * inf = NaN).
    const Tensor g0 = grads_of([](std::vector<Tensor>& in) { return pow(in[0], 0.0); }, {v({0.0, 2.0})})[0];
    CHECK(pow(v({0.0}), 0.0).item() == 1.0);
    CHECK(g0.at(0) == 0.0);
    CHECK(g0.at(1) == 0.0);
    // Integral exponents of negative bases are fine: (-2)^3 = -8, gradient 3 * 4 = 12.
    CHECK(pow(v({-2.0}), 3.0).item() == -8.0);
    CHECK(grads_of([](std::vector<Tensor>& in) { return pow(in[0], 3.0); }, {v({-2.0})})[0].item() == 12.0);
    // exp of large inputs overflows to inf as IEEE, never NaN.
    CHECK(exp(Tensor::of({1000.0}, f32)).item() == INFINITY);
    CHECK(exp(Tensor::of({-1000.0}, f32)).item() == 0.0);
}

// ---- pow with a tensor exponent -------------------------------------------------------------------

TEST_CASE("pow(x, p) with a tensor exponent broadcasts, gradients for x and p", "[elementwise]") {
    std::mt19937 gen(6);
    check_binary({"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
                  [](double a, double b) { return std::pow(a, b); }, -2, 2},
                 gen, 0.3, 2.0);
    // A value used twice (as base and exponent) and a diamond.
    require_gradcheck(
        [](const std::vector<Tensor>& in) {
            const Tensor y = pow(in[0], in[0]);  // x^x
            return y * in[0] + pow(y, in[1]);
        },
        {uniform(gen, {2, 3}, f64, 0.5, 1.5), uniform(gen, {3}, f64, -1, 1)});
    // By hand: d/dx x^p = p x^(p-1) = 2 * 3^1 = 6 and d/dp x^p = x^p log x = 9 log 3 at x = 3, p = 2.
    const auto g = grads_of([](std::vector<Tensor>& in) { return pow(in[0], in[1]); },
                            {Tensor::scalar(3.0, f64), Tensor::scalar(2.0, f64)});
    CHECK(g[0].item() == Approx(6.0));
    CHECK(g[1].item() == Approx(9.0 * std::log(3.0)));
}

TEST_CASE("pow(x, p) at x <= 0: the documented gradients", "[elementwise]") {
    // x = 0, p >= 0: d/dp is 0 (not 0 * -inf); p = 0 gives d/dx 0 and the value 1.
    const Tensor x0 = Tensor::of({0.0, 0.0, 0.0}, f64), p0 = Tensor::of({0.0, 1.0, 2.5}, f64);
    const auto g = grads_of([](std::vector<Tensor>& in) { return pow(in[0], in[1]); }, {x0, p0});
    CHECK(pow(x0, p0).at(0) == 1.0);
    CHECK(g[1].at(0) == 0.0);
    CHECK(g[1].at(1) == 0.0);
    CHECK(g[1].at(2) == 0.0);
    CHECK(g[0].at(0) == 0.0);
    CHECK(g[0].at(1) == 1.0);
    CHECK(g[0].at(2) == 0.0);
    // x < 0: the value of an integral power is finite; its gradient for p is NaN (log of a negative).
    const auto gn = grads_of([](std::vector<Tensor>& in) { return pow(in[0], in[1]); },
                             {Tensor::of({-2.0}, f64), Tensor::of({3.0}, f64)});
    CHECK(pow(Tensor::of({-2.0}, f64), Tensor::of({3.0}, f64)).item() == -8.0);
    CHECK(gn[0].item() == 12.0);
    CHECK(std::isnan(gn[1].item()));
    // A constant exponent asks for no log at all, so a negative base gives a clean gradient.
    Tensor x = Tensor::of({-2.0}, f64, true);
    Tape tape;
    tape.backward(sum(pow(x, Tensor::of({2.0}, f64))));
    CHECK(x.grad().item() == -4.0);
}

// ---- clamp -----------------------------------------------------------------------------------------

TEST_CASE("clamp, clamp_min, clamp_max: values, gradient 1 on [min, max] and 0 outside", "[elementwise]") {
    std::mt19937 gen(7);
    using U = std::function<Tensor(const Tensor&)>;
    const std::vector<std::tuple<U, double, double>> cases = {
        {[](const Tensor& x) { return clamp(x, -0.5, 0.7); }, -0.5, 0.7},
        {[](const Tensor& x) { return clamp_min(x, 0.25); }, 0.25, INFINITY},
        {[](const Tensor& x) { return clamp_max(x, -0.25); }, -INFINITY, -0.25},
        {[](const Tensor& x) { return clamp(x, -INFINITY, INFINITY); }, -INFINITY, INFINITY},
    };
    for (const auto& c : cases) {
        // Named variables, not a structured binding: clang 14 cannot capture a binding in a lambda.
        const U& f = std::get<0>(c);
        const double lo = std::get<1>(c), hi = std::get<2>(c);
        INFO("clamp to [" << lo << ", " << hi << "]");
        for (DType dt : {f32, f64}) {
            const Tensor x = uniform(gen, {4, 5}, dt, -2, 2);
            require_close(f(x), {4, 5}, [&](const Shape& i) { return std::min(std::max(bcast_at(x, i), lo), hi); });
        }
        // Keep the inputs clear of the bounds so the finite differences see no kink.
        Tensor x = uniform(gen, {4, 5}, f64, -2, 2);
        auto& v = x.mutable_value<double>();
        for (double& e : v)
            if (std::abs(e - lo) < 0.05 || std::abs(e - hi) < 0.05) e += 0.1;
        require_gradcheck([&](const std::vector<Tensor>& in) { return f(in[0]) * in[0]; }, {x});
    }
    // The bounds themselves count as inside (gradient 1), as PyTorch.
    const Tensor g = grads_of([](std::vector<Tensor>& in) { return clamp(in[0], -1.0, 1.0); },
                              {Tensor::of({-1.0, 1.0, -1.5, 1.5, 0.0}, f32)})[0];
    CHECK(g.at(0) == 1.0);
    CHECK(g.at(1) == 1.0);
    CHECK(g.at(2) == 0.0);
    CHECK(g.at(3) == 0.0);
    CHECK(g.at(4) == 1.0);
    // min == max is allowed: every element becomes that value.
    CHECK(clamp(Tensor::of({-3.0, 3.0}), 2.0, 2.0).at(0) == 2.0);
}

TEST_CASE("clamp: NaN stays NaN with gradient 0, bad bounds are ValueErrors", "[elementwise]") {
    for (DType dt : {f32, f64}) {
        const auto g = grads_of([](std::vector<Tensor>& in) { return clamp(in[0], 0.0, 1.0); },
                                {Tensor::of({NAN, 0.5}, dt)});
        CHECK(std::isnan(clamp(Tensor::of({NAN}, dt), 0.0, 1.0).item()));
        CHECK(g[0].at(0) == 0.0);
        CHECK(g[0].at(1) == 1.0);
    }
    const Tensor x = zeros({2, 3});
    REQUIRE_THROWS_AS(clamp(x, 1.0, -1.0), ValueError);
    REQUIRE_THROWS_WITH(clamp(x, 1.0, -1.0), Contains("clamp:") && Contains("min 1") && Contains("max -1") &&
                                                 Contains("[2, 3]"));
    REQUIRE_THROWS_AS(clamp(x, NAN, 1.0), ValueError);
    REQUIRE_THROWS_AS(clamp_min(x, NAN), ValueError);
    REQUIRE_THROWS_WITH(clamp(Tensor(), 0.0, 1.0), Contains("clamp:") && Contains("undefined"));
}

// ---- maximum, minimum ---------------------------------------------------------------------------

TEST_CASE("maximum and minimum broadcast, gradients go to the chosen input", "[elementwise]") {
    std::mt19937 gen(8);
    check_binary({"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
                  [](double a, double b) { return std::max(a, b); }, -1, 1},
                 gen);
    check_binary({"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
                  [](double a, double b) { return std::min(a, b); }, -1, 1},
                 gen);
    // relu-like and a diamond: maximum(x, x * 0.1) uses x on both sides.
    require_gradcheck(
        [](const std::vector<Tensor>& in) {
            const Tensor m = maximum(in[0], in[0] * 0.1);
            return minimum(m, in[1]) * m;
        },
        {signed_away_from_zero(gen, {3, 4}), uniform(gen, {4}, f64, -1, 1)});
}

TEST_CASE("maximum and minimum split the gradient equally on ties, NaN propagates", "[elementwise]") {
    for (DType dt : {f32, f64}) {
        // a = [1, 2, 3], b = 2 broadcast: a wins, tie, a wins (maximum); b wins, tie, b wins (minimum).
        const Tensor a = Tensor::of({1.0, 2.0, 3.0}, dt), b = Tensor::scalar(2.0, dt);
        auto gmax = grads_of([](std::vector<Tensor>& in) { return maximum(in[0], in[1]); }, {a, b});
        CHECK(gmax[0].at(0) == 0.0);
        CHECK(gmax[0].at(1) == 0.5);
        CHECK(gmax[0].at(2) == 1.0);
        CHECK(gmax[1].item() == 1.5);  // all of element 0 and half of the tie, summed over the broadcast
        auto gmin = grads_of([](std::vector<Tensor>& in) { return minimum(in[0], in[1]); }, {a, b});
        CHECK(gmin[0].at(0) == 1.0);
        CHECK(gmin[0].at(1) == 0.5);
        CHECK(gmin[0].at(2) == 0.0);
        CHECK(gmin[1].item() == 1.5);
        // NaN on either side wins, with all of the gradient.
        const Tensor n = Tensor::of({NAN, 1.0, NAN}, dt), m = Tensor::of({1.0, NAN, NAN}, dt);
        for (bool is_max : {true, false}) {
            auto f = [is_max](std::vector<Tensor>& in) { return is_max ? maximum(in[0], in[1]) : minimum(in[0], in[1]); };
            std::vector<Tensor> in{n, m};
            const Tensor y = f(in);
            for (std::size_t i = 0; i < 3; ++i) CHECK(std::isnan(y.at(i)));
            const auto g = grads_of(f, {n, m});
            CHECK(g[0].at(0) == 1.0);
            CHECK(g[1].at(0) == 0.0);
            CHECK(g[0].at(1) == 0.0);
            CHECK(g[1].at(1) == 1.0);
            CHECK(g[0].at(2) == 1.0);  // both NaN: to a
            CHECK(g[1].at(2) == 0.0);
        }
    }
}

// ---- where --------------------------------------------------------------------------------------

TEST_CASE("where broadcasts over mask, a and b, the mask may have either dtype", "[elementwise]") {
    std::mt19937 gen(9);
    std::bernoulli_distribution coin(0.5);
    const std::vector<std::array<Shape, 3>> shapes = {
        {Shape{3, 4}, Shape{3, 4}, Shape{3, 4}}, {Shape{3, 4}, Shape{4}, Shape{}},
        {Shape{3, 1}, Shape{1, 4}, Shape{3, 4}}, {Shape{4}, Shape{2, 3, 1}, Shape{3, 4}},
        {Shape{}, Shape{2, 2}, Shape{2}}};
    for (const auto& [sm, sa, sb] : shapes) {
        INFO("mask " << shape_str(sm) << ", a " << shape_str(sa) << ", b " << shape_str(sb));
        const Shape out = broadcast(broadcast(sm, sa), sb);
        for (DType mdt : {f32, f64}) {
            Tensor mask = zeros(sm, f64);
            for (double& e : mask.mutable_value<double>()) e = coin(gen) ? 0.0 : (coin(gen) ? -3.0 : 0.5);
            if (mdt == f32) mask = mask.to(f32);
            for (DType dt : {f32, f64}) {
                const Tensor a = uniform(gen, sa, dt), b = uniform(gen, sb, dt);
                const Tensor y = where(mask, a, b);
                CHECK(y.dtype() == dt);
                require_close(y, out, [&](const Shape& i) {
                    return bcast_at(mask, i) != 0.0 ? bcast_at(a, i) : bcast_at(b, i);
                });
            }
            require_gradcheck([&](const std::vector<Tensor>& in) { return where(mask, in[0], in[1]) * in[0]; },
                              {uniform(gen, sa), uniform(gen, sb)});
        }
    }
    // NaN in the mask is nonzero, so true; the mask gets no gradient even if it asks for one.
    Tensor mask = Tensor::of({NAN, 0.0, 1.0}, f32, true);
    Tensor a = Tensor::of({1.0, 2.0, 3.0}, f64, true), b = Tensor::scalar(10.0, f64, true);
    Tape tape;
    const Tensor y = where(mask, a, b);
    CHECK(y.at(0) == 1.0);
    CHECK(y.at(1) == 10.0);
    CHECK(y.at(2) == 3.0);
    tape.backward(sum(y * Tensor::of({1.0, 2.0, 3.0}, f64)));
    CHECK_FALSE(mask.has_grad());
    CHECK(a.grad().at(0) == 1.0);
    CHECK(a.grad().at(1) == 0.0);
    CHECK(a.grad().at(2) == 3.0);
    CHECK(b.grad().item() == 2.0);
}

TEST_CASE("where names itself and all three shapes on a mismatch", "[elementwise]") {
    const Tensor m = ones({2, 3}), a = zeros({4}), b = zeros({3});
    REQUIRE_THROWS_AS(where(m, a, b), ShapeError);
    REQUIRE_THROWS_WITH(where(m, a, b), Contains("where:") && Contains("mask [2, 3]") && Contains("a [4]") &&
                                            Contains("b [3]"));
    REQUIRE_THROWS_WITH(where(m, zeros({3}), zeros({3}, f64)),
                        Contains("where:") && Contains("float32") && Contains("float64"));
    REQUIRE_THROWS_WITH(where(Tensor(), a, a), Contains("where:") && Contains("mask") && Contains("undefined"));
}
