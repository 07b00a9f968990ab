// gradcheck, tested as a library feature: it passes on correct ops, and on a deliberately wrong
// backward it fails naming the input, the element and both values. Also custom_op, whose backward
// gradcheck exists to prove, and the errors custom_op raises for a malformed backward.
#include <catch2/catch.hpp>

#include <random>

#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;
using Mode = GradcheckOptions::Mode;

namespace {

// y = x^2 elementwise, with a backward that is right everywhere except at flat index `bad`, where
// it uses the derivative 2x + error: the smallest possible bug, in one known place.
Tensor square_wrong_at(const Tensor& x, std::size_t bad, double error) {
    const auto& xv = x.value<double>();
    Tensor y(xt::xarray<double>(xv * xv));
    return custom_op("square_wrong_at", {x}, y,
                     [bad, error](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
                         const auto& gv = g.value<double>();
                         xt::xarray<double> d = 2.0 * in[0].value<double>() * gv;
                         d.data()[bad] += error * gv.data()[bad];
                         return std::vector<Tensor>{Tensor(std::move(d))};
                     });
}

std::size_t flat_index(const Shape& idx, const Shape& shape) {
    std::size_t k = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) k = k * shape[d] + idx[d];
    return k;
}

}  // namespace

TEST_CASE("gradcheck passes on correct ops, broadcasting included", "[gradcheck]") {
    std::mt19937_64 gen(11);
    const Tensor x = uniform(gen, {3, 4}), w = uniform(gen, {4, 5}), b = uniform(gen, {5});
    // b [5] is broadcast over the 3 rows: its gradient is summed back by the ops.
    auto f = [](const std::vector<Tensor>& in) { return tanh(matmul(in[0], in[1])) + in[2]; };
    const GradcheckResult r = gradcheck(f, {x, w, b});
    INFO(r.message);
    REQUIRE(r);
    CHECK(r.ok);
    CHECK(r.compared == 15 * (12 + 20 + 5));  // full Jacobian: every output against every input element
    CHECK(r.worst_error < 1e-8);
    CHECK_THAT(r.message, Contains("gradcheck passed"));

    const GradcheckResult rr = gradcheck(f, {x, w, b}, {.mode = Mode::random_direction, .directions = 4});
    INFO(rr.message);
    REQUIRE(rr);
    CHECK(rr.compared == 4 * 3);  // one directional derivative per input per direction
}

TEST_CASE("gradcheck leaves the caller's tensors and tape alone", "[gradcheck]") {
    std::mt19937_64 gen(12);
    Tensor x = uniform(gen, {2, 3});
    x.set_requires_grad();
    Tape tape;
    const GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return sum(exp(in[0])); }, {x});
    REQUIRE(r);
    CHECK_FALSE(x.has_grad());
    CHECK(tape.size() == 0);
    CHECK(Tape::active() == &tape);
}

TEST_CASE("gradcheck fails on a wrong backward, naming input, element and values (full mode)", "[gradcheck]") {
    std::mt19937_64 gen(13);
    const Shape shape{3, 4};
    const Shape bad{1, 2};
    const double error = 0.5;
    const Tensor a = uniform(gen, shape).set_name("a");
    const Tensor x = uniform(gen, shape).set_name("x");
    // The output is [3, 4]: the Jacobian of square_wrong_at is diagonal, so the one wrong entry sits
    // at input element [1, 2], output element [1, 2].
    auto f = [&](const std::vector<Tensor>& in) {
        return in[0] * 3.0 + square_wrong_at(in[1], flat_index(bad, shape), error);
    };
    const GradcheckResult r = gradcheck(f, {a, x});
    INFO(r.message);
    REQUIRE_FALSE(r);
    CHECK_FALSE(r.ok);
    CHECK(r.input == "x");
    CHECK(r.input_index == 1);
    CHECK(r.element == bad);
    CHECK(r.output_element == bad);
    const double xv = x.value<double>()(1, 2);
    CHECK(r.numeric == Approx(2 * xv).margin(1e-8));
    CHECK(r.analytic == Approx(2 * xv + error).margin(1e-12));
    CHECK(r.worst_error == Approx(error).margin(1e-8));
    CHECK_THAT(r.message, Contains("gradcheck failed") && Contains("'x'") && Contains("[1, 2]") &&
                              Contains(fmt::format("{:.10g}", r.analytic)) &&
                              Contains(fmt::format("{:.10g}", r.numeric)));
}

TEST_CASE("gradcheck fails on a wrong backward in random-direction mode, naming the input", "[gradcheck]") {
    std::mt19937_64 gen(14);
    const Tensor a = uniform(gen, {3, 4}).set_name("a");
    const Tensor x = uniform(gen, {3, 4}).set_name("x");
    auto f = [](const std::vector<Tensor>& in) { return matmul(in[0], transpose(square_wrong_at(in[1], 7, 10.0))); };
    const GradcheckResult r = gradcheck(f, {a, x}, {.mode = Mode::random_direction, .directions = 3, .seed = 5});
    INFO(r.message);
    REQUIRE_FALSE(r);
    CHECK(r.input == "x");
    CHECK(r.input_index == 1);
    CHECK(r.element.empty());
    CHECK(r.direction < 3);
    CHECK(std::abs(r.analytic - r.numeric) > 1e-3);
    CHECK_THAT(r.message, Contains("'x'") && Contains("random direction"));

    // The same function with a correct backward passes in this mode: the failure above is the bug.
    auto g = [](const std::vector<Tensor>& in) { return matmul(in[0], transpose(square_wrong_at(in[1], 7, 0.0))); };
    const GradcheckResult ok = gradcheck(g, {a, x}, {.mode = Mode::random_direction, .directions = 3, .seed = 5});
    INFO(ok.message);
    CHECK(ok);
}

TEST_CASE("gradcheck refuses float32 inputs and a float32 output, saying why", "[gradcheck]") {
    std::mt19937_64 gen(15);
    const Tensor x64 = uniform(gen, {2, 2});
    const Tensor x32 = x64.to(f32);
    auto f = [](const std::vector<Tensor>& in) { return sum(in[0] * in[0]); };
    REQUIRE_THROWS_AS(gradcheck(f, {x64, x32}), ValueError);
    REQUIRE_THROWS_WITH(gradcheck(f, {x64, x32}),
                        Contains("input 1 is float32") && Contains("float64") && Contains("rounding"));

    auto to32 = [](const std::vector<Tensor>& in) { return sum(in[0] * in[0]).to(f32); };
    REQUIRE_THROWS_AS(gradcheck(to32, {x64}), ValueError);
    REQUIRE_THROWS_WITH(gradcheck(to32, {x64}), Contains("float32") && Contains("precision"));
}

TEST_CASE("gradcheck names inputs by option, then by tensor name, then by position", "[gradcheck]") {
    std::mt19937_64 gen(16);
    const Tensor w = uniform(gen, {2, 3}).set_name("w_from_tensor");
    const Tensor x = uniform(gen, {2, 3});
    auto f = [](const std::vector<Tensor>& in) { return sum(in[0] + square_wrong_at(in[1], 4, 1.0)); };

    const GradcheckResult by_option = gradcheck(f, {w, x}, {.names = {"weight_hh_l0", "bias_hh_l0"}});
    REQUIRE_FALSE(by_option);
    CHECK(by_option.input == "bias_hh_l0");
    CHECK(by_option.element == Shape{1, 1});
    CHECK_THAT(by_option.message, Contains("'bias_hh_l0'"));

    const GradcheckResult by_position = gradcheck(f, {w, x});
    REQUIRE_FALSE(by_position);
    CHECK(by_position.input == "input 1");
    CHECK_THAT(by_position.message, Contains("'input 1'"));

    // The wrong input first: its tensor name is used when no names are given.
    auto g = [](const std::vector<Tensor>& in) { return sum(square_wrong_at(in[0], 0, 1.0) + in[1]); };
    const GradcheckResult by_tensor = gradcheck(g, {w, x});
    REQUIRE_FALSE(by_tensor);
    CHECK(by_tensor.input == "w_from_tensor");
    CHECK_THAT(by_tensor.message, Contains("'w_from_tensor'"));

    REQUIRE_THROWS_AS(gradcheck(f, {w, x}, {.names = {"only_one"}}), ValueError);
}

TEST_CASE("an input the function ignores gets a zero gradient and passes, a fake gradient for it fails",
          "[gradcheck]") {
    std::mt19937_64 gen(17);
    const Tensor x = uniform(gen, {2, 3}).set_name("x");
    const Tensor unused = uniform(gen, {4}).set_name("unused");
    const GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return sum(in[0] * in[0]); }, {x, unused});
    INFO(r.message);
    REQUIRE(r);
    CHECK(r.compared == 6 + 4);  // the ignored input is compared too, against a zero gradient

    // The ignored input really is checked: a custom op claiming a gradient for it is caught.
    auto fake = [](const std::vector<Tensor>& in) {
        const auto& xv = in[0].value<double>();
        Tensor y(xt::xarray<double>(xv * xv));
        y = custom_op("claims_unused", {in[0], in[1]}, y,
                      [](const Tensor& g, const std::vector<Tensor>& ins, const Tensor&) {
                          xt::xarray<double> dx = 2.0 * ins[0].value<double>() * g.value<double>();
                          xt::xarray<double> du = xt::zeros<double>(ins[1].shape());
                          du(3) = 0.25;
                          return std::vector<Tensor>{Tensor(std::move(dx)), Tensor(std::move(du))};
                      });
        return sum(y);
    };
    const GradcheckResult bad = gradcheck(fake, {x, unused});
    REQUIRE_FALSE(bad);
    CHECK(bad.input == "unused");
    CHECK(bad.element == Shape{3});
    CHECK(bad.analytic == Approx(0.25));
    CHECK(bad.numeric == Approx(0.0).margin(1e-9));
}

TEST_CASE("a non-scalar output gets its full Jacobian checked", "[gradcheck]") {
    std::mt19937_64 gen(18);
    const Tensor x = uniform(gen, {2, 3}), w = uniform(gen, {3, 4});
    auto f = [](const std::vector<Tensor>& in) { return sigmoid(matmul(in[0], in[1])); };  // [2, 4]
    const GradcheckResult r = gradcheck(f, {x, w});
    INFO(r.message);
    REQUIRE(r);
    CHECK(r.compared == 8 * (6 + 12));

    // The bug at x[0, 1] shows in every output of row 0 (those depend on x[0, 1]) and in none of
    // row 1; the worst of them is reported.
    auto g = [](const std::vector<Tensor>& in) { return matmul(square_wrong_at(in[0], 1, 2.0), in[1]); };
    const GradcheckResult bad = gradcheck(g, {x, w});
    INFO(bad.message);
    REQUIRE_FALSE(bad);
    CHECK(bad.input_index == 0);
    CHECK(bad.element == Shape{0, 1});
    REQUIRE(bad.output_element.size() == 2);
    CHECK(bad.output_element[0] == 0);
}

TEST_CASE("gradcheck refuses bad options", "[gradcheck]") {
    std::mt19937_64 gen(19);
    const Tensor x = uniform(gen, {2});
    auto f = [](const std::vector<Tensor>& in) { return sum(in[0]); };
    REQUIRE_THROWS_AS(gradcheck(f, {x}, {.eps = 0.0}), ValueError);
    REQUIRE_THROWS_AS(gradcheck(f, {x}, {.mode = Mode::random_direction, .directions = 0}), ValueError);
    REQUIRE_THROWS_AS(gradcheck(f, {}), ValueError);
    REQUIRE_THROWS_AS(gradcheck(GradcheckFn(), {x}), ValueError);
}

// ---- custom_op ------------------------------------------------------------------------------

TEST_CASE("custom_op with a correct backward passes gradcheck", "[gradcheck][custom_op]") {
    std::mt19937_64 gen(20);
    const Tensor a = uniform(gen, {3, 2}).set_name("a"), b = uniform(gen, {3, 2}).set_name("b");
    // softplus(a) * b as one op, its backward written by hand
    auto f = [](const std::vector<Tensor>& in) {
        const auto& av = in[0].value<double>();
        const auto& bv = in[1].value<double>();
        Tensor y(xt::xarray<double>(xt::log1p(xt::exp(av)) * bv));
        return custom_op("softplus_times", in, y, [](const Tensor& g, const std::vector<Tensor>& ins, const Tensor&) {
            const auto& x = ins[0].value<double>();
            const auto& gv = g.value<double>();
            xt::xarray<double> da = gv * ins[1].value<double>() / (1.0 + xt::exp(-x));
            xt::xarray<double> db = gv * xt::log1p(xt::exp(x));
            return std::vector<Tensor>{Tensor(std::move(da)), Tensor(std::move(db))};
        });
    };
    const GradcheckResult r = gradcheck(f, {a, b});
    INFO(r.message);
    REQUIRE(r);
    CHECK(r.compared == 6 * 12);
    // And inside a larger function, where it must accumulate with other paths into a.
    const GradcheckResult r2 = gradcheck([&](const std::vector<Tensor>& in) { return sum(f(in) * in[0]); }, {a, b});
    INFO(r2.message);
    CHECK(r2);
}

TEST_CASE("custom_op: a backward with the wrong shape or count is an error naming the op", "[gradcheck][custom_op]") {
    std::mt19937_64 gen(21);
    Tensor x = uniform(gen, {2, 3});
    x.set_requires_grad();
    auto y_of = [](const Tensor& t) { return Tensor(xt::xarray<double>(t.value<double>() * 2.0)); };

    {
        Tape tape;
        Tensor y = custom_op("transposed_grad", {x}, y_of(x),
                             [](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
                                 return std::vector<Tensor>{transpose(g * 2.0)};  // [3, 2] for a [2, 3] input
                             });
        REQUIRE_THROWS_AS(tape.backward(sum(y)), ShapeError);
    }
    {
        Tape tape;
        Tensor y = custom_op("transposed_grad", {x}, y_of(x),
                             [](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
                                 return std::vector<Tensor>{transpose(g * 2.0)};
                             });
        REQUIRE_THROWS_WITH(tape.backward(sum(y)), Contains("transposed_grad") && Contains("[3, 2]") &&
                                                       Contains("[2, 3]"));
    }
    {
        Tape tape;
        Tensor y = custom_op("two_grads_for_one", {x}, y_of(x),
                             [](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
                                 return std::vector<Tensor>{g * 2.0, g};
                             });
        REQUIRE_THROWS_WITH(tape.backward(sum(y)), Contains("two_grads_for_one") && Contains("2 gradients") &&
                                                       Contains("1 inputs"));
    }
    CHECK_FALSE(x.has_grad());
    // Through gradcheck the same error surfaces, not a silent pass or fail.
    auto f = [&](const std::vector<Tensor>& in) {
        return custom_op("no_grads", in, y_of(in[0]),
                         [](const Tensor&, const std::vector<Tensor>&, const Tensor&) {
                             return std::vector<Tensor>{};  // no gradient at all
                         });
    };
    REQUIRE_THROWS_WITH(gradcheck(f, {x.detach()}), Contains("no_grads") && Contains("0 gradients"));
}
