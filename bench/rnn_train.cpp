// Training-step benchmark of tapegrad: a recurrent language model (one-hot or embedding input; an
// Elman RNN, LSTM or GRU layer, or an LSTM cell written from primitive ops; a Linear head at every
// step; mean cross-entropy, masked past each sequence's length where lengths vary), timed per whole
// step: forward from a zero state, backward through the tape, clip_grad_norm to 5 and one Adam step.
// bench_torch_rnn runs the same configurations with LibTorch and prints the same lines;
// bench/compare.sh puts them side by side.
//
//   bench_rnn_train [--config a|b|...|n|all]... [--steps N] [--warmup W] [--threads K] [--csv] [-v]
#include <cmath>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

#include "rnn_bench.hpp"

using namespace tapegrad;
using namespace rnn_bench;

namespace {

// An LSTM layer written the way a user writes a cell of their own (docs/custom_cell.md): four
// registered parameters in PyTorch's layout (rows i, f, g, o) and a plain loop of public tape ops.
//   gates = x W_ih^T + b_ih + h W_hh^T + b_hh,  split into i, f, g, o
//   c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c')
// The input projection of all steps is one GEMM over [T*B, I] before the loop, both biases folded in.
class UserLSTM : public nn::Module {
public:
    UserLSTM(std::size_t input_size, std::size_t hidden_size) : hidden_size(hidden_size) {
        const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));  // PyTorch's initialisation
        w_ih = register_parameter("weight_ih", uniform({4 * hidden_size, input_size}, -k, k));
        w_hh = register_parameter("weight_hh", uniform({4 * hidden_size, hidden_size}, -k, k));
        b_ih = register_parameter("bias_ih", uniform({4 * hidden_size}, -k, k));
        b_hh = register_parameter("bias_hh", uniform({4 * hidden_size}, -k, k));
    }
    std::string type_name() const override { return "UserLSTM"; }

    // x [T, B, I] -> the states of every step [T, B, H], from h = c = 0.
    Tensor forward(const Tensor& x) const {
        const long T = static_cast<long>(x.size(0));
        const std::size_t B = x.size(1);
        const Tensor xw = linear(x, w_ih, b_ih + b_hh);  // [T, B, 4H]: every step's input projection
        Tensor h = zeros({B, hidden_size}), c = zeros({B, hidden_size});
        std::vector<Tensor> hs;
        hs.reserve(static_cast<std::size_t>(T));
        for (long t = 0; t < T; ++t) {
            const Tensor gates = linear(h, w_hh, select(xw, 0, t));  // [B, 4H]: this step's row + h W_hh^T
            const std::vector<Tensor> g = chunk(gates, 4, -1);
            const Tensor i = sigmoid(g[0]), f = sigmoid(g[1]), cand = tanh(g[2]), o = sigmoid(g[3]);
            c = f * c + i * cand;
            h = o * tanh(c);
            hs.push_back(h);
        }
        return stack(hs);
    }
    Tensor operator()(const Tensor& x) const { return forward(x); }

    Tensor w_ih, w_hh, b_ih, b_hh;
    const std::size_t hidden_size;
};

// [optional Embedding] -> recurrent layer -> Linear: ids [T, B] -> logits [T, B, V].
struct Model : nn::Module {
    std::unique_ptr<nn::Embedding> embed;  // null: one-hot input
    // Exactly one recurrent layer, as the configuration says.
    std::unique_ptr<nn::RNN> rnn;
    std::unique_ptr<nn::LSTM> lstm;
    std::unique_ptr<nn::GRU> gru;
    std::unique_ptr<UserLSTM> user_lstm;
    nn::Linear head;
    const std::size_t vocab;
    explicit Model(const Config& c)
        : embed(c.embed ? std::make_unique<nn::Embedding>(c.vocab, c.embed) : nullptr),
          head(c.directions() * c.hidden, c.vocab),
          vocab(c.vocab) {
        if (embed) register_module("embed", *embed);
        switch (c.cell) {
            case Cell::rnn:
                rnn = std::make_unique<nn::RNN>(nn::RNNOptions{.input_size = c.input_size(),
                                                               .hidden_size = c.hidden,
                                                               .num_layers = c.layers,
                                                               .bidirectional = c.bidirectional});
                register_module("rnn", *rnn);
                break;
            case Cell::lstm:
                lstm = std::make_unique<nn::LSTM>(nn::LSTMOptions{.input_size = c.input_size(),
                                                                  .hidden_size = c.hidden,
                                                                  .num_layers = c.layers,
                                                                  .bidirectional = c.bidirectional});
                register_module("lstm", *lstm);
                break;
            case Cell::gru:
                gru = std::make_unique<nn::GRU>(nn::GRUOptions{.input_size = c.input_size(),
                                                               .hidden_size = c.hidden,
                                                               .num_layers = c.layers,
                                                               .bidirectional = c.bidirectional});
                register_module("gru", *gru);
                break;
            case Cell::lstm_cell:
                user_lstm = std::make_unique<UserLSTM>(c.input_size(), c.hidden);
                register_module("lstm", *user_lstm);
                break;
        }
        register_module("head", head);
    }
    std::string type_name() const override { return "Model"; }
    // lengths: one per batch row, or empty for all T.
    Tensor forward(const xt::xarray<std::int64_t>& ids, const std::vector<std::int64_t>& lengths) const {
        const Tensor x = embed ? (*embed)(ids) : one_hot(ids, vocab);  // [T, B, I]
        Tensor states;                                                 // [T, B, D*H]
        if (rnn) states = (*rnn)(x, Tensor(), lengths).output;
        if (lstm) states = (*lstm)(x, Tensor(), Tensor(), lengths).output;
        if (gru) states = (*gru)(x, Tensor(), lengths).output;
        if (user_lstm) states = (*user_lstm)(x);
        return head(states);  // [T, B, V]
    }
};

xt::xarray<std::int64_t> id_array(const Config& c, std::uint64_t seed) {
    const auto ids = random_ids(c.seq * c.batch, c.vocab, seed);
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({c.seq, c.batch});
    std::copy(ids.begin(), ids.end(), out.data());
    return out;
}

// With lengths, the loss weight of each position [T, B]: 1 up to its sequence's length, 0 after.
Tensor length_mask(const Config& c, const std::vector<std::int64_t>& lengths) {
    xt::xarray<float> mask = xt::zeros<float>({c.seq, c.batch});
    for (std::size_t t = 0; t < c.seq; ++t)
        for (std::size_t b = 0; b < c.batch; ++b)
            mask(t, b) = static_cast<std::int64_t>(t) < lengths[b] ? 1.0f : 0.0f;
    return Tensor(std::move(mask));
}

Result run_rnn(const Config& c, const Args& a) {
    const bool peak_reset = reset_peak_rss();
    manual_seed(1);
    Model model(c);
    const std::vector<Tensor> params = model.parameters();
    nn::Adam opt(params, {.lr = 1e-3});
    const auto ids = id_array(c, input_seed), targets = id_array(c, target_seed);
    const std::vector<std::int64_t> lengths = sequence_lengths(c);
    // Mean over the positions inside their sequence (all T*B without lengths): padded positions
    // weigh 0 in the loss and get no gradient.
    CrossEntropyOptions loss_options;
    if (!lengths.empty()) loss_options.weight = length_mask(c, lengths);
    const long baseline_kb = status_kb("VmRSS");  // model and data built, before the first step
    if (a.verbose) std::fprintf(stderr, "%s\n%s\n", describe(c).c_str(), model.summary().c_str());

    auto step = [&] {
        Tape tape;
        const Tensor loss = cross_entropy(model.forward(ids, lengths), targets, loss_options);
        tape.backward(loss);
        nn::clip_grad_norm(params, 5.0);
        opt.step();
        opt.zero_grad();
        return loss.item();
    };
    double first_loss = -1;
    const std::vector<double> ms = timed_runs(a.warmup, a.steps, 1.0, [&] {
        const double loss = step();
        if (first_loss < 0) first_loss = loss;
    });
    if (a.verbose)
        std::fprintf(stderr, "tapegrad %c: loss at step 1 %.4f (ln V = %.4f)\n", c.name, first_loss,
                     std::log(static_cast<double>(c.vocab)));
    return step_result("tapegrad", c, a.threads, ms, baseline_kb, peak_reset);
}

// (f): y = y + c a hundred times on a [1, 1] tensor that requires grad, recorded and backpropagated.
// One repetition is 100 such chains; ms are per chain. x's gradient accumulates across chains (one
// buffer, added to), as it does in bench_torch_rnn.
Result run_overhead(const Config& c, const Args& a) {
    constexpr int ops = 100, chains = 100;
    const Tensor x = full({1, 1}, 0.5, f32, true);
    const Tensor k = ones({1, 1});
    auto rep = [&] {
        for (int i = 0; i < chains; ++i) {
            Tape tape;
            Tensor y = x;
            for (int j = 0; j < ops; ++j) y = y + k;
            tape.backward(y);
        }
    };
    const std::size_t reps = std::max<std::size_t>(a.steps, 20);
    const std::vector<double> ms = timed_runs(a.warmup, reps, chains, rep);
    if (a.verbose)
        std::fprintf(stderr, "tapegrad f: dx summed over all chains %.0f (expected %zu)\n", x.grad().item(),
                     (a.warmup + reps) * chains);
    return Result{"tapegrad", c, a.threads, stats(ms)};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tapegrad training-step benchmark: recurrent language models (Elman RNN, LSTM, GRU), and "
                 "per-op tape overhead"};
    Args a;
    add_options(app, a);
    CLI11_PARSE(app, argc, argv);
    openblas_set_num_threads(a.threads);
    try {
        for (const Config& c : selected(a)) print(c.overhead ? run_overhead(c, a) : run_rnn(c, a), a.csv);
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
