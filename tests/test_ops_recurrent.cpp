// rnn_sequence, the fused whole-sequence Elman op: float64 gradchecks in every configuration
// (tanh and relu, forward and reverse, with and without h0 and biases, a long unroll, a reused
// output), the same values and gradients as the composed per-step ops in float64 and float32,
// nn::RNN's fused path against its composed path, and the messages for inputs that do not fit.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {

struct Inputs {
    Tensor x, h0, w_ih, w_hh, b_ih, b_hh;
    std::vector<Tensor> all() const {
        std::vector<Tensor> v{x, w_ih, w_hh};
        for (const Tensor* t : {&b_ih, &b_hh, &h0})
            if (t->defined()) v.push_back(*t);
        return v;
    }
};

Inputs make_inputs(std::size_t T, std::size_t B, std::size_t F, std::size_t H, bool h0, bool bias, DType dt,
                   double scale = 0.5) {
    Inputs in;
    in.x = randn({T, B, F}, dt).set_requires_grad();
    in.w_ih = (randn({H, F}, dt) * scale).detach().set_requires_grad();
    in.w_hh = (randn({H, H}, dt) * scale).detach().set_requires_grad();
    if (bias) {
        in.b_ih = (randn({H}, dt) * 0.1).detach().set_requires_grad();
        in.b_hh = (randn({H}, dt) * 0.1).detach().set_requires_grad();
    }
    if (h0) in.h0 = (randn({B, H}, dt) * 0.5).detach().set_requires_grad();
    return in;
}

// The same recurrence from the general ops, one step at a time: the reference for the fused op.
Tensor composed(const Inputs& in, RNNSequenceOptions o) {
    const std::size_t T = in.x.size(0);
    Tensor xw = linear(in.x, in.w_ih, in.b_ih);
    if (in.b_hh.defined()) xw = xw + in.b_hh;
    std::vector<Tensor> hs(T);
    Tensor h = in.h0;
    for (std::size_t k = 0; k < T; ++k) {
        const std::size_t t = o.reverse ? T - 1 - k : k;
        Tensor pre = select(xw, 0, static_cast<long>(t));
        if (h.defined()) pre = pre + matmul(h, transpose(in.w_hh, 0, 1));
        h = o.relu ? relu(pre) : tanh(pre);
        hs[t] = h;
    }
    return stack(hs, 0);
}

// Values and every gradient of fused against composed, under a loss that weighs each h_t differently.
void require_same_as_composed(const Inputs& in, RNNSequenceOptions o, double tol) {
    const Tensor w = randn(Shape{in.x.size(0), in.x.size(1), in.w_hh.size(0)}, in.x.dtype());
    std::vector<Tensor> fused_grads, composed_grads;
    Tensor fused_out, composed_out;
    for (int pass = 0; pass < 2; ++pass) {
        for (const Tensor& t : in.all()) Tensor(t).zero_grad();
        Tape tape;
        const Tensor out = pass == 0 ? rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh, o) : composed(in, o);
        sum(out * w).backward();
        (pass == 0 ? fused_out : composed_out) = out.detach();
        for (const Tensor& t : in.all()) (pass == 0 ? fused_grads : composed_grads).push_back(t.grad());
    }
    CHECK(max_rel_diff(fused_out, composed_out) < tol);
    for (std::size_t i = 0; i < fused_grads.size(); ++i) {
        INFO("input " << i);
        REQUIRE(fused_grads[i].defined());
        CHECK(max_rel_diff(fused_grads[i], composed_grads[i]) < tol);
    }
}

}  // namespace

// expr throws exactly the error type E with a message the matcher accepts.
#define CHECK_THROWS_OF(expr, E, matcher)  \
    do {                                    \
        CHECK_THROWS_AS(expr, E);           \
        CHECK_THROWS_WITH(expr, matcher);   \
    } while (0)

TEST_CASE("rnn_sequence: float64 gradcheck in every configuration", "[recurrent]") {
    manual_seed(11);
    for (bool relu : {false, true})
        for (bool reverse : {false, true})
            for (bool h0 : {false, true})
                for (bool bias : {false, true}) {
                    const RNNSequenceOptions o{.relu = relu, .reverse = reverse};
                    const Inputs in = make_inputs(5, 3, 4, 3, h0, bias, f64);
                    INFO(fmt::format("relu {} reverse {} h0 {} bias {}", relu, reverse, h0, bias));
                    const GradcheckResult r = gradcheck(
                        [&](const std::vector<Tensor>& v) {
                            Inputs a{v[0], Tensor(), v[1], v[2], Tensor(), Tensor()};
                            std::size_t i = 3;
                            if (bias) a.b_ih = v[i++], a.b_hh = v[i++];
                            if (h0) a.h0 = v[i++];
                            return rnn_sequence(a.x, a.h0, a.w_ih, a.w_hh, a.b_ih, a.b_hh, o);
                        },
                        in.all());
                    INFO(r.message);
                    CHECK(r);
                }
}

TEST_CASE("rnn_sequence: a single step, and a long unroll", "[recurrent]") {
    manual_seed(12);
    const Inputs one = make_inputs(1, 2, 3, 4, false, true, f64);
    // T = 1 without h0: W_hh gets a zero gradient (it multiplied nothing), as in PyTorch.
    {
        Tape tape;
        sum(rnn_sequence(one.x, one.h0, one.w_ih, one.w_hh, one.b_ih, one.b_hh)).backward();
        REQUIRE(one.w_hh.has_grad());
        for (std::size_t i = 0; i < one.w_hh.numel(); ++i) CHECK(one.w_hh.grad().at(i) == 0.0);
    }
    const Inputs in = make_inputs(80, 2, 3, 4, true, true, f64, 0.4);
    GradcheckOptions opt;
    opt.mode = GradcheckOptions::Mode::random_direction;
    opt.directions = 4;
    for (bool reverse : {false, true}) {
        const GradcheckResult r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                return rnn_sequence(v[0], v[5], v[1], v[2], v[3], v[4], {.reverse = reverse});
            },
            in.all(), opt);
        INFO(r.message);
        CHECK(r);
    }
}

TEST_CASE("rnn_sequence: the same values and gradients as the composed ops", "[recurrent]") {
    manual_seed(13);
    for (bool relu : {false, true})
        for (bool reverse : {false, true})
            for (bool h0 : {false, true}) {
                INFO(fmt::format("relu {} reverse {} h0 {}", relu, reverse, h0));
                require_same_as_composed(make_inputs(7, 3, 5, 6, h0, true, f64), {relu, reverse}, 1e-12);
                require_same_as_composed(make_inputs(7, 3, 5, 6, h0, false, f32), {relu, reverse}, 2e-5);
            }
}

TEST_CASE("rnn_sequence: a reused, retained output, and gradients that accumulate", "[recurrent]") {
    manual_seed(14);
    const Inputs in = make_inputs(6, 2, 3, 4, true, true, f64);
    // y = out * out + out reads the output twice, and retain_grad keeps d loss / d out, which the op
    // must not overwrite when it reuses the incoming gradient as its own buffer.
    const GradcheckResult r = gradcheck(
        [&](const std::vector<Tensor>& v) {
            const Tensor out = rnn_sequence(v[0], v[5], v[1], v[2], v[3], v[4]);
            return out * out + out;
        },
        in.all());
    INFO(r.message);
    CHECK(r);
    Tape tape;
    Tensor out = rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh);
    out.retain_grad();
    sum(out * 3.0).backward();
    for (std::size_t i = 0; i < out.numel(); ++i) REQUIRE(out.grad().at(i) == 3.0);
    // A second backward adds the same gradients again.
    const Tensor first = in.w_hh.grad();
    Tape tape2;
    sum(rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh) * 3.0).backward();
    CHECK(max_rel_diff(in.w_hh.grad(), first * 2.0) < 1e-14);
}

TEST_CASE("rnn_sequence: one tape entry for the whole sequence", "[recurrent]") {
    const Inputs in = make_inputs(50, 2, 3, 4, true, true, f32);
    Tape tape;
    (void)rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh);
    CHECK(tape.size() == 1);
}

TEST_CASE("nn::RNN: the fused path equals the composed path", "[recurrent][rnn]") {
    // Lengths that are all T select the composed per-step path and change nothing else, so the two
    // runs of the same module must agree in outputs, final states and every parameter's gradient.
    manual_seed(15);
    for (auto act : {nn::Nonlinearity::tanh, nn::Nonlinearity::relu})
        for (bool batch_first : {false, true}) {
            const std::size_t T = 6, B = 3, F = 4, H = 5;
            nn::RNN rnn({.input_size = F, .hidden_size = H, .num_layers = 2, .nonlinearity = act,
                         .batch_first = batch_first, .bidirectional = true});
            rnn.to(f64);
            const Tensor x = batch_first ? randn({B, T, F}, f64) : randn({T, B, F}, f64);
            const Tensor h0 = randn({4, B, H}, f64);
            std::vector<Tensor> outs, hns;
            std::vector<std::vector<Tensor>> grads(2);
            for (int pass = 0; pass < 2; ++pass) {
                rnn.zero_grad();
                Tape tape;
                const auto r = pass == 0 ? rnn(x, h0) : rnn(x, h0, std::vector<std::int64_t>(B, T));
                if (pass == 0) CHECK(tape.size() < 20);  // fused: a handful of entries, not several per step
                else CHECK(tape.size() > 4 * T);
                sum(r.output * r.output).backward();
                outs.push_back(r.output.detach());
                hns.push_back(r.h_n.detach());
                for (const auto& [name, p] : rnn.named_parameters()) grads[pass].push_back(p.grad());
            }
            CHECK(max_rel_diff(outs[0], outs[1]) < 1e-12);
            CHECK(max_rel_diff(hns[0], hns[1]) < 1e-12);
            for (std::size_t i = 0; i < grads[0].size(); ++i) CHECK(max_rel_diff(grads[0][i], grads[1][i]) < 1e-12);
        }
}

TEST_CASE("rnn_sequence: inputs that do not fit", "[recurrent]") {
    const Inputs in = make_inputs(4, 2, 3, 5, true, true, f32);
    CHECK_THROWS_OF(rnn_sequence(randn({4, 2, 7}), in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh), ShapeError,
                         Contains("rnn_sequence: x [4, 2, 7], h0 [2, 5], w_ih [5, 3], w_hh [5, 5]") &&
                             Contains("needs w_ih [H, F] = [5, 7]"));
    CHECK_THROWS_OF(rnn_sequence(in.x, randn({3, 5}), in.w_ih, in.w_hh, in.b_ih, in.b_hh), ShapeError,
                         Contains("h0 must be [B, H] = [2, 5]"));
    CHECK_THROWS_OF(rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, Tensor()), ShapeError,
                         Contains("give both biases or neither"));
    CHECK_THROWS_OF(rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, randn({4}), randn({4})), ShapeError,
                         Contains("the biases must be [5]"));
    CHECK_THROWS_OF(rnn_sequence(in.x.to(f64), in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh), DTypeError,
                         Contains("every input must be float64 like x"));
    CHECK_THROWS_OF(rnn_sequence(randn({0, 2, 3}), Tensor(), in.w_ih, in.w_hh, in.b_ih, in.b_hh), ShapeError,
                         Contains("must not be empty"));
    CHECK_THROWS_OF(rnn_sequence(randn({2, 3}), Tensor(), in.w_ih, in.w_hh, in.b_ih, in.b_hh), ShapeError,
                         Contains("needs x [T, B, F]"));
}
