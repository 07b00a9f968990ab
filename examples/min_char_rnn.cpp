// The minimal character-level RNN, reproduced in tapegrad: the classic ~100-line numpy program
// (hidden 100, 25-step chunks, one-hot input, batch 1, Adagrad at 0.1, gradients clipped to
// [-5, 5], loss summed over the chunk, a smoothed loss starting at 25 ln V). What it teaches: that
// program's hand-written backward pass is exactly what the tape gives for free, and its learning
// curve (a fast drop from 25 ln V, then a long slow decline) comes out the same.
//
//   min_char_rnn [--text FILE] [--iters N] [--csv FILE] ...   default text: Debian's fortunes file
#include <cmath>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

// h_t = tanh(W_xh x_t + W_hh h_{t-1} + b),  y_t = W_hy h_t + b_y,  p_t = softmax(y_t)
struct MinCharRNN : nn::Module {
    nn::RNNCell cell;  // weight_ih [H, V], weight_hh [H, H]
    nn::Linear head;   // weight [V, H]
    MinCharRNN(std::size_t vocab, std::size_t hidden) : cell(vocab, hidden), head(hidden, vocab) {
        register_module("cell", cell);
        register_module("head", head);
    }
    std::string type_name() const override { return "MinCharRNN"; }
    // One character id -> (logits [1, V], new state [1, H]); an undefined state means zeros.
    std::pair<Tensor, Tensor> step(std::int64_t id, const Tensor& h, std::size_t vocab) const {
        const xt::xarray<std::int64_t> ids = {id};
        Tensor x = one_hot(ids, vocab);  // [1, V]
        Tensor h_new = cell(x, h);
        return {head(h_new), h_new};
    }
};

// The original's initialisation: weights N(0, 0.01^2), biases zero (instead of PyTorch's
// U(-1/sqrt(H), 1/sqrt(H)), which the layers start with).
void init_like_the_original(const nn::Module& model, Generator& gen) {
    for (auto& [name, p] : model.named_parameters()) {
        auto& v = p.mutable_value<float>();
        const bool is_bias = name.find("bias") != std::string::npos;
        for (std::size_t i = 0; i < v.size(); ++i)
            v.data()[i] = is_bias ? 0.0f : static_cast<float>(0.01 * gen.normal());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"The minimal character-level RNN (hidden 100, 25-step chunks, Adagrad), trained on a text"};
    std::string text_path = "/usr/share/games/fortunes/fortunes", csv_path;
    std::size_t hidden = 100, seq_length = 25, iters = 100000, print_every = 5000, sample_every = 20000;
    double lr = 0.1;
    std::uint64_t seed = 1;
    bool short_run = false, check = false;
    app.add_option("--text", text_path, "UTF-8 text file to train on")->capture_default_str();
    app.add_option("--iters", iters, "training iterations (one chunk each)")->capture_default_str();
    app.add_option("--hidden", hidden, "hidden size")->capture_default_str();
    app.add_option("--seq-length", seq_length, "characters per chunk (truncated BPTT length)")->capture_default_str();
    app.add_option("--lr", lr, "Adagrad learning rate")->capture_default_str();
    app.add_option("--print-every", print_every, "print the smoothed loss every N iterations")->capture_default_str();
    app.add_option("--sample-every", sample_every, "print a 200-character sample every N iterations (0: never)")
        ->capture_default_str();
    app.add_option("--csv", csv_path, "write iteration,smooth_loss for every iteration to this file");
    app.add_option("--seed", seed, "random seed (initialisation and sampling)")->capture_default_str();
    app.add_flag("--short", short_run, "a quick run for CI: 2000 iterations");
    app.add_flag("--check", check, "exit 1 unless the smoothed loss ends at least 30% below 25 ln V");
    CLI11_PARSE(app, argc, argv);
    if (short_run && app.count("--iters") == 0) iters = 2000, print_every = 250, sample_every = 0;

    if (iters == 0 || hidden == 0 || seq_length == 0) {
        fmt::print(stderr, "min_char_rnn: --iters, --hidden and --seq-length must be at least 1\n");
        return 2;
    }
    try {
        const std::string text = nn::read_text_file(text_path);
        const nn::Vocab vocab = nn::Vocab::build(text);
        const std::vector<std::int64_t> data = vocab.encode_vector(text);
        const std::size_t V = vocab.size();
        if (data.size() < seq_length + 2) throw ValueError("min_char_rnn: the text is shorter than one chunk");
        fmt::print("data has {} characters, {} unique.\n", data.size(), V);

        manual_seed(seed);
        Generator gen(seed);
        MinCharRNN model(V, hidden);
        init_like_the_original(model, gen);
        nn::Adagrad opt(model.parameters(), {.lr = lr, .eps = 1e-8});

        // Every pass over the text starts from h = 0 and walks it in chunks of seq_length
        // characters: each chunk is one iteration, recorded on its own tape, with the hidden state
        // carried into the next chunk detached (truncated BPTT). Step t reads data[t], predicts data[t+1].
        const std::size_t steps_per_pass = (data.size() - 1) / seq_length * seq_length;
        const double start = static_cast<double>(seq_length) * std::log(static_cast<double>(V));  // 25 ln V
        double smooth = start;
        fmt::print("smooth loss at iteration 0: {:.2f} (= {} ln {}, the loss of a uniform guess)\n", smooth,
                   seq_length, V);
        std::ofstream csv;
        if (!csv_path.empty()) {
            csv.open(csv_path);
            if (!csv) throw ValueError("min_char_rnn: cannot write " + csv_path);
            csv << "iteration,smooth_loss\n" << 0 << ',' << start << '\n';
        }

        nn::Progress progress(iters, {.log_every = print_every});
        std::size_t n = 0;  // iterations done
        Tensor h_last;      // the hidden state after the latest step, for sampling
        while (n < iters) {
            const std::size_t steps = std::min(steps_per_pass, (iters - n) * seq_length);
            auto step = [&](std::size_t t, const Tensor& h) {
                auto [logits, h_new] = model.step(data[t], h, V);
                const xt::xarray<std::int64_t> target = {data[t + 1]};
                h_last = h_new.detach();
                return nn::TbpttOut{cross_entropy(logits, target, {.reduction = Reduction::sum}), h_new};
            };
            auto update = [&](const nn::TbpttUpdate& u) {
                nn::clip_grad_value(model.parameters(), 5.0);
                opt.step();
                opt.zero_grad();
                ++n;
                smooth = smooth * 0.999 + u.loss * 0.001;
                if (csv.is_open()) csv << n << ',' << smooth << '\n';
                progress.update(n, smooth);
                if (print_every && n % print_every == 0) fmt::print("iter {}, smooth loss: {:.2f}\n", n, smooth);
                if (sample_every && n % sample_every == 0) {
                    // 200 characters drawn from softmax(y), starting from the state training reached.
                    auto sample_step = [&](std::int64_t id, Tensor& h) {
                        auto [logits, h_new] = model.step(id, h, V);
                        h = h_new;
                        return logits;
                    };
                    Tensor h = h_last;
                    const auto ids = nn::sample(sample_step, h, {data[u.end]}, {.length = 200}, gen);
                    fmt::print("----\n{}\n----\n", vocab.decode(ids));
                }
            };
            nn::tbptt_steps(steps, Tensor(), {.k1 = seq_length}, step, update);
        }
        progress.finish();

        const double drop = 1.0 - smooth / start;
        fmt::print("after {} iterations: smooth loss {:.2f}, {:.1f}% below its start {:.2f}\n", n, smooth,
                   100 * drop, start);
        if (check && !(drop >= 0.30)) {
            fmt::print(stderr, "check failed: the smoothed loss fell only {:.1f}% (needs 30%)\n", 100 * drop);
            return 1;
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "min_char_rnn: {}\n", e.what());
        return 1;
    }
    return 0;
}
