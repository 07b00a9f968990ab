// nn::Attention: additive (Bahdanau) and multiplicative (Luong dot, general) scores against a plain-loop
// reference in float64, float64 gradcheck over padded batches, padding that holds NaN and Inf changing
// nothing (a padded batch equals each row run alone), float32, and bad input named.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
const nn::AttentionScore kScores[] = {nn::AttentionScore::additive, nn::AttentionScore::dot,
                                      nn::AttentionScore::general};

nn::Attention make(nn::AttentionScore score, std::size_t Hq, std::size_t Hk, bool batch_first = false) {
    manual_seed(7);
    nn::Attention att({.score = score,
                       .query_size = Hq,
                       .key_size = Hk,
                       .attention_size = score == nn::AttentionScore::additive ? 4u : 0u,
                       .batch_first = batch_first});
    att.to(f64);
    return att;
}

// The key vector of step s, row b of keys [S, B, H] as doubles.
std::vector<double> key_at(const Tensor& keys, std::size_t s, std::size_t b) {
    const std::size_t B = keys.size(1), H = keys.size(2);
    std::vector<double> k(H);
    for (std::size_t h = 0; h < H; ++h) k[h] = keys.at((s * B + b) * H + h);
    return k;
}
// (W x)[j] for W [out, in] and a vector x.
double row_dot(const Tensor& W, std::size_t j, const std::vector<double>& x) {
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += W.at(j * x.size() + i) * x[i];
    return s;
}

// The score, softmax and weighted sum written out with loops, from the module's parameters.
nn::AttentionOutput reference(const nn::Attention& att, const Tensor& query, const Tensor& keys,
                              const std::vector<std::int64_t>& lengths) {
    const std::size_t S = keys.size(0), B = keys.size(1), Hk = keys.size(2), Hq = query.size(1);
    Tensor ctx = zeros({B, Hk}, f64), w = zeros({B, S}, f64);
    auto& cv = ctx.mutable_value<double>();
    auto& wv = w.mutable_value<double>();
    for (std::size_t b = 0; b < B; ++b) {
        std::vector<double> q(Hq);
        for (std::size_t i = 0; i < Hq; ++i) q[i] = query.at(b * Hq + i);
        const std::size_t L = lengths.empty() ? S : static_cast<std::size_t>(lengths[b]);
        std::vector<double> e(L);
        for (std::size_t s = 0; s < L; ++s) {
            const std::vector<double> k = key_at(keys, s, b);
            double score = 0;
            if (att.options.score == nn::AttentionScore::additive) {
                const Tensor &Wq = att.query_proj->weight, &Wk = att.key_proj->weight, &bk = att.key_proj->bias,
                             &v = att.v->weight;
                for (std::size_t a = 0; a < Wq.size(0); ++a)
                    score += v.at(a) * std::tanh(row_dot(Wq, a, q) + row_dot(Wk, a, k) + bk.at(a));
            } else {
                for (std::size_t j = 0; j < Hk; ++j)
                    score += (att.options.score == nn::AttentionScore::dot ? q[j] : row_dot(att.weight, j, q)) * k[j];
            }
            e[s] = score;
        }
        double m = -INFINITY, z = 0;
        for (double x : e) m = std::max(m, x);
        for (double x : e) z += std::exp(x - m);
        for (std::size_t s = 0; s < L; ++s) {
            wv(b, s) = std::exp(e[s] - m) / z;
            const std::vector<double> k = key_at(keys, s, b);
            for (std::size_t j = 0; j < Hk; ++j) cv(b, j) += wv(b, s) * k[j];
        }
    }
    return {ctx, w};
}

// A fixed coefficient for output element (b, j), the same whether row b runs in a batch or alone.
double coef(std::size_t b, std::size_t j, double salt) { return std::sin(1.0 + 0.7 * b + 1.3 * j + salt); }
Tensor loss_of(const nn::AttentionOutput& out, const std::vector<std::size_t>& rows) {
    Tensor cw = zeros(out.context.shape(), f64), ww = zeros(out.weights.shape(), f64);
    for (std::size_t r = 0; r < rows.size(); ++r) {
        for (std::size_t j = 0; j < cw.size(1); ++j) cw.mutable_value<double>()(r, j) = coef(rows[r], j, 0.0);
        for (std::size_t s = 0; s < ww.size(1); ++s) ww.mutable_value<double>()(r, s) = coef(rows[r], s, 0.5);
    }
    return sum(out.context * cw) + sum(out.weights * ww);
}

struct Run {
    nn::AttentionOutput out;
    Tensor gq, gk;
    std::vector<Tensor> gp;
};
Run run(nn::Attention& att, const Tensor& q0, const Tensor& k0, const std::vector<std::int64_t>& lengths,
        const std::vector<std::size_t>& rows) {
    att.zero_grad();
    Tensor q = q0.detach().set_requires_grad(true), k = k0.detach().set_requires_grad(true);
    Tape tape;
    Run r;
    r.out = att(q, k, lengths);
    tape.backward(loss_of(r.out, rows));
    r.gq = q.grad();
    r.gk = k.grad();
    for (const Tensor& p : att.parameters()) r.gp.push_back(p.grad().detach());
    return r;
}
}  // namespace

TEST_CASE("Attention parameters have Linear's names, shapes and init range", "[nn][attention]") {
    manual_seed(1);
    nn::Attention add({.score = nn::AttentionScore::additive, .query_size = 6, .key_size = 8, .attention_size = 5});
    const auto named = add.named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "query_proj.weight");
    CHECK(named[0].second.shape() == Shape{5, 6});
    CHECK(named[1].first == "key_proj.weight");
    CHECK(named[1].second.shape() == Shape{5, 8});
    CHECK(named[2].first == "key_proj.bias");
    CHECK(named[2].second.shape() == Shape{5});
    CHECK(named[3].first == "v.weight");
    CHECK(named[3].second.shape() == Shape{1, 5});
    nn::Attention gen({.score = nn::AttentionScore::general, .query_size = 6, .key_size = 8});
    REQUIRE(gen.named_parameters().size() == 1);
    CHECK(gen.named_parameters()[0].first == "weight");
    CHECK(gen.weight.shape() == Shape{8, 6});
    double worst = 0;
    for (std::size_t i = 0; i < gen.weight.numel(); ++i) worst = std::max(worst, std::abs(gen.weight.at(i)));
    CHECK(worst <= 1.0 / std::sqrt(6.0));
    CHECK(worst > 0.5 / std::sqrt(6.0));
    CHECK(nn::Attention({.score = nn::AttentionScore::dot, .query_size = 8, .key_size = 8}).parameters().empty());
    CHECK_THAT(add.summary(), Contains("Attention(additive, query_size=6, key_size=8, attention_size=5)"));
}

TEST_CASE("Attention gives a context and weights per batch row", "[nn][attention]") {
    manual_seed(3);
    // A decoder state [B, Hq] attends over encoder outputs [S, B, Hk] whose lengths are 3 and 1.
    nn::Attention attn({.score = nn::AttentionScore::additive, .query_size = 6, .key_size = 8});
    Tensor state = randn({2, 6}), encoder_out = randn({3, 2, 8});
    auto [context, weights] = attn(state, encoder_out, {3, 1});  // [2, 8], [2, 3]
    REQUIRE(context.shape() == Shape{2, 8});
    REQUIRE(weights.shape() == Shape{2, 3});
    CHECK(weights.at(3) == 1.0);  // row 1 has one valid step: all its weight
    CHECK(weights.at(4) == 0.0);
    CHECK(weights.at(5) == 0.0);
    CHECK(weights.at(0) + weights.at(1) + weights.at(2) == Approx(1.0).margin(1e-6));
    CHECK(max_abs_diff(slice(context, 0, 1, 2), reshape(slice(slice(encoder_out, 0, 0, 1), 1, 1, 2), {1, 8})) < 1e-7);
}

TEST_CASE("Attention scores match a plain-loop reference in float64", "[nn][attention]") {
    const std::vector<std::int64_t> lengths{4, 2, 3};
    for (auto score : kScores) {
        const std::size_t Hq = score == nn::AttentionScore::dot ? 5 : 3;
        nn::Attention att = make(score, Hq, 5);
        Tensor q = seq({3, Hq}, 11), keys = seq({4, 3, 5}, 12);
        for (const auto& lens : {lengths, std::vector<std::int64_t>{}}) {
            const nn::AttentionOutput out = att(q, keys, lens), ref = reference(att, q, keys, lens);
            REQUIRE(out.context.shape() == Shape{3, 5});
            REQUIRE(out.weights.shape() == Shape{3, 4});
            CHECK(max_abs_diff(out.context, ref.context) < 1e-12);
            CHECK(max_abs_diff(out.weights, ref.weights) < 1e-12);
        }
        // batch_first takes the same keys as [B, S, Hk].
        nn::Attention bf = make(score, Hq, 5, true);
        const nn::AttentionOutput a = bf(q, permute(keys, {1, 0, 2}), lengths), b = reference(bf, q, keys, lengths);
        CHECK(max_abs_diff(a.context, b.context) < 1e-12);
        CHECK(max_abs_diff(a.weights, b.weights) < 1e-12);
    }
}

TEST_CASE("Attention passes float64 gradcheck over a padded batch", "[nn][attention][gradcheck]") {
    for (auto score : kScores)
        for (bool batch_first : {false, true}) {
            const std::size_t Hq = score == nn::AttentionScore::dot ? 4 : 3;
            nn::Attention att = make(score, Hq, 4, batch_first);
            Tensor q = seq({3, Hq}, 21), keys = seq(batch_first ? Shape{3, 4, 4} : Shape{4, 3, 4}, 22);
            const std::vector<std::int64_t> lengths{2, 4, 1};
            const auto f = [&] {
                const nn::AttentionOutput out = att(q, keys, lengths);
                return concat({out.context, out.weights}, 1);
            };
            const GradcheckResult r = nn::gradcheck_module(att, f, {q, keys}, {.names = {"query", "keys"}});
            INFO(r.message);
            CHECK(r.ok);
        }
}

TEST_CASE("NaN and Inf in padded steps change nothing, and a padded batch equals each row alone", "[nn][attention]") {
    const std::size_t S = 4, B = 3;
    const std::vector<std::int64_t> lengths{2, 4, 3};
    for (auto score : kScores) {
        const std::size_t Hq = score == nn::AttentionScore::dot ? 4 : 3;
        nn::Attention att = make(score, Hq, 4);
        Tensor q = seq({B, Hq}, 31), clean = seq({S, B, 4}, 32);
        Tensor dirty = clean.detach();
        for (std::size_t b = 0; b < B; ++b)
            for (std::size_t s = static_cast<std::size_t>(lengths[b]); s < S; ++s)
                for (std::size_t h = 0; h < 4; ++h)
                    dirty.mutable_value<double>()(s, b, h) =
                        h % 2 ? std::numeric_limits<double>::quiet_NaN() : -INFINITY;
        const Run c = run(att, q, clean, lengths, {0, 1, 2}), d = run(att, q, dirty, lengths, {0, 1, 2});
        CHECK(max_abs_diff(c.out.context, d.out.context) == 0);
        CHECK(max_abs_diff(c.out.weights, d.out.weights) == 0);
        CHECK(max_abs_diff(c.gq, d.gq) == 0);
        CHECK(max_abs_diff(c.gk, d.gk) == 0);
        for (std::size_t i = 0; i < c.gp.size(); ++i) CHECK(max_abs_diff(c.gp[i], d.gp[i]) == 0);
        for (std::size_t b = 0; b < B; ++b)
            for (std::size_t s = static_cast<std::size_t>(lengths[b]); s < S; ++s) {
                CHECK(d.out.weights.at(b * S + s) == 0.0);  // exactly
                for (std::size_t h = 0; h < 4; ++h) CHECK(d.gk.at((s * B + b) * 4 + h) == 0.0);
            }

        // Row b alone, its keys cut to its length: the same numbers.
        std::vector<Tensor> gp_sum(c.gp.size());
        for (std::size_t b = 0; b < B; ++b) {
            const long L = lengths[b];
            const Run a = run(att, slice(q, 0, b, b + 1), slice(slice(dirty, 1, b, b + 1), 0, 0, L), {}, {b});
            CHECK(max_abs_diff(a.out.context, slice(d.out.context, 0, b, b + 1)) == 0);
            CHECK(max_abs_diff(a.out.weights, slice(slice(d.out.weights, 0, b, b + 1), 1, 0, L)) == 0);
            CHECK(max_abs_diff(a.gq, slice(d.gq, 0, b, b + 1)) == 0);
            CHECK(max_abs_diff(a.gk, slice(slice(d.gk, 1, b, b + 1), 0, 0, L)) == 0);
            for (std::size_t i = 0; i < a.gp.size(); ++i) gp_sum[i] = b == 0 ? a.gp[i] : gp_sum[i] + a.gp[i];
        }
        for (std::size_t i = 0; i < c.gp.size(); ++i) CHECK(max_rel_diff(d.gp[i], gp_sum[i]) < 1e-14);
    }
}

TEST_CASE("Attention runs in float32 and agrees with float64", "[nn][attention]") {
    for (auto score : kScores) {
        const std::size_t Hq = score == nn::AttentionScore::dot ? 4 : 3;
        nn::Attention att = make(score, Hq, 4);
        Tensor q = seq({2, Hq}, 41), keys = seq({3, 2, 4}, 42);
        const nn::AttentionOutput d = att(q, keys, {3, 2});
        att.to(f32);
        const nn::AttentionOutput f = att(q.to(f32), keys.to(f32), {3, 2});
        CHECK(f.context.dtype() == f32);
        CHECK(f.weights.at(1 * 3 + 2) == 0.0);
        CHECK(max_abs_diff(f.context.to(f64), d.context) < 1e-5);
        CHECK(max_abs_diff(f.weights.to(f64), d.weights) < 1e-5);
    }
}

TEST_CASE("Attention names itself and the shapes when input is wrong", "[nn][attention][errors]") {
    nn::Attention att = make(nn::AttentionScore::general, 3, 4);
    Tensor q = seq({2, 3}, 1), keys = seq({5, 2, 4}, 2);
    REQUIRE_THROWS_MATCHES(att(seq({2, 4}, 1), keys), ShapeError,
                           WhatContains({"Attention(general)", "query must be [batch, 3]", "[2, 4]"}));
    REQUIRE_THROWS_MATCHES(
        att(q, seq({5, 2, 3}, 2)), ShapeError,
        WhatContains({"Attention(general)", "[source, batch, key_size]", "key_size 4", "[5, 2, 3]"}));
    REQUIRE_THROWS_MATCHES(att(q, seq({5, 3, 4}, 2)), ShapeError,
                           WhatContains({"query [2, 3] has batch 2", "keys [5, 3, 4]", "have batch 3"}));
    REQUIRE_THROWS_MATCHES(att(q, keys, {5}), ShapeError,
                           WhatContains({"Attention(general)", "1 lengths given for a batch of 2"}));
    REQUIRE_THROWS_MATCHES(att(q, keys, {5, 0}), ValueError, WhatContains({"lengths[1] = 0", "[1, 5]"}));
    REQUIRE_THROWS_MATCHES(att(q, keys, {6, 1}), ValueError, WhatContains({"lengths[0] = 6", "[1, 5]"}));
    REQUIRE_THROWS_MATCHES(att(q.to(f32), keys), DTypeError, WhatContains({"query is float32", "keys are float64"}));
    REQUIRE_THROWS_MATCHES(nn::Attention({.score = nn::AttentionScore::dot, .query_size = 3, .key_size = 4}),
                           ValueError, WhatContains({"Attention(dot)", "query_size 3 must equal key_size 4"}));
    REQUIRE_THROWS_MATCHES(nn::Attention({.score = nn::AttentionScore::additive, .query_size = 0, .key_size = 4}),
                           ValueError, WhatContains({"query_size 0", "must be positive"}));
}
