// softmax, log_softmax, the losses, dropout and one_hot: forward values against plain-loop
// references and hand-worked cases, stability at logits of +-1000, masking and ignore_index
// excluding positions exactly, full float64 gradchecks, and the errors bad inputs raise.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

namespace {

using Targets = xt::xarray<std::int64_t>;

Tensor randn64(Generator& gen, const Shape& s) { return randn(s, gen, f64); }

Targets random_targets(Generator& gen, const Shape& s, std::size_t classes) {
    Targets t = Targets::from_shape(s);
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<std::int64_t>(gen.randint(classes));
    return t;
}

// A float64 tensor from a flat list of values.
Tensor tensor64(const Shape& s, const std::vector<double>& v) {
    xt::xarray<double> a = xt::xarray<double>::from_shape(s);
    REQUIRE(a.size() == v.size());
    std::copy(v.begin(), v.end(), a.data());
    return Tensor(std::move(a));
}

// Reference log_softmax over the last axis, in long double: rows of x viewed as [N, C].
std::vector<long double> ref_log_softmax_rows(const Tensor& x) {
    const std::size_t C = x.shape().back(), N = x.numel() / C;
    std::vector<long double> out(x.numel());
    for (std::size_t r = 0; r < N; ++r) {
        long double m = -INFINITY, s = 0;
        for (std::size_t k = 0; k < C; ++k) m = std::max<long double>(m, x.at(r * C + k));
        for (std::size_t k = 0; k < C; ++k) s += std::exp(static_cast<long double>(x.at(r * C + k)) - m);
        for (std::size_t k = 0; k < C; ++k) out[r * C + k] = x.at(r * C + k) - m - std::log(s);
    }
    return out;
}

// Full-mode gradcheck; a failing CHECK(check(...)) prints the result's message (input, element,
// both values).
GradcheckResult check(const GradcheckFn& f, const std::vector<Tensor>& in) {
    GradcheckResult r = gradcheck(f, in);
    CHECK(r.compared > 0);
    return r;
}

// A 0-d target, for logits [C].
Targets scalar_target(std::int64_t v) {
    Targets t = Targets::from_shape(Shape{});
    t() = v;
    return t;
}

// Rows of x [.., C] at the positions where keep is true, as a new [n, C] tensor, and the
// matching targets: the "computed separately" side of the masking tests.
std::pair<Tensor, Targets> keep_rows(const Tensor& x, const Targets& t, const std::vector<bool>& keep) {
    const std::size_t C = x.shape().back();
    std::vector<double> v;
    std::vector<std::int64_t> tk;
    for (std::size_t r = 0; r < keep.size(); ++r) {
        if (!keep[r]) continue;
        for (std::size_t k = 0; k < C; ++k) v.push_back(x.at(r * C + k));
        tk.push_back(t.data()[r]);
    }
    Targets tt = Targets::from_shape({tk.size()});
    std::copy(tk.begin(), tk.end(), tt.data());
    return {tensor64({tk.size(), C}, v), tt};
}

}  // namespace

// ---- softmax, log_softmax ------------------------------------------------------------------

TEST_CASE("softmax and log_softmax: hand-worked values", "[functional]") {
    // softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6
    const Tensor x = Tensor::of({0.0, std::log(2.0), std::log(3.0)}, f64);
    const Tensor y = softmax(x);
    CHECK(y.at(0) == Approx(1.0 / 6));
    CHECK(y.at(1) == Approx(2.0 / 6));
    CHECK(y.at(2) == Approx(3.0 / 6));
    const Tensor ly = log_softmax(x);
    CHECK(ly.at(2) == Approx(std::log(0.5)));
    CHECK(ly.at(0) == Approx(-std::log(6.0)));
}

TEST_CASE("softmax and log_softmax along any axis match a plain-loop reference", "[functional]") {
    Generator gen(1);
    const Shape s{2, 3, 4};
    const Tensor x = randn64(gen, s);
    for (long axis : {0L, 1L, 2L, -1L, -3L}) {
        const std::size_t ax = static_cast<std::size_t>(axis < 0 ? axis + 3 : axis);
        const Tensor y = softmax(x, axis), ly = log_softmax(x, axis);
        REQUIRE(y.shape() == s);
        for (std::size_t i = 0; i < 2; ++i)
            for (std::size_t j = 0; j < 3; ++j)
                for (std::size_t k = 0; k < 4; ++k) {
                    std::size_t idx[3] = {i, j, k};
                    const auto flat = [&](std::size_t a, std::size_t b, std::size_t c) { return (a * 3 + b) * 4 + c; };
                    double denom = 0;
                    for (std::size_t m = 0; m < s[ax]; ++m) {
                        std::size_t o[3] = {i, j, k};
                        o[ax] = m;
                        denom += std::exp(x.at(flat(o[0], o[1], o[2])));
                    }
                    const std::size_t f = flat(idx[0], idx[1], idx[2]);
                    CHECK(y.at(f) == Approx(std::exp(x.at(f)) / denom).epsilon(1e-12));
                    CHECK(ly.at(f) == Approx(x.at(f) - std::log(denom)).epsilon(1e-12));
                }
        // Every slice along the axis sums to 1.
        const Tensor sums = sum(y, axis);
        for (std::size_t i = 0; i < sums.numel(); ++i) CHECK(sums.at(i) == Approx(1.0).epsilon(1e-14));
    }
}

TEST_CASE("softmax and log_softmax stay finite at logits of +-1000, in both dtypes", "[functional]") {
    for (DType dt : {f32, f64}) {
        const Tensor x = Tensor::of({{1000.0, 0.0, -1000.0}, {1000.0, 1000.0, -1000.0}}, dt);
        const Tensor y = softmax(x), ly = log_softmax(x);
        for (std::size_t i = 0; i < 6; ++i) {
            CHECK(std::isfinite(y.at(i)));
            CHECK(std::isfinite(ly.at(i)));
        }
        CHECK(y.at(0) == 1.0);
        CHECK(y.at(2) == 0.0);
        CHECK(y.at(3) == Approx(0.5));
        CHECK(ly.at(0) == 0.0);
        CHECK(ly.at(1) == -1000.0);
        CHECK(ly.at(2) == -2000.0);
        CHECK(ly.at(4) == Approx(-std::log(2.0)));
        CHECK(ly.at(5) == Approx(-2000.0 - std::log(2.0)));
        // Backward is as stable as forward.
        Tensor xg = x.detach().set_requires_grad();
        Tape tape;
        tape.backward(sum(log_softmax(xg) * Tensor::of({{1.0, 2.0, 3.0}, {1.0, 2.0, 3.0}}, dt)));
        for (std::size_t i = 0; i < 6; ++i) CHECK(std::isfinite(xg.grad().at(i)));
        CHECK(xg.grad().at(0) == Approx(1.0 - 6.0));  // g - softmax * sum(g)
    }
}

TEST_CASE("softmax in float32 agrees with float64", "[functional]") {
    Generator gen(2);
    const Tensor x = randn64(gen, {5, 7}) * 4.0;
    const Tensor y64 = softmax(x), y32 = softmax(x.to(f32));
    const Tensor l64 = log_softmax(x, 0), l32 = log_softmax(x.to(f32), 0);
    CHECK(y32.dtype() == f32);
    for (std::size_t i = 0; i < x.numel(); ++i) {
        CHECK(y32.at(i) == Approx(y64.at(i)).margin(1e-6));
        CHECK(l32.at(i) == Approx(l64.at(i)).margin(1e-5));
    }
}

TEST_CASE("softmax and log_softmax gradcheck along every axis", "[functional][gradcheck]") {
    Generator gen(3);
    const Tensor x = randn64(gen, {2, 3, 4});
    for (long axis : {0L, 1L, -1L}) {
        INFO("axis " << axis);
        CHECK(check([axis](const std::vector<Tensor>& in) { return softmax(in[0], axis); }, {x}));
        CHECK(check([axis](const std::vector<Tensor>& in) { return log_softmax(in[0], axis); }, {x}));
    }
    // x used three times: the gradients of each path add up.
    CHECK(check([](const std::vector<Tensor>& in) { return softmax(in[0]) * in[0] + log_softmax(in[0], 1); }, {x}));
}

TEST_CASE("softmax and log_softmax refuse bad input, naming op and shape", "[functional]") {
    const Tensor x = zeros({2, 3});
    REQUIRE_THROWS_AS(softmax(x, 2), ShapeError);
    REQUIRE_THROWS_WITH(softmax(x, 2), Contains("softmax") && Contains("axis 2") && Contains("[2, 3]"));
    REQUIRE_THROWS_WITH(log_softmax(x, -3), Contains("log_softmax") && Contains("axis -3") && Contains("[2, 3]"));
    REQUIRE_THROWS_AS(softmax(Tensor()), UsageError);
    REQUIRE_THROWS_WITH(log_softmax(Tensor()), Contains("log_softmax") && Contains("undefined"));
}

// ---- cross_entropy, nll_loss -----------------------------------------------------------------

TEST_CASE("cross_entropy: hand-worked values", "[functional]") {
    // Two equal logits: -log(1/2). Logits [0, ln 3], target 1: -log(3/4).
    const Tensor x = Tensor::of({{0.0, 0.0}, {0.0, std::log(3.0)}}, f64);
    const Targets t = {0, 1};
    const Tensor none = cross_entropy(x, t, {.reduction = Reduction::none});
    REQUIRE(none.shape() == Shape{2});
    CHECK(none.at(0) == Approx(std::log(2.0)));
    CHECK(none.at(1) == Approx(std::log(4.0 / 3.0)));
    const Tensor mean = cross_entropy(x, t);
    CHECK(mean.shape() == Shape{});
    CHECK(mean.item() == Approx((std::log(2.0) + std::log(4.0 / 3.0)) / 2));
    CHECK(cross_entropy(x, t, {.reduction = Reduction::sum}).item() == Approx(std::log(2.0) + std::log(4.0 / 3.0)));
    // A single row: logits [C], target [].
    CHECK(cross_entropy(Tensor::of({0.0, 0.0, 0.0, 0.0}, f64), scalar_target(2)).item() == Approx(std::log(4.0)));
}

TEST_CASE("cross_entropy equals -log_softmax picked at the targets, [T, B, C]", "[functional]") {
    Generator gen(4);
    const Shape s{3, 2, 5};
    const Tensor x = randn64(gen, s) * 3.0;
    const Targets t = random_targets(gen, {3, 2}, 5);
    const auto ref = ref_log_softmax_rows(x);
    const Tensor ls = log_softmax(x);
    const Tensor none = cross_entropy(x, t, {.reduction = Reduction::none});
    REQUIRE(none.shape() == Shape{3, 2});
    double total = 0;
    for (std::size_t r = 0; r < 6; ++r) {
        const std::size_t at = r * 5 + static_cast<std::size_t>(t.data()[r]);
        CHECK(none.at(r) == Approx(-static_cast<double>(ref[at])).epsilon(1e-12));
        CHECK(none.at(r) == Approx(-ls.at(at)).epsilon(1e-12));
        total += -static_cast<double>(ref[at]);
    }
    CHECK(cross_entropy(x, t, {.reduction = Reduction::sum}).item() == Approx(total).epsilon(1e-12));
    CHECK(cross_entropy(x, t).item() == Approx(total / 6).epsilon(1e-12));
    // nll_loss on log_softmax gives the same losses.
    const Tensor nll = nll_loss(ls, t, {.reduction = Reduction::none});
    for (std::size_t r = 0; r < 6; ++r) CHECK(nll.at(r) == Approx(none.at(r)).epsilon(1e-12));
}

TEST_CASE("cross_entropy stays finite at logits of +-1000, in both dtypes", "[functional]") {
    for (DType dt : {f32, f64}) {
        const Tensor x = Tensor::of({{1000.0, -1000.0}, {1000.0, -1000.0}, {-1000.0, -1000.0}}, dt);
        const Tensor none = cross_entropy(x, Targets{0, 1, 1}, {.reduction = Reduction::none});
        CHECK(none.at(0) == 0.0);
        CHECK(none.at(1) == 2000.0);
        CHECK(none.at(2) == Approx(std::log(2.0)));
        Tensor xg = x.detach().set_requires_grad();
        Tape tape;
        tape.backward(cross_entropy(xg, Targets{0, 1, 1}));
        for (std::size_t i = 0; i < 6; ++i) CHECK(std::isfinite(xg.grad().at(i)));
        CHECK(xg.grad().at(2) == Approx(1.0 / 3));  // (softmax - onehot) / N = (1 - 0) / 3
    }
}

TEST_CASE("a masked mean ignores the masked positions exactly", "[functional]") {
    Generator gen(5);
    const Shape s{4, 3, 6};  // [T, B, C]
    Tensor x = randn64(gen, s);
    const Targets t = random_targets(gen, {4, 3}, 6);
    // Padding: sequence b has length 4 - b; masked rows hold NaN logits, which must not leak.
    xt::xarray<double> mask = xt::zeros<double>({4, 3});
    std::vector<bool> keep(12);
    for (std::size_t ti = 0; ti < 4; ++ti)
        for (std::size_t b = 0; b < 3; ++b) {
            keep[ti * 3 + b] = ti < 4 - b;
            mask(ti, b) = keep[ti * 3 + b] ? 1.0 : 0.0;
        }
    const auto [xk, tk] = keep_rows(x, t, keep);
    for (std::size_t r = 0; r < 12; ++r)
        if (!keep[r])
            for (std::size_t k = 0; k < 6; ++k) x.mutable_value<double>().data()[r * 6 + k] = std::nan("");
    const CrossEntropyOptions masked{.weight = Tensor(mask)};
    CHECK(cross_entropy(x, t, masked).item() == cross_entropy(xk, tk).item());
    CrossEntropyOptions masked_sum = masked;
    masked_sum.reduction = Reduction::sum;
    CHECK(cross_entropy(x, t, masked_sum).item() == cross_entropy(xk, tk, {.reduction = Reduction::sum}).item());
    const Tensor none = cross_entropy(x, t, {.weight = Tensor(mask), .reduction = Reduction::none});
    for (std::size_t r = 0; r < 12; ++r)
        if (!keep[r]) CHECK(none.at(r) == 0.0);

    // Masked rows get a gradient of exactly 0; the kept rows get the gradient of the separate loss.
    Tensor xg = x.detach().set_requires_grad(), xkg = xk.detach().set_requires_grad();
    Tape tape;
    tape.backward(cross_entropy(xg, t, masked));
    tape.backward(cross_entropy(xkg, tk));
    std::size_t kr = 0;
    for (std::size_t r = 0; r < 12; ++r)
        for (std::size_t k = 0; k < 6; ++k) {
            if (keep[r]) CHECK(xg.grad().at(r * 6 + k) == xkg.grad().at(kr * 6 + k));
            else CHECK(xg.grad().at(r * 6 + k) == 0.0);
            kr += keep[r] && k == 5;
        }
    // A float32 mask works with float64 logits: the weight is a constant of either dtype.
    CHECK(cross_entropy(x, t, {.weight = Tensor(mask).to(f32)}).item() == cross_entropy(xk, tk).item());
}

TEST_CASE("ignore_index positions are left out exactly, for any ignore value", "[functional]") {
    Generator gen(6);
    const Tensor x = randn64(gen, {5, 4});
    Targets t = random_targets(gen, {5}, 4);
    for (std::int64_t ignore : {std::int64_t{-100}, std::int64_t{0}}) {
        INFO("ignore_index " << ignore);
        Targets ti = t;
        ti(1) = ignore;
        ti(3) = ignore;
        std::vector<bool> keep(5);
        for (std::size_t r = 0; r < 5; ++r) keep[r] = ti(r) != ignore;
        const auto [xk, tk] = keep_rows(x, ti, keep);
        CHECK(cross_entropy(x, ti, {.ignore_index = ignore}).item() == cross_entropy(xk, tk).item());
        const Tensor none = cross_entropy(x, ti, {.ignore_index = ignore, .reduction = Reduction::none});
        CHECK(none.at(1) == 0.0);
        CHECK(none.at(3) == 0.0);
        CHECK(nll_loss(log_softmax(x), ti, {.ignore_index = ignore}).item() ==
              Approx(cross_entropy(xk, tk).item()).epsilon(1e-12));
    }
}

TEST_CASE("weighted mean divides by the sum of weights over counted positions", "[functional]") {
    Generator gen(7);
    const Tensor x = randn64(gen, {6, 3});
    Targets t = random_targets(gen, {6}, 3);
    t(4) = -100;
    const xt::xarray<double> w = {0.5, 2.0, 0.0, 1.5, 9.0, 0.25};
    const Tensor none = cross_entropy(x, t, {.reduction = Reduction::none});
    double num = 0, den = 0;
    for (std::size_t r = 0; r < 6; ++r)
        if (r != 4) {
            num += w(r) * none.at(r);
            den += w(r);
        }
    CHECK(cross_entropy(x, t, {.weight = Tensor(w)}).item() == Approx(num / den).epsilon(1e-12));
    CHECK(cross_entropy(x, t, {.weight = Tensor(w), .reduction = Reduction::sum}).item() == Approx(num).epsilon(1e-12));
}

TEST_CASE("a mean over no counted position is NaN, with a zero gradient", "[functional]") {
    Tensor x = Tensor::of({{1.0, 2.0}, {3.0, 4.0}}, f64, true);
    const Targets t = {-100, -100};
    Tape tape;
    const Tensor loss = cross_entropy(x, t);
    CHECK(std::isnan(loss.item()));
    CHECK(cross_entropy(x, t, {.reduction = Reduction::sum}).item() == 0.0);
    CHECK(std::isnan(cross_entropy(x, Targets{0, 1}, {.weight = zeros({2}, f64)}).item()));
    tape.backward(loss);
    for (std::size_t i = 0; i < 4; ++i) CHECK(x.grad().at(i) == 0.0);
}

TEST_CASE("cross_entropy and nll_loss gradcheck: weights, ignored positions, [T, B, C], every reduction",
          "[functional][gradcheck]") {
    Generator gen(8);
    const Tensor x = randn64(gen, {3, 2, 4});  // [T, B, C]
    Targets t = random_targets(gen, {3, 2}, 4);
    t(0, 1) = -100;
    t(2, 0) = -100;
    const Tensor mask = tensor64({3, 2}, {1, 1, 1, 0, 1, 1});
    const Tensor w = tensor64({3, 2}, {0.5, 1.0, 2.0, 0.0, 1.5, 0.75});
    Targets t_pad2 = t;  // the same positions ignored through ignore_index = 2 (and any real 2s with them)
    t_pad2(0, 1) = 2;
    t_pad2(2, 0) = 2;
    for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
        INFO("reduction " << static_cast<int>(red));
        CHECK(check([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, {.reduction = red}); }, {x}));
        CHECK(check([&](const std::vector<Tensor>& in) {
                  return cross_entropy(in[0], t, {.weight = mask, .reduction = red});
              },
              {x}));
        CHECK(check([&](const std::vector<Tensor>& in) {
                  return cross_entropy(in[0], t_pad2, {.ignore_index = 2, .weight = w, .reduction = red});
              },
              {x}));
        CHECK(check([&](const std::vector<Tensor>& in) {
                  return nll_loss(log_softmax(in[0]), t, {.weight = w, .reduction = red});
              },
              {x}));
        // nll_loss directly on free inputs (not log-probabilities: the formula does not care).
        CHECK(check([&](const std::vector<Tensor>& in) { return nll_loss(in[0], t, {.weight = w, .reduction = red}); },
                    {x}));
    }
    // A value used twice: the logits are a function of x that reuses it.
    const Targets t2 = random_targets(gen, {5}, 3);
    CHECK(check([&](const std::vector<Tensor>& in) { return cross_entropy(in[0] * in[0] + in[0], t2); },
                {randn64(gen, {5, 3})}));
}

TEST_CASE("cross_entropy and nll_loss refuse bad input, naming op, shapes and values", "[functional]") {
    const Tensor x = zeros({3, 2, 5});
    REQUIRE_THROWS_AS(cross_entropy(x, Targets::from_shape({3, 3})), ShapeError);
    REQUIRE_THROWS_WITH(cross_entropy(x, xt::zeros<std::int64_t>({3, 3})),
                        Contains("cross_entropy") && Contains("[3, 2, 5]") && Contains("[3, 3]") &&
                            Contains("[3, 2]"));
    REQUIRE_THROWS_WITH(nll_loss(x, xt::zeros<std::int64_t>({6})),
                        Contains("nll_loss") && Contains("log_probs [3, 2, 5]") && Contains("[6]"));
    Targets t = xt::zeros<std::int64_t>({3, 2});
    t(1, 0) = 5;
    REQUIRE_THROWS_AS(cross_entropy(x, t), ValueError);
    REQUIRE_THROWS_WITH(cross_entropy(x, t), Contains("cross_entropy") && Contains("target 5") &&
                                                 Contains("position [1, 0]") && Contains("C = 5"));
    t(1, 0) = -1;
    REQUIRE_THROWS_WITH(nll_loss(x, t), Contains("nll_loss") && Contains("target -1") && Contains("position [1, 0]"));
    t(1, 0) = 0;
    REQUIRE_THROWS_AS(cross_entropy(x, t, {.weight = ones({2, 3})}), ShapeError);
    REQUIRE_THROWS_WITH(cross_entropy(x, t, {.weight = ones({2, 3})}),
                        Contains("cross_entropy") && Contains("weight [2, 3]") && Contains("[3, 2]"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::scalar(1.0), scalar_target(0)),
                        Contains("cross_entropy") && Contains("no class axis"));
    REQUIRE_THROWS_AS(cross_entropy(Tensor(), t), UsageError);
}

// ---- mse_loss, binary_cross_entropy_with_logits -------------------------------------------------

TEST_CASE("mse_loss: hand-worked values and gradients to both inputs", "[functional]") {
    const Tensor p = Tensor::of({1.0, 2.0, 3.0}, f64, true);
    const Tensor t = Tensor::of({1.0, 0.0, 0.0}, f64, true);
    CHECK(mse_loss(p, t).item() == Approx(13.0 / 3));
    CHECK(mse_loss(p, t, Reduction::sum).item() == Approx(13.0));
    const Tensor none = mse_loss(p, t, Reduction::none);
    CHECK(none.at(0) == 0.0);
    CHECK(none.at(1) == 4.0);
    CHECK(none.at(2) == 9.0);
    Tape tape;
    tape.backward(mse_loss(p, t));
    CHECK(p.grad().at(1) == Approx(2.0 * 2 / 3));
    CHECK(t.grad().at(2) == Approx(-2.0 * 3 / 3));
    CHECK(mse_loss(p.to(f32), t.to(f32)).dtype() == f32);
    CHECK(mse_loss(p.to(f32), t.to(f32)).item() == Approx(13.0 / 3));
}

TEST_CASE("mse_loss and binary_cross_entropy_with_logits gradcheck, every reduction", "[functional][gradcheck]") {
    Generator gen(9);
    const Tensor a = randn64(gen, {3, 4}), b = randn64(gen, {3, 4});
    const Tensor soft = uniform({3, 4}, 0.05, 0.95, gen, f64);  // targets inside (0, 1), off the bounds
    for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
        INFO("reduction " << static_cast<int>(red));
        CHECK(check([red](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], red); }, {a, b}));
        CHECK(check(
            [red](const std::vector<Tensor>& in) { return binary_cross_entropy_with_logits(in[0], in[1], red); },
            {a * 3.0, soft}));
    }
    // One value on both sides, used twice.
    CHECK(check([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[0] * in[0]); }, {a}));
    CHECK(check([&](const std::vector<Tensor>& in) { return binary_cross_entropy_with_logits(in[0] * in[0], soft); },
                {a}));
}

TEST_CASE("binary_cross_entropy_with_logits matches the naive formula and is stable", "[functional]") {
    Generator gen(10);
    const Tensor x = randn64(gen, {4, 5}) * 2.0;
    const Tensor t = rand({4, 5}, gen, f64);
    const Tensor none = binary_cross_entropy_with_logits(x, t, Reduction::none);
    double total = 0;
    for (std::size_t i = 0; i < 20; ++i) {
        const double s = 1 / (1 + std::exp(-x.at(i)));
        const double ref = -(t.at(i) * std::log(s) + (1 - t.at(i)) * std::log(1 - s));
        CHECK(none.at(i) == Approx(ref).epsilon(1e-10));
        total += ref;
    }
    CHECK(binary_cross_entropy_with_logits(x, t).item() == Approx(total / 20).epsilon(1e-10));
    for (DType dt : {f32, f64}) {
        const Tensor big = Tensor::of({1000.0, -1000.0, 1000.0, -1000.0}, dt, true);
        const Tensor tt = Tensor::of({1.0, 1.0, 0.0, 0.0}, dt);
        const Tensor l = binary_cross_entropy_with_logits(big, tt, Reduction::none);
        CHECK(l.at(0) == 0.0);
        CHECK(l.at(1) == 1000.0);
        CHECK(l.at(2) == 1000.0);
        CHECK(l.at(3) == 0.0);
        Tape tape;
        tape.backward(binary_cross_entropy_with_logits(big, tt, Reduction::sum));
        CHECK(big.grad().at(0) == 0.0);    // sigmoid(1000) - 1
        CHECK(big.grad().at(1) == -1.0);   // sigmoid(-1000) - 1
        CHECK(big.grad().at(2) == 1.0);
        CHECK(big.grad().at(3) == 0.0);
    }
}

TEST_CASE("mse_loss and binary_cross_entropy_with_logits refuse bad input", "[functional]") {
    const Tensor a = zeros({2, 3}), b = zeros({3, 2});
    REQUIRE_THROWS_AS(mse_loss(a, b), ShapeError);
    REQUIRE_THROWS_WITH(mse_loss(a, b), Contains("mse_loss") && Contains("[2, 3]") && Contains("[3, 2]"));
    REQUIRE_THROWS_AS(mse_loss(a, zeros({2, 3}, f64)), DTypeError);
    REQUIRE_THROWS_WITH(mse_loss(a, zeros({2, 3}, f64)), Contains("mse_loss") && Contains("float64"));
    REQUIRE_THROWS_WITH(mse_loss(a, zeros({3})), Contains("no broadcasting"));
    const char* op = "binary_cross_entropy_with_logits";
    REQUIRE_THROWS_WITH(binary_cross_entropy_with_logits(a, b),
                        Contains(op) && Contains("[2, 3]") && Contains("[3, 2]"));
    const Tensor bad = Tensor::of({{0.0, 1.0, 0.5}, {1.5, 0.0, 0.0}});
    REQUIRE_THROWS_AS(binary_cross_entropy_with_logits(a, bad), ValueError);
    REQUIRE_THROWS_WITH(binary_cross_entropy_with_logits(a, bad),
                        Contains(op) && Contains("target 1.5") && Contains("position [1, 0]"));
}

// ---- dropout ----------------------------------------------------------------------------------

TEST_CASE("dropout is the identity when not training or p == 0", "[functional]") {
    Generator gen;
    const Tensor x = ones({3, 4});
    CHECK(dropout(x, 0.5, false, gen).same(x));
    CHECK(dropout(x, 0.0, true, gen).same(x));
    CHECK(dropout(x, 0.5, false).same(x));
}

TEST_CASE("dropout: inverted scaling, rate and mean over 100k elements", "[functional]") {
    for (DType dt : {f32, f64}) {
        Generator gen(11);
        const double p = 0.3;
        const Tensor x = ones({200, 500}, dt);
        const Tensor y = dropout(x, p, true, gen);
        REQUIRE(y.shape() == x.shape());
        std::size_t zeros_seen = 0;
        double total = 0;
        const double kept = dt == f32 ? static_cast<double>(static_cast<float>(1 / (1 - p))) : 1 / (1 - p);
        for (std::size_t i = 0; i < y.numel(); ++i) {
            const double v = y.at(i);
            if (v == 0.0) ++zeros_seen;
            else REQUIRE(v == kept);
            total += v;
        }
        CHECK(zeros_seen / 1e5 == Approx(p).margin(0.007));  // std error 0.0015
        CHECK(total / 1e5 == Approx(1.0).margin(0.01));
    }
}

TEST_CASE("dropout masks are drawn from the generator: same seed, same mask", "[functional]") {
    const Tensor x = ones({10, 10}, f64);
    Generator a(12), b(12), c(13);
    const Tensor ya = dropout(x, 0.5, true, a), yb = dropout(x, 0.5, true, b), yc = dropout(x, 0.5, true, c);
    Generator d(12);
    const Tensor y32 = dropout(x.to(f32), 0.5, true, d);
    bool differ = false;
    for (std::size_t i = 0; i < 100; ++i) {
        CHECK(ya.at(i) == yb.at(i));
        CHECK(y32.at(i) == ya.at(i));  // the same draws decide the mask in either dtype
        differ = differ || ya.at(i) != yc.at(i);
    }
    CHECK(differ);
    manual_seed(12);
    const Tensor yd = dropout(x, 0.5, true);
    for (std::size_t i = 0; i < 100; ++i) CHECK(yd.at(i) == ya.at(i));
}

TEST_CASE("dropout: gradient through the mask, p == 1, gradcheck", "[functional][gradcheck]") {
    Generator gen(14);
    Tensor x = randn64(gen, {4, 5}).set_requires_grad();
    {
        Tape tape;
        Generator g(15);
        const Tensor y = dropout(x, 0.4, true, g);
        tape.backward(sum(y * 3.0));
        for (std::size_t i = 0; i < 20; ++i) CHECK(x.grad().at(i) == Approx(3.0 * y.at(i) / x.at(i)));
    }
    x.zero_grad();
    {
        Tape tape;
        const Tensor y = dropout(x, 1.0, true, gen);
        for (std::size_t i = 0; i < 20; ++i) CHECK(y.at(i) == 0.0);
        tape.backward(sum(y));
        for (std::size_t i = 0; i < 20; ++i) CHECK(x.grad().at(i) == 0.0);
    }
    // Each evaluation draws the same mask from a freshly seeded generator.
    CHECK(check(
        [](const std::vector<Tensor>& in) {
            Generator g(16);
            return dropout(in[0], 0.4, true, g) * in[0];
        },
        {x.detach()}));
}

TEST_CASE("dropout refuses p outside [0, 1], naming p and the shape", "[functional]") {
    Generator gen;
    const Tensor x = ones({2, 3});
    REQUIRE_THROWS_AS(dropout(x, 1.5, true, gen), ValueError);
    REQUIRE_THROWS_WITH(dropout(x, 1.5, true, gen), Contains("dropout") && Contains("1.5") && Contains("[2, 3]"));
    REQUIRE_THROWS_WITH(dropout(x, -0.1, false, gen), Contains("dropout") && Contains("-0.1"));
    REQUIRE_THROWS_AS(dropout(x, std::nan(""), true, gen), ValueError);
}

// ---- one_hot ----------------------------------------------------------------------------------

TEST_CASE("one_hot: values, shape, dtype, no gradient", "[functional]") {
    Generator gen(17);
    const Targets ids = random_targets(gen, {3, 4}, 6);
    for (DType dt : {f32, f64}) {
        const Tensor oh = one_hot(ids, 6, dt);
        REQUIRE(oh.shape() == Shape{3, 4, 6});
        CHECK(oh.dtype() == dt);
        CHECK_FALSE(oh.requires_grad());
        for (std::size_t r = 0; r < 12; ++r)
            for (std::size_t k = 0; k < 6; ++k)
                CHECK(oh.at(r * 6 + k) == (static_cast<std::size_t>(ids.data()[r]) == k ? 1.0 : 0.0));
    }
    const Tensor small = one_hot(Targets{2, 0}, 3);
    CHECK(small.shape() == Shape{2, 3});
    CHECK(small.at(2) == 1.0);
    CHECK(small.at(3) == 1.0);
    CHECK(small.at(0) + small.at(1) + small.at(4) + small.at(5) == 0.0);
}

TEST_CASE("one_hot refuses ids out of range, naming the id and its position", "[functional]") {
    Targets ids = {{0, 1}, {2, 3}};
    REQUIRE_THROWS_AS(one_hot(ids, 3), ValueError);
    REQUIRE_THROWS_WITH(one_hot(ids, 3), Contains("one_hot") && Contains("id 3") && Contains("position [1, 1]") &&
                                             Contains("num_classes 3"));
    ids(0, 1) = -2;
    REQUIRE_THROWS_WITH(one_hot(ids, 5), Contains("id -2") && Contains("position [0, 1]"));
}
