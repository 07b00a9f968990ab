// Sampling: greedy is the arg-max, top_k = 1 and a tiny temperature approach it, draws follow
// softmax(logits / T) (restricted to the top k), the same seed gives the same ids, bad options are
// named, and a small RNN language model generates end to end under NoGrad.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

namespace {
// The first index of the largest logit, by a plain loop (independent of the library's argmax).
std::size_t first_max(const Tensor& t) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < t.numel(); ++i)
        if (t.at(i) > t.at(best)) best = i;
    return best;
}
// softmax(z / T) over the ids in `keep` (all when empty), computed independently in long double.
std::vector<double> reference_probs(const Tensor& z, double T, const std::set<std::size_t>& keep = {}) {
    std::vector<long double> w(z.numel(), 0.0L);
    long double total = 0;
    for (std::size_t i = 0; i < z.numel(); ++i)
        if (keep.empty() || keep.count(i)) total += (w[i] = std::exp(static_cast<long double>(z.at(i)) / T));
    std::vector<double> p;
    for (auto v : w) p.push_back(static_cast<double>(v / total));
    return p;
}
}  // namespace

TEST_CASE("greedy, top_k = 1 and a tiny temperature all pick the arg-max", "[nn][sample]") {
    Generator g(1), draw(2);
    for (int trial = 0; trial < 50; ++trial) {
        Tensor logits = randn({7}, g, f32) * 3.0;
        const auto best = static_cast<std::int64_t>(first_max(logits));
        CHECK(nn::sample_logits(logits, {.greedy = true}, draw) == best);
        CHECK(nn::sample_logits(logits, {.top_k = 1}, draw) == best);
        CHECK(nn::sample_logits(logits, {.temperature = 1e-6}, draw) == best);
        CHECK(nn::sample_logits(reshape(logits, {1, 7}), {.greedy = true}, draw) == best);
    }
    // A moderate temperature does not: the draws spread over several ids.
    Tensor flat = Tensor::of({0.0, 0.1, 0.2});
    std::set<std::int64_t> seen;
    for (int i = 0; i < 100; ++i) seen.insert(nn::sample_logits(flat, {}, draw));
    CHECK(seen.size() == 3);
}

TEST_CASE("draws follow softmax(logits / T), restricted to the top k", "[nn][sample]") {
    Generator g(3);
    Tensor logits = randn({6}, g, f64);
    const int n = 20000;
    for (double T : {0.5, 1.0, 2.0}) {
        std::vector<int> count(6, 0);
        Generator draw(4);
        for (int i = 0; i < n; ++i) ++count[static_cast<std::size_t>(nn::sample_logits(logits, {.temperature = T}, draw))];
        const auto p = reference_probs(logits, T);
        for (std::size_t i = 0; i < 6; ++i) {
            const double sd = std::sqrt(p[i] * (1 - p[i]) / n);
            CHECK(std::abs(count[i] / double(n) - p[i]) < 5 * sd + 1e-3);
        }
    }
    // top_k = 3: never an id outside the 3 largest, and the kept ones in renormalised proportion.
    std::vector<std::size_t> order = {0, 1, 2, 3, 4, 5};
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return logits.at(a) > logits.at(b); });
    const std::set<std::size_t> top(order.begin(), order.begin() + 3);
    std::vector<int> count(6, 0);
    Generator draw(5);
    for (int i = 0; i < n; ++i) ++count[static_cast<std::size_t>(nn::sample_logits(logits, {.top_k = 3}, draw))];
    const auto p = reference_probs(logits, 1.0, top);
    for (std::size_t i = 0; i < 6; ++i) {
        if (!top.count(i)) CHECK(count[i] == 0);
        else CHECK(std::abs(count[i] / double(n) - p[i]) < 5 * std::sqrt(p[i] * (1 - p[i]) / n) + 1e-3);
    }
}

TEST_CASE("sample_logits names bad options and bad logits", "[nn][sample]") {
    Generator g(1);
    Tensor logits = Tensor::of({1.0, 2.0, 3.0});
    REQUIRE_THROWS_WITH(nn::sample_logits(logits, {.temperature = 0.0}, g), Contains("temperature") && Contains("0"));
    REQUIRE_THROWS_AS(nn::sample_logits(logits, {.temperature = -1.0}, g), ValueError);
    CHECK(nn::sample_logits(logits, {.temperature = 0.0, .greedy = true}, g) == 2);  // greedy needs none
    REQUIRE_THROWS_WITH(nn::sample_logits(logits, {.top_k = 4}, g), Contains("top_k 4") && Contains("3 logits"));
    REQUIRE_THROWS_WITH(nn::sample_logits(Tensor::of({0.0, 1.0, NAN}), {}, g), Contains("position 2") && Contains("nan"));
    REQUIRE_THROWS_WITH(nn::sample_logits(Tensor::of({INFINITY, 1.0}), {.greedy = true}, g), Contains("position 0"));
    REQUIRE_THROWS_WITH(nn::sample_logits(zeros({2, 3}), {}, g), Contains("[V] or [1, V]") && Contains("[2, 3]"));
    REQUIRE_THROWS_AS(nn::sample_logits(zeros({0}), {}, g), ShapeError);
    REQUIRE_THROWS_AS(nn::sample_logits(Tensor(), {}, g), ValueError);
}

namespace {
// A character-level language model: Embedding -> RNNCell -> Linear, one token at a time.
struct TinyLM : nn::Module {
    nn::Embedding emb{5, 4};
    nn::RNNCell cell{4, 6};
    nn::Linear head{6, 5};
    TinyLM() {
        register_module("emb", emb);
        register_module("cell", cell);
        register_module("head", head);
    }
    nn::SampleStepFn step() {
        return [this](std::int64_t id, Tensor& h) {
            CHECK(!is_recording());  // sampling records nothing
            xt::xarray<std::int64_t> ids = {id};
            h = cell(emb(ids), h);  // [1, 6]
            return head(h);         // [1, 5]
        };
    }
};
}  // namespace

TEST_CASE("a small RNN language model generates end to end, reproducibly", "[nn][sample]") {
    manual_seed(11);
    TinyLM lm;
    Tape outer;  // even with a tape active, sampling records nothing on it
    Tensor h1, h2, h3;
    Generator g1(7), g2(7), g3(8);
    const auto a = nn::sample(lm.step(), h1, {0, 3}, {.length = 30}, g1);
    const auto b = nn::sample(lm.step(), h2, {0, 3}, {.length = 30}, g2);
    const auto c = nn::sample(lm.step(), h3, {0, 3}, {.length = 30}, g3);
    CHECK(outer.size() == 0);
    REQUIRE(a.size() == 30);
    CHECK(a == b);
    CHECK(a != c);
    for (auto id : a) CHECK((id >= 0 && id < 5));
    CHECK(h1.shape() == Shape{1, 6});

    // Greedy generation equals a hand-written arg-max loop.
    Tensor hg;
    const auto greedy = nn::sample(lm.step(), hg, {1}, {.length = 8, .greedy = true}, g1);
    std::vector<std::int64_t> expect;
    {
        NoGrad ng;
        Tensor h;
        auto step = lm.step();
        Tensor logits = step(1, h);
        for (int i = 0; i < 8; ++i) {
            expect.push_back(static_cast<std::int64_t>(first_max(logits)));
            logits = step(expect.back(), h);
        }
    }
    CHECK(greedy == expect);

    Tensor hx;
    REQUIRE_THROWS_WITH(nn::sample(lm.step(), hx, {}, {.length = 3}, g1), Contains("priming sequence is empty"));
    REQUIRE_THROWS_WITH(nn::sample(lm.step(), hx, {2}, {.length = 3, .top_k = 9}, g1),
                        Contains("generating id 0") && Contains("top_k 9"));
    REQUIRE_THROWS_WITH(nn::sample(lm.step(), hx, {2}, {.length = 3, .temperature = -2}, g1), Contains("temperature"));
}
