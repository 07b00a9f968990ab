// The output heads and the decoder (values, gradients), the loss modules, and tiny tasks that each
// model shape must learn in a fixed number of steps: many-to-many (echo a token 2 steps back),
// many-to-one (the first token of a variable-length sequence), bidirectional (the next token, which
// a unidirectional RNN cannot know), and one-to-many (a sequence decoded from one vector).
#include <catch2/catch.hpp>

#include <cmath>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
xt::xarray<std::int64_t> random_ids(const Shape& s, std::size_t vocab, Generator& g) {
    xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape(s);
    for (auto& v : ids) v = static_cast<std::int64_t>(g.randint(vocab));
    return ids;
}
double accuracy(const Tensor& logits, const xt::xarray<std::int64_t>& targets, std::int64_t ignore = -100) {
    const std::size_t C = logits.shape().back();
    std::size_t right = 0, total = 0;
    for (std::size_t i = 0; i < targets.size(); ++i) {
        if (targets.data()[i] == ignore) continue;
        std::size_t best = 0;
        for (std::size_t c = 1; c < C; ++c)
            if (logits.at(i * C + c) > logits.at(i * C + best)) best = c;
        right += static_cast<std::int64_t>(best) == targets.data()[i];
        ++total;
    }
    return static_cast<double>(right) / static_cast<double>(total);
}
}  // namespace

TEST_CASE("last_step, masked_mean and masked_max pick each sequence's valid steps", "[nn][heads]") {
    Tensor out = seq({4, 3, 2}, 1);
    const std::vector<std::int64_t> lengths = {4, 1, 3};
    Tensor last = nn::last_step(out, lengths), avg = nn::masked_mean(out, lengths), mx = nn::masked_max(out, lengths);
    const auto& o = out.value<double>();
    for (std::size_t b = 0; b < 3; ++b)
        for (std::size_t f = 0; f < 2; ++f) {
            double s = 0, m = -INFINITY;
            for (std::int64_t t = 0; t < lengths[b]; ++t) {
                s += o(t, b, f);
                m = std::max(m, o(t, b, f));
            }
            CHECK(last.value<double>()(b, f) == o(lengths[b] - 1, b, f));
            CHECK(avg.value<double>()(b, f) == Approx(s / static_cast<double>(lengths[b])));
            CHECK(mx.value<double>()(b, f) == m);
        }
    CHECK(nn::last_step(out).value<double>()(1, 0) == o(3, 1, 0));
    for (auto head : {nn::last_step, nn::masked_mean, nn::masked_max}) {
        auto r = gradcheck([&](const std::vector<Tensor>& v) { return head(v[0], lengths); }, {out});
        INFO(r.message);
        CHECK(r.ok);
    }
    REQUIRE_THROWS_WITH(nn::last_step(out, {4, 5, 1}), Contains("last_step") && Contains("lengths[1] = 5"));
    REQUIRE_THROWS_WITH(nn::masked_mean(zeros({4, 3})), Contains("masked_mean") && Contains("[4, 3]"));
    CHECK(nn::sequence_mask({2, 3}, 3, 2).at(4) == 0.0);  // t = 2, b = 0
}

TEST_CASE("RNNDecoder: shapes, teacher forcing, gradcheck", "[nn][decoder]") {
    manual_seed(2);
    nn::RNNDecoder dec({.latent_size = 3, .input_size = 4, .hidden_size = 5, .output_size = 4});
    dec.to(f64);
    Tensor z = seq({2, 3}, 3);
    Tensor free_run = dec(z, 6);
    CHECK(free_run.shape() == Shape{6, 2, 4});
    Tensor teacher = seq({6, 2, 4}, 4);
    auto r = nn::gradcheck_module(dec, [&] { return sum(tanh(dec(z, 6, teacher))); }, {z});
    INFO(r.message);
    CHECK(r.ok);
    // Free-running decoding feeds back arg-max one-hots: the same as teacher-forcing those inputs.
    std::vector<Tensor> fed = {zeros({2, 4}, f64)};
    for (std::size_t t = 0; t + 1 < 6; ++t) {
        xt::xarray<std::int64_t> ids = {0, 0};
        for (std::size_t b = 0; b < 2; ++b)
            for (std::size_t k = 1; k < 4; ++k)
                if (free_run.at((t * 2 + b) * 4 + k) > free_run.at((t * 2 + b) * 4 + ids(b))) ids(b) = k;
        fed.push_back(one_hot(ids, 4, f64));
    }
    Tensor forced = dec(z, 6, stack(fed, 0));
    for (std::size_t i = 0; i < forced.numel(); ++i) CHECK(forced.at(i) == free_run.at(i));
    REQUIRE_THROWS_WITH(dec(z, 6, zeros({5, 2, 4}, f64)), Contains("teacher") && Contains("[6, 2, 4]"));
    REQUIRE_THROWS_AS(nn::RNNDecoder({.latent_size = 1, .input_size = 2, .hidden_size = 3, .output_size = 4}),
                      ValueError);
}

TEST_CASE("loss modules equal the functional losses", "[nn][loss]") {
    Tensor logits = seq({3, 4}, 5);
    xt::xarray<std::int64_t> y = {0, 3, 1};
    CHECK(nn::CrossEntropyLoss()(logits, y).item() == cross_entropy(logits, y).item());
    CHECK(nn::NLLLoss()(log_softmax(logits), y).item() == Approx(cross_entropy(logits, y).item()));
    Tensor p = seq({5}, 6), t = seq({5}, 7);
    CHECK(nn::MSELoss(Reduction::sum)(p, t).item() == mse_loss(p, t, Reduction::sum).item());
    CHECK(nn::BCEWithLogitsLoss()(p, sigmoid(t)).item() == binary_cross_entropy_with_logits(p, sigmoid(t)).item());
}

TEST_CASE("many-to-many: an RNN learns to echo the token seen 2 steps earlier", "[nn][task]") {
    manual_seed(10);
    Generator g(11);
    const std::size_t V = 4, T = 10, B = 32;
    nn::RNN rnn({.input_size = V, .hidden_size = 24});
    nn::Linear head(24, V);
    std::vector<Tensor> params = rnn.parameters();
    for (auto& p : head.parameters()) params.push_back(p);
    nn::Adam opt(params, {.lr = 0.02});
    auto batch = [&](xt::xarray<std::int64_t>& targets) {
        auto ids = random_ids({T, B}, V, g);
        targets = ids;
        for (std::size_t t = 0; t < T; ++t)
            for (std::size_t b = 0; b < B; ++b) targets(t, b) = t < 2 ? -100 : ids(t - 2, b);
        return one_hot(ids, V);
    };
    for (int step = 0; step < 400; ++step) {
        xt::xarray<std::int64_t> y;
        Tensor x = batch(y);
        Tape tape;
        Tensor loss = cross_entropy(head(rnn(x).output), y);
        tape.backward(loss);
        opt.step();
        opt.zero_grad();
    }
    xt::xarray<std::int64_t> y;
    Tensor x = batch(y);
    CHECK(accuracy(head(rnn(x).output), y) > 0.95);
}

TEST_CASE("many-to-one: the first token of variable-length sequences, through lengths", "[nn][task]") {
    manual_seed(20);
    Generator g(21);
    const std::size_t V = 4, T = 8, B = 32;
    nn::RNN rnn({.input_size = V, .hidden_size = 24});
    nn::Linear head(24, V);
    std::vector<Tensor> params = rnn.parameters();
    for (auto& p : head.parameters()) params.push_back(p);
    nn::Adam opt(params, {.lr = 0.02});
    auto batch = [&](xt::xarray<std::int64_t>& y, std::vector<std::int64_t>& lengths) {
        auto ids = random_ids({T, B}, V, g);
        y = xt::xarray<std::int64_t>::from_shape({B});
        lengths.assign(B, 0);
        for (std::size_t b = 0; b < B; ++b) {
            lengths[b] = 3 + static_cast<std::int64_t>(g.randint(T - 2));
            y(b) = ids(0, b);
        }
        return one_hot(ids, V);
    };
    for (int step = 0; step < 400; ++step) {
        xt::xarray<std::int64_t> y;
        std::vector<std::int64_t> lengths;
        Tensor x = batch(y, lengths);
        Tape tape;
        tape.backward(cross_entropy(head(nn::last_step(rnn(x, Tensor(), lengths).output, lengths)), y));
        opt.step();
        opt.zero_grad();
    }
    xt::xarray<std::int64_t> y;
    std::vector<std::int64_t> lengths;
    Tensor x = batch(y, lengths);
    CHECK(accuracy(head(nn::last_step(rnn(x, Tensor(), lengths).output, lengths)), y) > 0.9);
}

TEST_CASE("bidirectional: predicting the next token needs the reverse direction", "[nn][task]") {
    Generator g(31);
    const std::size_t V = 4, T = 10, B = 32;
    auto train = [&](bool bidirectional) {
        manual_seed(30);
        nn::RNN rnn({.input_size = V, .hidden_size = 16, .bidirectional = bidirectional});
        nn::Linear head(bidirectional ? 32 : 16, V);
        std::vector<Tensor> params = rnn.parameters();
        for (auto& p : head.parameters()) params.push_back(p);
        nn::Adam opt(params, {.lr = 0.02});
        auto batch = [&](xt::xarray<std::int64_t>& y) {
            auto ids = random_ids({T, B}, V, g);
            y = ids;
            for (std::size_t t = 0; t < T; ++t)
                for (std::size_t b = 0; b < B; ++b) y(t, b) = t + 1 < T ? ids(t + 1, b) : -100;
            return one_hot(ids, V);
        };
        for (int step = 0; step < 300; ++step) {
            xt::xarray<std::int64_t> y;
            Tensor x = batch(y);
            Tape tape;
            tape.backward(cross_entropy(head(rnn(x).output), y));
            opt.step();
            opt.zero_grad();
        }
        xt::xarray<std::int64_t> y;
        Tensor x = batch(y);
        return accuracy(head(rnn(x).output), y);
    };
    const double bi = train(true), uni = train(false);
    CHECK(bi > 0.95);
    CHECK(uni < 0.45);  // chance is 0.25: the future is not in a forward RNN's state
}

TEST_CASE("one-to-many: a decoder learns a sequence per class from one vector", "[nn][task]") {
    manual_seed(40);
    const std::size_t K = 4, V = 6, steps = 4, B = K;
    nn::RNNDecoder dec({.latent_size = K, .input_size = V, .hidden_size = 24, .output_size = V});
    nn::Adam opt(dec.parameters(), {.lr = 0.02});
    // Class k spells k, k+1, k+2, k+3 (mod V).
    xt::xarray<std::int64_t> cls = xt::xarray<std::int64_t>::from_shape({B}), y = xt::xarray<std::int64_t>::from_shape({steps, B});
    for (std::size_t b = 0; b < B; ++b) {
        cls(b) = static_cast<std::int64_t>(b);
        for (std::size_t t = 0; t < steps; ++t) y(t, b) = static_cast<std::int64_t>((b + t) % V);
    }
    Tensor z = one_hot(cls, K);
    std::vector<Tensor> teach = {zeros({B, V})};
    for (std::size_t t = 0; t + 1 < steps; ++t) teach.push_back(select(one_hot(y, V), 0, static_cast<long>(t)));
    Tensor teacher = stack(teach, 0);
    for (int step = 0; step < 200; ++step) {
        Tape tape;
        tape.backward(cross_entropy(dec(z, steps, teacher), y));
        opt.step();
        opt.zero_grad();
    }
    CHECK(accuracy(dec(z, steps), y) == 1.0);  // free-running, feeding back its own predictions
}
