// Training-step benchmark of tapegrad: an Elman tanh RNN language model (one-hot or embedding input,
// RNN, a Linear head at every step, mean cross-entropy), timed per whole step: forward from a zero
// state, backward through the tape, clip_grad_norm to 5 and one Adam step. bench_torch_rnn runs the
// same configurations with LibTorch and prints the same lines; bench/compare.sh puts them side by side.
//
//   bench_rnn_train [--config a|b|c|d|e|f|all]... [--steps N] [--warmup W] [--threads K] [--csv] [-v]
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

// [optional Embedding] -> RNN -> Linear: ids [T, B] -> logits [T, B, V].
struct Model : nn::Module {
    std::unique_ptr<nn::Embedding> embed;  // null: one-hot input
    nn::RNN rnn;
    nn::Linear head;
    const std::size_t vocab;
    explicit Model(const Config& c)
        : embed(c.embed ? std::make_unique<nn::Embedding>(c.vocab, c.embed) : nullptr),
          rnn(nn::RNNOptions{
              .input_size = c.input_size(), .hidden_size = c.hidden, .bidirectional = c.bidirectional}),
          head(c.directions() * c.hidden, c.vocab),
          vocab(c.vocab) {
        if (embed) register_module("embed", *embed);
        register_module("rnn", rnn);
        register_module("head", head);
    }
    std::string type_name() const override { return "Model"; }
    Tensor forward(const xt::xarray<std::int64_t>& ids) const {
        const Tensor x = embed ? (*embed)(ids) : one_hot(ids, vocab);  // [T, B, I]
        return head(rnn(x).output);                                    // [T, B, V]
    }
};

xt::xarray<std::int64_t> id_array(const Config& c, std::uint64_t seed) {
    const auto ids = random_ids(c.seq * c.batch, c.vocab, seed);
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({c.seq, c.batch});
    std::copy(ids.begin(), ids.end(), out.data());
    return out;
}

Result run_rnn(const Config& c, const Args& a) {
    const bool peak_reset = reset_peak_rss();
    manual_seed(1);
    Model model(c);
    const std::vector<Tensor> params = model.parameters();
    nn::Adam opt(params, {.lr = 1e-3});
    const auto ids = id_array(c, input_seed), targets = id_array(c, target_seed);
    const long baseline_kb = status_kb("VmRSS");  // model and data built, before the first step
    if (a.verbose) std::fprintf(stderr, "%s\n%s\n", describe(c).c_str(), model.summary().c_str());

    auto step = [&] {
        Tape tape;
        const Tensor loss = cross_entropy(model.forward(ids), targets);  // mean over T*B positions
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
    CLI::App app{"tapegrad training-step benchmark: Elman RNN language model, and per-op tape overhead"};
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
