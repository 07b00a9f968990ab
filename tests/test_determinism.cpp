// Determinism: the same seeds give bitwise the same training run (every loss, the final parameters
// and the sampled text) for a character-level RNN with dropout; and models trained at the same time
// on separate threads, each on its own tape with its own thread's generator, give bitwise the same
// results as when trained one after another. Gradient checks run concurrently on threads pass and
// agree exactly with the same checks run alone.
#include <catch2/catch.hpp>

#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;

namespace {

const std::string kText =
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
    "it was the season of Darkness, it was the spring of hope, it was the winter of despair.";

constexpr std::size_t E = 12, H = 24, T = 12, B = 6;

// Embedding -> 2-layer RNN with dropout between the layers -> dropout -> Linear. The RNN's dropout
// draws from the thread's default generator, the output dropout from the run's own generator: both
// kinds must be reproducible.
struct CharRNN : nn::Module {
    nn::Embedding emb;
    nn::RNN rnn;
    nn::Linear head;
    explicit CharRNN(std::size_t vocab)
        : emb(vocab, E), rnn({.input_size = E, .hidden_size = H, .num_layers = 2, .dropout = 0.25}), head(H, vocab) {
        register_module("emb", emb);
        register_module("rnn", rnn);
        register_module("head", head);
    }
    Tensor logits(const xt::xarray<std::int64_t>& ids, const Tensor& h0, Tensor* h_n, Generator& gen) {
        auto [out, hn] = rnn(emb(ids), h0);  // out [T, B, H], hn [2, B, H]
        if (h_n) *h_n = hn;
        return head(dropout(out, 0.2, is_training(), gen));  // [T, B, V]
    }
};

struct Run {
    std::vector<double> losses;
    std::string params;  // every parameter's bytes, in order
    std::vector<std::int64_t> sample;
};

std::string param_bytes(const nn::Module& m) {
    std::string out;
    for (const Tensor& p : m.parameters())
        std::visit([&](const auto& a) {
            out.append(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(a.data()[0]));
        }, p.array());
    return out;
}

bool same_losses(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Trains from scratch: init_seed seeds this thread's default generator (initial weights, the RNN's
// dropout), data_seed the run's generator (batches, output dropout, sampling). Everything it touches
// is its own or thread-local, so it may run on any thread.
Run train(std::uint64_t init_seed, std::uint64_t data_seed, std::size_t steps) {
    const nn::Vocab vocab = nn::Vocab::build(kText);
    const std::vector<std::int64_t> text = vocab.encode_vector(kText);
    manual_seed(init_seed);
    Generator gen(data_seed);
    CharRNN model(vocab.size());
    nn::Adam opt(model.parameters(), {.lr = 3e-3});
    Run run;
    for (std::size_t step = 0; step < steps; ++step) {
        const auto [ids, targets] = test::random_windows(text, T, B, gen);
        Tape tape;
        Tensor loss = cross_entropy(model.logits(ids, Tensor(), nullptr, gen), targets);
        tape.backward(loss);
        nn::clip_grad_norm(model.parameters(), 1.0);
        opt.step();
        opt.zero_grad();
        run.losses.push_back(loss.item());
    }
    run.params = param_bytes(model);
    model.eval();
    auto step_fn = [&](std::int64_t id, Tensor& h) {
        xt::xarray<std::int64_t> one = xt::xarray<std::int64_t>::from_shape({1, 1});
        one.data()[0] = id;
        Tensor h_n;
        Tensor logits = model.logits(one, h, &h_n, gen);  // [1, 1, V]
        h = h_n;
        return reshape(logits, {1, static_cast<long>(vocab.size())});
    };
    Tensor h;
    run.sample = nn::sample(step_fn, h, vocab.encode_vector("It was"), {.length = 60, .temperature = 0.8}, gen);
    return run;
}

// Runs fs on threads of their own, all at once, and rethrows the first exception any of them threw.
void run_concurrently(const std::vector<std::function<void()>>& fs) {
    std::vector<std::exception_ptr> errors(fs.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < fs.size(); ++i)
        threads.emplace_back([&, i] {
            try {
                fs[i]();
            } catch (...) {
                errors[i] = std::current_exception();
            }
        });
    for (auto& t : threads) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace

TEST_CASE("the same seeds give bitwise the same training run, dropout and sampling included", "[determinism]") {
    const Run a = train(1, 2, 200);
    const Run b = train(1, 2, 200);
    REQUIRE(a.losses.size() == 200);
    CHECK(same_losses(a.losses, b.losses));
    CHECK(a.params == b.params);
    CHECK(a.sample == b.sample);
    CHECK(a.sample.size() == 60);
    // The run learns, so the comparison is between real training runs: the mean loss of the last 20
    // steps is well below that of the first 20 (which is near chance, ln V).
    double first = 0, last = 0;
    for (std::size_t i = 0; i < 20; ++i) first += a.losses[i] / 20, last += a.losses[199 - i] / 20;
    INFO("mean loss over the first 20 steps " << first << ", over the last 20 " << last);
    CHECK(last < first - 0.5);

    // Each seed matters: the comparison above would see a difference in initial weights, in the RNN's
    // dropout masks (init_seed), or in batches, output dropout and sampling (data_seed).
    const Run other_init = train(3, 2, 200), other_data = train(1, 4, 200);
    CHECK_FALSE(same_losses(a.losses, other_init.losses));
    CHECK_FALSE(same_losses(a.losses, other_data.losses));
    CHECK(a.params != other_init.params);
    CHECK(a.params != other_data.params);
}

TEST_CASE("models trained on four threads at once match the same models trained one after another",
          "[determinism][threads]") {
    constexpr std::size_t kThreads = 4, kSteps = 100;
    std::vector<Run> alone;
    for (std::size_t i = 0; i < kThreads; ++i) alone.push_back(train(10 + i, 20 + i, kSteps));

    std::vector<Run> together(kThreads);
    std::vector<std::function<void()>> jobs;
    for (std::size_t i = 0; i < kThreads; ++i) jobs.push_back([&, i] { together[i] = train(10 + i, 20 + i, kSteps); });
    {
        Tape main_tape;  // a tape active on this thread must not capture anything the workers record
        run_concurrently(jobs);
        CHECK(main_tape.size() == 0);
    }
    for (std::size_t i = 0; i < kThreads; ++i) {
        INFO("model " << i);
        REQUIRE(together[i].losses.size() == kSteps);
        CHECK(same_losses(together[i].losses, alone[i].losses));
        CHECK(together[i].params == alone[i].params);
        CHECK(together[i].sample == alone[i].sample);
    }
    // The four runs differ from each other, so a thread that picked up another's state would show.
    for (std::size_t i = 1; i < kThreads; ++i) CHECK_FALSE(same_losses(alone[i].losses, alone[0].losses));
}

TEST_CASE("gradient checks run concurrently on threads pass and agree exactly with the same checks alone",
          "[determinism][threads][gradcheck]") {
    // Four different float64 checks: a 2-layer bidirectional RNN, an LSTM, a GRU (each w.r.t. every
    // parameter, the input and h0), and a composed op chain. Inputs come from each check's own generator.
    auto weighted_sum = [](const Tensor& y, Generator& g) { return sum(y * randn(y.shape(), g, f64)); };
    auto check = [&](int which) -> GradcheckResult {
        manual_seed(100 + which);
        Generator g(200 + which);
        Tensor x = randn({3, 2, 2}, g, f64);  // [T, B, in]
        switch (which) {
        case 0: {
            nn::RNN rnn({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
            rnn.to(f64);
            Tensor h0 = randn({4, 2, 3}, g, f64);
            Generator w(300);
            return nn::gradcheck_module(rnn, [&] {
                w.manual_seed(300);
                auto [out, hn] = rnn(x, h0);
                return weighted_sum(out, w) + weighted_sum(hn, w);
            }, {x, h0});
        }
        case 1: {
            nn::LSTM lstm({.input_size = 2, .hidden_size = 3});
            lstm.to(f64);
            Generator w(301);
            return nn::gradcheck_module(lstm, [&] {
                w.manual_seed(301);
                return weighted_sum(lstm(x).output, w);
            }, {x});
        }
        case 2: {
            nn::GRU gru({.input_size = 2, .hidden_size = 3, .num_layers = 2});
            gru.to(f64);
            Generator w(302);
            return nn::gradcheck_module(gru, [&] {
                w.manual_seed(302);
                return weighted_sum(gru(x).output, w);
            }, {x});
        }
        default: {
            Tensor a = randn({4, 3}, g, f64), b = randn({3, 5}, g, f64);
            return gradcheck([](const std::vector<Tensor>& in) {
                return log_softmax(tanh(matmul(in[0], in[1])) * 2.0, -1);
            }, {a, b});
        }
        }
    };
    constexpr int kChecks = 4;
    std::vector<GradcheckResult> alone, together(kChecks);
    for (int i = 0; i < kChecks; ++i) alone.push_back(check(i));
    std::vector<std::function<void()>> jobs;
    for (int i = 0; i < kChecks; ++i) jobs.push_back([&, i] { together[static_cast<std::size_t>(i)] = check(i); });
    run_concurrently(jobs);
    for (std::size_t i = 0; i < kChecks; ++i) {
        INFO("check " << i << ": " << together[i].message);
        CHECK(alone[i].ok);
        CHECK(together[i].ok);
        CHECK(together[i].compared > 20);
        CHECK(together[i].compared == alone[i].compared);
        CHECK(std::memcmp(&together[i].worst_error, &alone[i].worst_error, sizeof(double)) == 0);
    }
}
