// The LibTorch counterpart of bench_rnn_train: the same configurations, ids, lengths, step (forward
// from a zero state, mean cross-entropy over all steps or, where lengths vary, over the steps inside
// each sequence, backward, clip_grad_norm_ to 5, one Adam step at lr 1e-3) and output lines, so
// bench/compare.sh can put tapegrad and LibTorch side by side. Each of a-d runs twice: with
// torch::nn::RNN, and with a hand-unrolled loop of torch ops; the faster is marked. e, g, h, j, k, l,
// m and n run torch::nn's layer (RNN, LSTM, GRU; k through pack_padded_sequence), i the LSTM cell written
// from torch ops.
//
//   bench_torch_rnn [--config a|b|...|n|all]... [--steps N] [--warmup W] [--threads K] [--csv] [-v]
//                   [--variant nn|unrolled|both]
#include <cmath>
#include <cstdio>
#include <functional>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "rnn_bench.hpp"

using namespace rnn_bench;
namespace F = torch::nn::functional;
namespace rnn_utils = torch::nn::utils::rnn;

namespace {

torch::Tensor id_tensor(const Config& c, std::uint64_t seed) {
    auto ids = random_ids(c.seq * c.batch, c.vocab, seed);
    const long T = static_cast<long>(c.seq), B = static_cast<long>(c.batch);
    return torch::from_blob(ids.data(), {T, B}, torch::kLong).clone();  // [T, B], owning its memory
}

// One model variant: its parameters and its forward, ids [T, B] -> logits [T, B, V].
struct Variant {
    std::string name;
    std::vector<torch::Tensor> params;
    std::function<torch::Tensor(const torch::Tensor&)> forward;
    // Modules kept alive by the closures.
    torch::nn::Embedding embed{nullptr};
    torch::nn::Linear head{nullptr};
    std::function<torch::Tensor(const torch::Tensor&)> recurrent;  // [T, B, I] -> [T, B, D*H]
};

torch::Tensor input_of(const Config& c, torch::nn::Embedding embed, const torch::Tensor& ids) {
    return c.embed ? embed->forward(ids) : torch::one_hot(ids, static_cast<long>(c.vocab)).to(torch::kFloat);
}

// A torch::nn recurrent layer (RNN, LSTM or GRU) over x [T, B, I] -> [T, B, D*H]. With lengths, the
// batch goes through pack_padded_sequence (unsorted lengths, enforce_sorted=false) and comes back
// through pad_packed_sequence, padded with zeros to T steps.
template <class Layer>
std::function<torch::Tensor(const torch::Tensor&)> layer_forward(Layer layer, const Config& c) {
    const std::vector<std::int64_t> lengths = sequence_lengths(c);
    // mutable: a const ModuleHolder gives a const module, and forward is not const.
    if (lengths.empty()) return [layer](const torch::Tensor& x) mutable { return std::get<0>(layer->forward(x)); };
    const torch::Tensor len = torch::tensor(lengths, torch::kLong);
    const long T = static_cast<long>(c.seq);
    return [layer, len, T](const torch::Tensor& x) mutable {
        const rnn_utils::PackedSequence packed =
            rnn_utils::pack_padded_sequence(x, len, /*batch_first=*/false, /*enforce_sorted=*/false);
        const rnn_utils::PackedSequence out = std::get<0>(layer->forward_with_packed_input(packed));
        return std::get<0>(rnn_utils::pad_packed_sequence(out, /*batch_first=*/false, /*padding_value=*/0.0, T));
    };
}

// torch::nn::Embedding -> torch::nn::RNN, LSTM or GRU -> torch::nn::Linear.
std::unique_ptr<Variant> nn_variant(const Config& c) {
    auto v = std::make_unique<Variant>();
    v->name = "libtorch-nn";
    if (c.embed) v->embed = torch::nn::Embedding(c.vocab, c.embed);
    if (c.embed) for (auto& p : v->embed->parameters()) v->params.push_back(p);
    const long I = static_cast<long>(c.input_size()), H = static_cast<long>(c.hidden);
    const long L = static_cast<long>(c.layers);
    auto add_params = [&](const auto& layer) {
        for (auto& p : layer->parameters()) v->params.push_back(p);
    };
    if (c.cell == Cell::lstm) {
        torch::nn::LSTM lstm(torch::nn::LSTMOptions(I, H).num_layers(L).bidirectional(c.bidirectional));
        add_params(lstm);
        v->recurrent = layer_forward(lstm, c);
    } else if (c.cell == Cell::gru) {
        torch::nn::GRU gru(torch::nn::GRUOptions(I, H).num_layers(L).bidirectional(c.bidirectional));
        add_params(gru);
        v->recurrent = layer_forward(gru, c);
    } else {
        torch::nn::RNN rnn(torch::nn::RNNOptions(I, H)
                               .nonlinearity(torch::kTanh)
                               .num_layers(L)
                               .bidirectional(c.bidirectional));
        add_params(rnn);
        v->recurrent = layer_forward(rnn, c);
    }
    v->head = torch::nn::Linear(c.directions() * c.hidden, c.vocab);
    for (auto& p : v->head->parameters()) v->params.push_back(p);
    Variant* self = v.get();
    v->forward = [self, c](const torch::Tensor& ids) {
        return self->head->forward(self->recurrent(input_of(c, self->embed, ids)));  // [T, B, V]
    };
    return v;
}

// The recurrence written out with torch ops, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh). As in
// nn::RNN (both libraries'), the input projection of all steps is one GEMM up front with both biases
// folded in, so a step is one addmm and one tanh; the head runs once on the stacked states.
std::unique_ptr<Variant> unrolled_variant(const Config& c) {
    auto v = std::make_unique<Variant>();
    v->name = "libtorch-unrolled";
    const long H = static_cast<long>(c.hidden), I = static_cast<long>(c.input_size());
    const double k = 1.0 / std::sqrt(static_cast<double>(H));
    if (c.embed) v->embed = torch::nn::Embedding(c.vocab, c.embed);
    struct Dir {
        torch::Tensor w_ih, w_hh, b_ih, b_hh;
    };
    auto dirs = std::make_shared<std::vector<Dir>>();
    for (std::size_t d = 0; d < c.directions(); ++d) {
        auto u = [&](std::vector<long> shape) { return torch::empty(shape).uniform_(-k, k).requires_grad_(); };
        dirs->push_back({u({H, I}), u({H, H}), u({H}), u({H})});
    }
    v->head = torch::nn::Linear(c.directions() * c.hidden, c.vocab);
    if (c.embed) for (auto& p : v->embed->parameters()) v->params.push_back(p);
    for (auto& d : *dirs) v->params.insert(v->params.end(), {d.w_ih, d.w_hh, d.b_ih, d.b_hh});
    for (auto& p : v->head->parameters()) v->params.push_back(p);
    Variant* self = v.get();
    v->forward = [self, c, dirs](const torch::Tensor& ids) {
        const torch::Tensor x = input_of(c, self->embed, ids);  // [T, B, I]
        const long T = static_cast<long>(c.seq), B = static_cast<long>(c.batch), H = static_cast<long>(c.hidden);
        std::vector<torch::Tensor> outs;
        for (std::size_t d = 0; d < dirs->size(); ++d) {
            const Dir& w = (*dirs)[d];
            const torch::Tensor xw = torch::linear(x, w.w_ih, w.b_ih + w.b_hh);  // [T, B, H]
            const torch::Tensor w_hh_t = w.w_hh.t();
            torch::Tensor h = torch::zeros({B, H});
            std::vector<torch::Tensor> hs(T);
            for (long s = 0; s < T; ++s) {
                const long t = d == 0 ? s : T - 1 - s;
                h = torch::tanh(torch::addmm(xw[t], h, w_hh_t));
                hs[t] = h;
            }
            outs.push_back(torch::stack(hs));  // [T, B, H]
        }
        return self->head->forward(outs.size() == 1 ? outs[0] : torch::cat(outs, 2));
    };
    return v;
}

// (i): an LSTM cell written with torch ops, the same math and the same structure as bench_rnn_train's
// UserLSTM: the input projection of all steps is one GEMM up front with both biases folded in, then a
// step is one addmm (h W_hh^T added to that step's projection), chunk into i, f, g, o, and
//   c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c'),
// from h = c = 0; the head runs once on the stacked states.
std::unique_ptr<Variant> lstm_cell_variant(const Config& c) {
    auto v = std::make_unique<Variant>();
    v->name = "libtorch-unrolled";
    const long H = static_cast<long>(c.hidden), I = static_cast<long>(c.input_size());
    const double k = 1.0 / std::sqrt(static_cast<double>(H));
    if (c.embed) v->embed = torch::nn::Embedding(c.vocab, c.embed);
    auto u = [&](std::vector<long> shape) { return torch::empty(shape).uniform_(-k, k).requires_grad_(); };
    const torch::Tensor w_ih = u({4 * H, I}), w_hh = u({4 * H, H}), b_ih = u({4 * H}), b_hh = u({4 * H});
    v->head = torch::nn::Linear(c.hidden, c.vocab);
    if (c.embed) for (auto& p : v->embed->parameters()) v->params.push_back(p);
    v->params.insert(v->params.end(), {w_ih, w_hh, b_ih, b_hh});
    for (auto& p : v->head->parameters()) v->params.push_back(p);
    Variant* self = v.get();
    v->forward = [self, c, w_ih, w_hh, b_ih, b_hh](const torch::Tensor& ids) {
        const torch::Tensor x = input_of(c, self->embed, ids);  // [T, B, I]
        const long T = static_cast<long>(c.seq), B = static_cast<long>(c.batch), H = static_cast<long>(c.hidden);
        // unbind: T views [B, 4H] whose gradients come back as one stack (indexing xw[t] instead would
        // have each step's backward add into a zero tensor of all T steps).
        const std::vector<torch::Tensor> xw = torch::linear(x, w_ih, b_ih + b_hh).unbind(0);  // T x [B, 4H]
        const torch::Tensor w_hh_t = w_hh.t();
        torch::Tensor h = torch::zeros({B, H}), cell = torch::zeros({B, H});
        std::vector<torch::Tensor> hs;
        hs.reserve(T);
        for (long t = 0; t < T; ++t) {
            const std::vector<torch::Tensor> g = torch::addmm(xw[t], h, w_hh_t).chunk(4, 1);  // [B, H] each
            const torch::Tensor i = torch::sigmoid(g[0]), f = torch::sigmoid(g[1]), cand = torch::tanh(g[2]),
                                o = torch::sigmoid(g[3]);
            cell = f * cell + i * cand;
            h = o * torch::tanh(cell);
            hs.push_back(h);
        }
        return self->head->forward(torch::stack(hs));  // [T, B, V]
    };
    return v;
}

Result run_rnn(const Config& c, const Args& a, const std::string& which) {
    const bool peak_reset = reset_peak_rss();
    torch::manual_seed(1);
    auto v = c.cell == Cell::lstm_cell ? lstm_cell_variant(c) : which == "nn" ? nn_variant(c) : unrolled_variant(c);
    torch::optim::Adam opt(v->params, torch::optim::AdamOptions(1e-3));
    const torch::Tensor ids = id_tensor(c, input_seed), targets = id_tensor(c, target_seed).reshape({-1});
    // With lengths, each position's loss weight (1 inside its sequence, 0 past it), flattened like the
    // targets; the loss is then sum(w * loss) / sum(w), as tapegrad's cross_entropy with a weight.
    torch::Tensor mask;
    if (const auto lengths = sequence_lengths(c); !lengths.empty()) {
        const torch::Tensor len = torch::tensor(lengths, torch::kLong);                        // [B]
        mask = (torch::arange(static_cast<long>(c.seq)).unsqueeze(1) < len.unsqueeze(0));  // [T, B]
        mask = mask.to(torch::kFloat).reshape({-1});
    }
    const long baseline_kb = status_kb("VmRSS");  // model and data built, before the first step
    if (a.verbose) {
        long n = 0;
        for (auto& p : v->params) n += p.numel();
        std::fprintf(stderr, "%s: %s, %ld parameters\n", v->name.c_str(), describe(c).c_str(), n);
    }

    const long V = static_cast<long>(c.vocab);
    auto step = [&] {
        opt.zero_grad();
        const torch::Tensor logits = v->forward(ids).reshape({-1, V});
        const torch::Tensor loss =
            mask.defined() ? (F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().reduction(torch::kNone)) *
                              mask).sum() / mask.sum()
                           : F::cross_entropy(logits, targets);  // mean
        loss.backward();
        torch::nn::utils::clip_grad_norm_(v->params, 5.0);
        opt.step();
        return loss.item<double>();
    };
    double first_loss = -1;
    const std::vector<double> ms = timed_runs(a.warmup, a.steps, 1.0, [&] {
        const double loss = step();
        if (first_loss < 0) first_loss = loss;
    });
    if (a.verbose)
        std::fprintf(stderr, "%s %c: loss at step 1 %.4f (ln V = %.4f)\n", v->name.c_str(), c.name, first_loss,
                     std::log(static_cast<double>(c.vocab)));
    return step_result(v->name, c, a.threads, ms, baseline_kb, peak_reset);
}

// (f): y = y + c a hundred times on a [1, 1] tensor that requires grad, then backward. One repetition
// is 100 such chains; ms are per chain. x's gradient accumulates across chains, as in bench_rnn_train.
Result run_overhead(const Config& c, const Args& a) {
    constexpr int ops = 100, chains = 100;
    const torch::Tensor x = torch::full({1, 1}, 0.5, torch::requires_grad());
    const torch::Tensor k = torch::ones({1, 1});
    auto rep = [&] {
        for (int i = 0; i < chains; ++i) {
            torch::Tensor y = x;
            for (int j = 0; j < ops; ++j) y = y + k;
            y.backward();
        }
    };
    const std::size_t reps = std::max<std::size_t>(a.steps, 20);
    const std::vector<double> ms = timed_runs(a.warmup, reps, chains, rep);
    if (a.verbose)
        std::fprintf(stderr, "libtorch f: dx summed over all chains %.0f (expected %zu)\n",
                     x.grad().item<double>(), (a.warmup + reps) * chains);
    return Result{"libtorch", c, a.threads, stats(ms)};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"LibTorch training-step benchmark: the configurations of bench_rnn_train"};
    Args a;
    add_options(app, a);
    std::string variant = "both";
    app.add_option("--variant", variant, "for a-d: nn (torch::nn::RNN), unrolled (a loop of torch ops) or both; "
                                         "e runs nn unless this names one; g-l have one variant each "
                                         "(i: the LSTM cell from torch ops, the others torch::nn's layer)")
        ->check(CLI::IsMember({"nn", "unrolled", "both"}));
    int intra_op = 0;
    app.add_option("--intra-op-threads", intra_op, "LibTorch's OpenMP threads (default: --threads)");
    CLI11_PARSE(app, argc, argv);
    // Elementwise kernels run on LibTorch's OpenMP threads; the GEMMs go to OpenBLAS, which has its own
    // pool of threads. One inter-op thread: a training step has no independent ops to overlap.
    at::set_num_interop_threads(1);
    torch::set_num_threads(intra_op > 0 ? intra_op : a.threads);
    openblas_set_num_threads(a.threads);
    try {
        for (const Config& c : selected(a)) {
            if (c.overhead) {
                print(run_overhead(c, a), a.csv);
                continue;
            }
            // The unrolled Elman loop covers one layer of tanh RNN: a-e. The later configurations
            // have one variant each (run_rnn picks the LSTM cell for i, torch::nn's layer otherwise).
            const bool elman = c.cell == Cell::rnn && c.layers == 1 && !c.variable_lengths;
            std::vector<std::string> which{variant};
            if (!elman) which = {c.cell == Cell::lstm_cell ? "unrolled" : "nn"};
            else if (variant == "both") which = c.name == 'e' ? std::vector<std::string>{"nn"}
                                                              : std::vector<std::string>{"nn", "unrolled"};
            std::vector<Result> rs;
            for (const auto& w : which) rs.push_back(run_rnn(c, a, w));
            if (rs.size() == 2 && !a.csv)
                (rs[0].ms.median <= rs[1].ms.median ? rs[0] : rs[1]).note += "  <- faster";
            for (const auto& r : rs) print(r, a.csv);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
