// Truncated BPTT: with k1 = k2 = the whole sequence it is full BPTT; an update never sees later
// losses; k2 > k1 carries gradient back to the earlier steps of its window and equals an
// independent recomputation; resets restart the state; bad options and bad step functions are refused.
#include <catch2/catch.hpp>

#include <cmath>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
constexpr std::size_t I = 3, H = 4, B = 2;

// A hand-written Elman cell in float64 with a per-step readout loss: a "user-written cell".
struct Toy {
    Tensor W, U, b;              // [H, I], [H, H], [H]
    std::vector<Tensor> xs, cs;  // per step: inputs [B, I], readout weights [B, H]
    explicit Toy(std::size_t steps, std::uint64_t seed = 1) {
        Generator g(seed);
        W = randn({H, I}, g, f64, true);
        U = (randn({H, H}, g, f64) * 0.5).detach().set_requires_grad();
        b = randn({H}, g, f64, true);
        for (std::size_t t = 0; t < steps; ++t) {
            xs.push_back(randn({B, I}, g, f64, true));
            cs.push_back(randn({B, H}, g, f64));
        }
    }
    std::vector<Tensor> params() const { return {W, U, b}; }
    nn::TbpttOut step(std::size_t t, const Tensor& h) const {
        Tensor pre = linear(xs[t], W, b);
        if (h.defined()) pre = pre + linear(h, U);
        Tensor h2 = tanh(pre);
        return {.loss = sum(h2 * cs[t]), .state = h2};
    }
};

std::vector<double> grads(const std::vector<Tensor>& ps) {
    std::vector<double> out;
    for (const Tensor& p : ps)
        for (std::size_t i = 0; i < p.numel(); ++i) out.push_back(p.has_grad() ? p.grad().at(i) : 0.0);
    return out;
}
void zero(const std::vector<Tensor>& ps) {
    for (Tensor p : ps) p.zero_grad();
}
}  // namespace

TEST_CASE("tbptt with k1 = k2 = the whole length is full BPTT", "[nn][tbptt]") {
    const std::size_t N = 7;
    Toy toy(N);
    {
        Tape tape;
        Tensor h, total;
        for (std::size_t t = 0; t < N; ++t) {
            auto o = toy.step(t, h);
            h = o.state;
            total = total.defined() ? total + o.loss : o.loss;
        }
        tape.backward(total);
    }
    const auto full = grads(toy.params());
    zero(toy.params());
    auto r = nn::tbptt_steps(N, Tensor(), {.k1 = N, .k2 = N}, [&](std::size_t t, const Tensor& h) { return toy.step(t, h); });
    CHECK(r.losses.size() == 1);
    CHECK(max_abs_diff(grads(toy.params()), full) < 1e-12);
    CHECK(!r.state.requires_grad());
    CHECK(r.state.shape() == Shape{B, H});
}

TEST_CASE("chunked tbptt over nn::RNN spans equals the detach-per-chunk loop", "[nn][tbptt]") {
    // The PyTorch idiom: for each chunk, h = h.detach(); out, h = rnn(x[chunk], h); loss.backward().
    const std::size_t N = 8, k = 3;
    manual_seed(3);
    nn::RNN rnn({.input_size = I, .hidden_size = H});
    rnn.to(f64);
    Generator g(4);
    Tensor x = randn({N, B, I}, g, f64), w = randn({N, B, H}, g, f64);
    Tensor h0 = randn({1, B, H}, g, f64);
    std::vector<std::vector<double>> expect;
    Tensor h = h0;
    for (std::size_t a = 0; a < N; a += k) {
        const long e = static_cast<long>(std::min(a + k, N));
        Tape tape;
        auto r = rnn(slice(x, 0, static_cast<long>(a), e), h.detach());
        tape.backward(sum(r.output * slice(w, 0, static_cast<long>(a), e)));
        expect.push_back(grads(rnn.parameters()));
        rnn.zero_grad();
        h = r.h_n;
    }
    std::vector<std::vector<double>> got;
    std::vector<nn::TbpttSpan> spans;
    auto res = nn::tbptt(
        N, h0, {.k1 = k},
        [&](const nn::TbpttSpan& s, const Tensor& state) {
            spans.push_back(s);
            const long a = static_cast<long>(s.begin), e = static_cast<long>(s.end);
            auto r = rnn(slice(x, 0, a, e), state);
            return nn::TbpttOut{.loss = sum(r.output * slice(w, 0, a, e)), .state = r.h_n};
        },
        [&](const nn::TbpttUpdate&) {
            got.push_back(grads(rnn.parameters()));
            rnn.zero_grad();
        });
    REQUIRE(got.size() == 3);
    for (std::size_t u = 0; u < 3; ++u) CHECK(max_abs_diff(got[u], expect[u]) == 0.0);
    REQUIRE(spans.size() == 3);  // k2 = k1: one span per update, all with loss
    CHECK(spans[2].begin == 6);
    CHECK(spans[2].end == 8);
    CHECK(spans[2].has_loss);
    CHECK(spans[2].loss_steps == 2);
    CHECK(max_abs_diff(values(res.state), values(h)) == 0.0);
}

TEST_CASE("an update's gradient does not see later steps' inputs or losses", "[nn][tbptt]") {
    const std::size_t N = 9;
    auto run = [&](Toy& toy) {
        std::vector<std::vector<double>> per_update;
        nn::tbptt_steps(
            N, Tensor(), {.k1 = 3, .k2 = 5}, [&](std::size_t t, const Tensor& h) { return toy.step(t, h); },
            [&](const nn::TbpttUpdate&) {
                per_update.push_back(grads(toy.params()));
                zero(toy.params());
            });
        return per_update;
    };
    Toy a(N), b(N);
    Generator g(9);
    for (std::size_t t = 3; t < N; ++t) {  // perturb everything after the first update's steps
        Tensor xb = b.xs[t];
        xb.mutable_value<double>() = (b.xs[t] + randn({B, I}, g, f64)).value<double>();
        b.cs[t] = randn({B, H}, g, f64);
    }
    const auto ga = run(a), gb = run(b);
    REQUIRE(ga.size() == 3);
    CHECK(max_abs_diff(ga[0], gb[0]) == 0.0);  // bitwise the same
    CHECK(max_abs_diff(ga[1], gb[1]) > 1e-3);  // the perturbation is real
}

TEST_CASE("k2 > k1 backpropagates into the context steps, as an independent recomputation", "[nn][tbptt]") {
    const std::size_t N = 8;
    Toy toy(N);
    auto input_grads = [&](std::size_t k2) {
        std::vector<std::vector<double>> xg, pg;
        std::vector<nn::TbpttUpdate> ups;
        nn::tbptt_steps(
            N, Tensor(), {.k1 = 2, .k2 = k2}, [&](std::size_t t, const Tensor& h) { return toy.step(t, h); },
            [&](const nn::TbpttUpdate& u) {
                ups.push_back(u);
                xg.push_back(grads(toy.xs));
                pg.push_back(grads(toy.params()));
                zero(toy.xs);
                zero(toy.params());
            });
        return std::tuple{xg, pg, ups};
    };
    const auto [xg2, pg2, ups2] = input_grads(2);
    const auto [xg5, pg5, ups5] = input_grads(5);
    REQUIRE(ups5.size() == 4);
    // Update 2: loss steps [4, 6); with k2 = 5 its window starts at step 1.
    CHECK(ups5[2].window_begin == 1);
    CHECK(ups5[2].loss_begin == 4);
    CHECK(ups2[2].window_begin == 4);
    const std::size_t per = B * I;
    auto norm_of_step = [&](const std::vector<double>& g, std::size_t t) {
        double s = 0;
        for (std::size_t i = t * per; i < (t + 1) * per; ++i) s += g[i] * g[i];
        return std::sqrt(s);
    };
    for (std::size_t t = 1; t < 4; ++t) {
        CHECK(norm_of_step(xg2[2], t) == 0.0);  // outside the k2 = k1 window
        CHECK(norm_of_step(xg5[2], t) > 0.0);   // inside the longer window
    }
    CHECK(norm_of_step(xg5[2], 0) == 0.0);  // before the window: the carried state is detached
    CHECK(max_abs_diff(pg2[2], pg5[2]) > 1e-6);

    // Independent recomputation of update 2 with k2 = 5 (no parameter changes in between).
    Tensor h;
    {
        NoGrad ng;
        h = toy.step(0, Tensor()).state;
    }
    Tape tape;
    Tensor total;
    for (std::size_t t = 1; t < 6; ++t) {
        auto o = toy.step(t, h);
        h = o.state;
        if (t >= 4) total = total.defined() ? total + o.loss : o.loss;
    }
    tape.backward(total);
    CHECK(max_abs_diff(grads(toy.params()), pg5[2]) < 1e-12);
    zero(toy.xs);
    zero(toy.params());
}

TEST_CASE("reset_at restarts the state from the initial state", "[nn][tbptt]") {
    const std::size_t N = 7;
    Toy toy(N);
    std::vector<std::pair<std::size_t, bool>> seen;  // (step, state defined)
    auto res = nn::tbptt_steps(N, Tensor(), {.k1 = 3, .k2 = 4, .reset_at = {5}}, [&](std::size_t t, const Tensor& h) {
        seen.emplace_back(t, h.defined());
        return toy.step(t, h);
    });
    for (auto [t, defined] : seen) CHECK(defined == (t != 0 && t != 5));
    Tensor h;
    {
        NoGrad ng;
        h = toy.step(5, Tensor()).state;
        h = toy.step(6, h).state;
    }
    CHECK(max_abs_diff(values(res.state), values(h)) == 0.0);
    CHECK(res.losses.size() == 3);
}

TEST_CASE("tbptt refuses bad options and bad step functions", "[nn][tbptt]") {
    Toy toy(4);
    auto step = [&](std::size_t t, const Tensor& h) { return toy.step(t, h); };
    REQUIRE_THROWS_AS(nn::tbptt_steps(4, Tensor(), {.k1 = 0}, step), ValueError);
    REQUIRE_THROWS_WITH(nn::tbptt_steps(4, Tensor(), {.k1 = 3, .k2 = 2}, step),
                        Contains("k2 (2") && Contains("k1 (3"));
    REQUIRE_THROWS_WITH(nn::tbptt_steps(4, Tensor(), {.k1 = 2, .reset_at = {4}}, step),
                        Contains("reset_at step 4"));
    REQUIRE_THROWS_AS(nn::tbptt_steps(0, Tensor(), {.k1 = 2}, step), ValueError);
    auto bad_loss = [&](std::size_t t, const Tensor& h) {
        auto o = toy.step(t, h);
        o.loss = o.state;
        return o;
    };
    REQUIRE_THROWS_WITH(nn::tbptt_steps(4, Tensor(), {.k1 = 2}, bad_loss),
                        Contains("tbptt_steps: update 0") && Contains("step 0") && Contains("[2, 4]"));
    auto no_state = [&](std::size_t t, const Tensor& h) {
        auto o = toy.step(t, h);
        o.state = Tensor();
        return o;
    };
    REQUIRE_THROWS_AS(nn::tbptt_steps(4, Tensor(), {.k1 = 2}, no_state), UsageError);
    NoGrad ng;
    REQUIRE_THROWS_WITH(nn::tbptt_steps(4, Tensor(), {.k1 = 2}, step), Contains("NoGrad"));
}
