// Hardening: whatever the padding of a batch holds (NaN, Inf, huge values), it influences nothing.
// A padded batch run with lengths must give, in its valid steps, final states and gradients, exactly
// what a batch padded with zeros gives, for every recurrent layer, both directions and two layers,
// and every reduction over time that takes lengths (masked_mean, masked_max, last_step); padded
// output steps are zeros and padded inputs get zero gradient. The fused sequence ops are tested the
// same way at op level in test_ops_recurrent.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;

namespace {
constexpr std::size_t T = 5, B = 3, I = 2, H = 3;
const std::vector<std::int64_t> kLengths{5, 2, 3};

// x [T, B, I] in float64: the valid steps from a fixed pattern, the padded ones all `junk`.
Tensor padded_input(double junk) {
    Tensor x = zeros({T, B, I}, DType::f64);
    auto& a = x.mutable_value<double>();
    for (std::size_t t = 0; t < T; ++t)
        for (std::size_t b = 0; b < B; ++b)
            for (std::size_t i = 0; i < I; ++i)
                a(t, b, i) = static_cast<std::int64_t>(t) < kLengths[b] ? 0.3 * std::sin(1.0 + t + 2.0 * b + 5.0 * i) : junk;
    x.set_requires_grad(true);
    return x;
}

struct Run {
    std::vector<double> output, h_n, c_n, reductions, param_grads, x_grad;
};

// test::values, and nothing for an undefined tensor (c_n of RNN and GRU).
std::vector<double> values(const Tensor& t) { return t.defined() ? test::values(t) : std::vector<double>{}; }

// One forward and backward of `layer` on x with lengths; every value and gradient collected.
Run run(nn::RecurrentLayer& layer, const Tensor& x) {
    layer.zero_grad();
    Run r;
    Tape tape;
    const nn::RecurrentResult out = layer(x, nn::RecurrentState{}, kLengths);
    const Tensor mean_t = nn::masked_mean(out.output, kLengths), max_t = nn::masked_max(out.output, kLengths),
                 last_t = nn::last_step(out.output, kLengths);
    Tensor loss = sum(mean_t) + sum(max_t * 0.5) + sum(last_t * 0.25) + sum(out.state.h * 0.125);
    if (out.state.c.defined()) loss = loss + sum(out.state.c * 0.0625);
    tape.backward(loss);
    r.output = values(out.output);
    r.h_n = values(out.state.h);
    r.c_n = values(out.state.c);
    for (const Tensor* t : {&mean_t, &max_t, &last_t})
        for (double v : values(*t)) r.reductions.push_back(v);
    for (const Tensor& p : layer.parameters())
        for (double v : values(p.grad())) r.param_grads.push_back(v);
    r.x_grad = values(x.grad());
    return r;
}

void check_all_finite(const std::vector<double>& v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        INFO("element " << i);
        REQUIRE(std::isfinite(v[i]));
    }
}

void check_close(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("element " << i);
        CHECK(a[i] == Approx(b[i]).margin(1e-12));
    }
}
}  // namespace

TEST_CASE("hardening: NaN, Inf and huge values in padded steps change nothing in any recurrent layer",
          "[hardening][padding]") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    for (auto kind : {nn::RecurrentKind::rnn, nn::RecurrentKind::lstm, nn::RecurrentKind::gru})
        for (bool bidirectional : {false, true})
            for (bool anomaly : {false, true}) {  // anomaly mode runs the composed, per-step path
                manual_seed(7);
                nn::RecurrentOptions o;
                o.input_size = I;
                o.hidden_size = H;
                o.num_layers = 2;
                o.bidirectional = bidirectional;
                auto layer = nn::make_recurrent(kind, o);
                layer->to(DType::f64);
                const Run clean = run(*layer, padded_input(0.0));
                // Anomaly mode rightly stops at the first NaN or Inf any op computes, padded or not,
                // so there only huge finite padding is tried.
                const std::vector<double> junks = anomaly ? std::vector<double>{1e30, -1e300}
                                                          : std::vector<double>{nan, inf, -inf, 1e30, -1e300};
                for (double junk : junks) {
                    INFO(nn::recurrent_kind_name(kind) << (bidirectional ? " bidirectional" : "")
                                                       << (anomaly ? " in anomaly mode" : "") << ", padding " << junk);
                    std::optional<DetectAnomaly> guard;
                    if (anomaly) guard.emplace();
                    const Run got = run(*layer, padded_input(junk));
                    check_all_finite(got.output);
                    check_all_finite(got.x_grad);
                    check_all_finite(got.param_grads);
                    check_close(got.output, clean.output);
                    check_close(got.h_n, clean.h_n);
                    check_close(got.c_n, clean.c_n);
                    check_close(got.reductions, clean.reductions);
                    check_close(got.param_grads, clean.param_grads);
                    check_close(got.x_grad, clean.x_grad);
                    // Padded outputs are zeros; padded inputs get no gradient.
                    const std::size_t D = bidirectional ? 2 : 1;
                    for (std::size_t t = 0; t < T; ++t)
                        for (std::size_t b = 0; b < B; ++b) {
                            if (static_cast<std::int64_t>(t) < kLengths[b]) continue;
                            for (std::size_t f = 0; f < D * H; ++f) CHECK(got.output[(t * B + b) * D * H + f] == 0.0);
                            for (std::size_t i = 0; i < I; ++i) CHECK(got.x_grad[(t * B + b) * I + i] == 0.0);
                        }
                }
            }
}

TEST_CASE("hardening: a padded batch equals each sequence run alone, whatever the padding holds",
          "[hardening][padding]") {
    manual_seed(3);
    nn::RecurrentOptions o;
    o.input_size = I;
    o.hidden_size = H;
    o.bidirectional = true;
    auto layer = nn::make_recurrent(nn::RecurrentKind::lstm, o);
    layer->to(DType::f64);
    const Tensor x = padded_input(std::numeric_limits<double>::quiet_NaN());
    NoGrad no_grad;
    const nn::RecurrentResult batch = (*layer)(x, nn::RecurrentState{}, kLengths);
    for (std::size_t b = 0; b < B; ++b) {
        INFO("sequence " << b);
        const long len = kLengths[b];
        const Tensor alone_x = slice(slice(x, 1, static_cast<long>(b), static_cast<long>(b) + 1), 0, 0, len);  // [len, 1, I]
        const nn::RecurrentResult alone = (*layer)(alone_x, nn::RecurrentState{});
        check_close(values(slice(slice(batch.output, 1, static_cast<long>(b), static_cast<long>(b) + 1), 0, 0, len)), values(alone.output));
        check_close(values(slice(batch.state.h, 1, static_cast<long>(b), static_cast<long>(b) + 1)), values(alone.state.h));
        check_close(values(slice(batch.state.c, 1, static_cast<long>(b), static_cast<long>(b) + 1)), values(alone.state.c));
    }
}

TEST_CASE("hardening: an Embedding's padding row never reaches the output, even when it holds NaN",
          "[hardening][padding]") {
    nn::Embedding emb(4, 3, /*padding_idx=*/0);
    emb.to(DType::f64);
    emb.weight.mutable_value<double>()(0, 1) = std::numeric_limits<double>::quiet_NaN();
    Tape tape;
    const xt::xarray<std::int64_t> ids = {{1, 0}, {0, 2}};
    const Tensor out = emb(ids);
    tape.backward(sum(out));
    const std::vector<double> v = values(out), g = values(emb.weight.grad());
    check_all_finite(v);
    check_all_finite(g);
    for (std::size_t f = 0; f < 3; ++f) {
        CHECK(v[(0 * 2 + 1) * 3 + f] == 0.0);  // ids (0, 1) and (1, 0) are padding
        CHECK(v[(1 * 2 + 0) * 3 + f] == 0.0);
        CHECK(g[0 * 3 + f] == 0.0);  // no gradient into the padding row
        CHECK(g[1 * 3 + f] == 1.0);
    }
}
