// Activations: each one's forward against a plain reference in float32 and float64, its gradient by
// a float64 full-Jacobian gradcheck (a value used twice, a diamond), PyTorch's conventions at the
// kinks, extreme and NaN inputs, and the refusal of bad arguments.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {

// Entries uniform in [-hi, hi) but at least `gap` from every kink in `kinks`.
Tensor clear_of(std::mt19937& gen, const Shape& shape, DType dt, double hi, std::vector<double> kinks,
                double gap = 0.1) {
    Tensor t = uniform(gen, shape, f64, -hi, hi);
    for (double& e : t.mutable_value<double>())
        for (double k : kinks)
            if (std::abs(e - k) < gap) e = k + (e < k ? -gap : gap);
    return dt == f64 ? t : t.to(f32);
}

// Each element of y against ref(x element), with a tolerance fitting the dtype.
void require_map(const Tensor& x, const Tensor& y, const std::function<double(double)>& ref) {
    REQUIRE(y.shape() == x.shape());
    REQUIRE(y.dtype() == x.dtype());
    const double tol = x.dtype() == f32 ? 2e-6 : 1e-13;
    for (std::size_t i = 0; i < x.numel(); ++i) {
        const double want = ref(x.at(i)), got = y.at(i);
        INFO("x = " << x.at(i) << ": got " << got << ", want " << want);
        CHECK(got == Approx(want).epsilon(tol).margin(tol));
    }
}

double ref_sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
double ref_softplus(double v, double beta, double threshold) {
    return beta * v > threshold ? v : std::log1p(std::exp(beta * v)) / beta;
}

using Act = std::function<Tensor(const Tensor&)>;
struct Case {
    const char* name;
    Act f;
    std::function<double(double)> ref;
    std::vector<double> kinks;  // kept clear of in gradchecks
};

const std::vector<Case> kCases = {
    {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, {}},
    {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, ref_sigmoid, {}},
    {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; }, {0.0}},
    {"leaky_relu", [](const Tensor& x) { return leaky_relu(x); }, [](double v) { return v > 0 ? v : 0.01 * v; }, {0.0}},
    {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.3); }, [](double v) { return v > 0 ? v : 0.3 * v; },
     {0.0}},
    {"hardtanh", [](const Tensor& x) { return hardtanh(x); }, [](double v) { return std::clamp(v, -1.0, 1.0); },
     {-1.0, 1.0}},
    {"hardtanh", [](const Tensor& x) { return hardtanh(x, -0.5, 2.0); },
     [](double v) { return std::clamp(v, -0.5, 2.0); }, {-0.5, 2.0}},
    {"softplus", [](const Tensor& x) { return softplus(x); }, [](double v) { return ref_softplus(v, 1, 20); }, {}},
    {"softplus", [](const Tensor& x) { return softplus(x, 2.0, 3.0); }, [](double v) { return ref_softplus(v, 2, 3); },
     {1.5}},
    {"softplus", [](const Tensor& x) { return softplus(x, 0.5); }, [](double v) { return ref_softplus(v, 0.5, 20); },
     {}},
};

}  // namespace

TEST_CASE("activations: values in both dtypes against a reference", "[activation]") {
    std::mt19937 gen(11);
    for (const Case& c : kCases) {
        INFO(c.name);
        for (DType dt : {f32, f64}) {
            const Tensor x = uniform(gen, {4, 6}, dt, -3.0, 3.0);
            require_map(x, c.f(x), c.ref);
        }
    }
}

TEST_CASE("activations: gradients, a value used twice and a diamond", "[activation]") {
    std::mt19937 gen(12);
    for (const Case& c : kCases) {
        INFO(c.name);
        require_gradcheck([&](const std::vector<Tensor>& in) { return c.f(in[0]); },
                          {clear_of(gen, {3, 5}, f64, 3.0, c.kinks)});
        // The input is used twice (inside and outside), and so is the activation's output.
        require_gradcheck(
            [&](const std::vector<Tensor>& in) {
                const Tensor y = c.f(in[0]);
                return y * y + in[0] * y;
            },
            {clear_of(gen, {2, 4}, f64, 3.0, c.kinks)});
        REQUIRE_THROWS_WITH(c.f(Tensor()), Contains(std::string(c.name) + ":") && Contains("undefined"));
    }
    // A diamond through two activations: h -> (tanh h, sigmoid h) -> product.
    require_gradcheck(
        [](const std::vector<Tensor>& in) {
            const Tensor h = in[0] * in[1];
            return tanh(h) * sigmoid(h) + softplus(h);
        },
        {uniform(gen, {3, 4}), uniform(gen, {4})});
}

TEST_CASE("activations at their kinks follow PyTorch", "[activation]") {
    for (DType dt : {f32, f64}) {
        const Tensor x = Tensor::of({-1.0, 0.0, 1.0}, dt);
        // relu and leaky_relu: the negative side's slope at 0.
        const Tensor gr = grad_of([](const Tensor& t) { return relu(t); }, x);
        CHECK(gr.at(0) == 0.0);
        CHECK(gr.at(1) == 0.0);
        CHECK(gr.at(2) == 1.0);
        const Tensor gl = grad_of([](const Tensor& t) { return leaky_relu(t, 0.2); }, x);
        CHECK(gl.at(0) == Approx(0.2));
        CHECK(gl.at(1) == Approx(0.2));
        CHECK(gl.at(2) == 1.0);
        // hardtanh: gradient 0 at the bounds (clamp counts them inside; hardtanh does not).
        const Tensor xh = Tensor::of({-1.0, -0.5, 1.0, 1.5}, dt);
        const Tensor gh = grad_of([](const Tensor& t) { return hardtanh(t); }, xh);
        CHECK(gh.at(0) == 0.0);
        CHECK(gh.at(1) == 1.0);
        CHECK(gh.at(2) == 0.0);
        CHECK(gh.at(3) == 0.0);
        CHECK(hardtanh(xh).at(3) == 1.0);
        // softplus at its threshold: beta x = threshold is still the smooth branch; above it, x itself.
        const Tensor xs = Tensor::of({10.0, 10.5}, dt);
        const Tensor ys = softplus(xs, 2.0, 20.0);
        CHECK(ys.at(0) == Approx(std::log1p(std::exp(20.0)) / 2.0));
        CHECK(ys.at(1) == 10.5);
        const Tensor gs = grad_of([](const Tensor& t) { return softplus(t, 2.0, 20.0); }, xs);
        CHECK(gs.at(0) == Approx(ref_sigmoid(20.0)));
        CHECK(gs.at(1) == 1.0);
    }
}

TEST_CASE("activations stay finite for extreme inputs, NaN propagates", "[activation]") {
    for (DType dt : {f32, f64}) {
        const Tensor x = Tensor::of({-1000.0, -80.0, 80.0, 1000.0}, dt);
        const Tensor s = sigmoid(x), t = tanh(x);
        CHECK(s.at(0) == 0.0);
        CHECK(s.at(3) == 1.0);
        CHECK(t.at(0) == -1.0);
        CHECK(t.at(3) == 1.0);
        const Tensor gs = grad_of([](const Tensor& v) { return sigmoid(v); }, x);
        const Tensor gt = grad_of([](const Tensor& v) { return tanh(v); }, x);
        for (std::size_t i : {0, 3}) {  // the derivatives underflow to exactly 0, never NaN
            CHECK(gs.at(i) == 0.0);
            CHECK(gt.at(i) == 0.0);
        }
        // softplus: no overflow even with the linear branch switched off by a huge threshold.
        const Tensor sp = softplus(x, 1.0, 1e9), gsp = grad_of([](const Tensor& v) { return softplus(v, 1.0, 1e9); }, x);
        CHECK(sp.at(0) == 0.0);
        CHECK(sp.at(1) == Approx(std::exp(-80.0)));
        CHECK(sp.at(2) == 80.0);
        CHECK(sp.at(3) == 1000.0);
        CHECK(gsp.at(0) == 0.0);
        CHECK(gsp.at(3) == 1.0);
        CHECK(softplus(x).at(3) == 1000.0);
        // NaN in, NaN out; relu's gradient there is 0.
        const Tensor n = Tensor::of({NAN}, dt);
        for (const Case& c : kCases) {
            INFO(c.name);
            CHECK(std::isnan(c.f(n).item()));
        }
        CHECK(grad_of([](const Tensor& v) { return relu(v); }, n).item() == 0.0);
    }
}

TEST_CASE("activations refuse bad arguments with the op, the values and the shape", "[activation]") {
    const Tensor x = zeros({2, 3});
    REQUIRE_THROWS_AS(hardtanh(x, 1.0, -1.0), ValueError);
    REQUIRE_THROWS_WITH(hardtanh(x, 1.0, -1.0), Contains("hardtanh:") && Contains("min 1") && Contains("max -1") &&
                                                    Contains("[2, 3]"));
    REQUIRE_THROWS_AS(softplus(x, 0.0), ValueError);
    REQUIRE_THROWS_WITH(softplus(x, -1.0), Contains("softplus:") && Contains("beta") && Contains("-1") &&
                                               Contains("[2, 3]"));
    REQUIRE_THROWS_AS(softplus(x, NAN), ValueError);
}
