// An Elman RNN written by hand from tapegrad's core ops and trained with plain SGD. It shows that a
// recurrent network needs no special machinery: unroll the loop in ordinary C++ while a Tape is
// active, call tape.backward(loss), and backpropagation through time falls out of the tape.
// The task: read a noisy sine wave of random phase and frequency and predict its next value.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

// A batch of noisy sine waves, w(t) = sin(f t + phi) + noise with f and phi random per wave. The
// network must infer each wave's frequency and phase from what it has read so far.
// inputs[t] = w(t) and targets[t] = w(t + 1) for t = 0..T-1.
struct Batch {
    Tensor inputs;   // [T, B, 1]
    Tensor targets;  // [T, B, 1]
};
Batch make_waves(std::mt19937& gen, std::size_t T, std::size_t B) {
    std::uniform_real_distribution<float> freq(0.2f, 0.6f), phase(0.0f, 6.2832f);
    std::normal_distribution<float> noise(0.0f, 0.05f);
    xt::xarray<float> in = xt::xarray<float>::from_shape({T, B, 1});
    xt::xarray<float> out = xt::xarray<float>::from_shape({T, B, 1});
    for (std::size_t b = 0; b < B; ++b) {
        const float f = freq(gen), phi = phase(gen);
        float w = std::sin(phi) + noise(gen);
        for (std::size_t t = 0; t < T; ++t) {
            in(t, b, 0) = w;
            w = std::sin(f * static_cast<float>(t + 1) + phi) + noise(gen);
            out(t, b, 0) = w;
        }
    }
    return {Tensor(std::move(in)), Tensor(std::move(out))};
}

// h_t = tanh(x_t W_x + h_{t-1} W_h + b),  y_t = h_t W_y + b_y
struct Elman {
    Tensor w_x;  // [1, H]
    Tensor w_h;  // [H, H]
    Tensor b;    // [H]
    Tensor w_y;  // [H, 1]
    Tensor b_y;  // [1]

    Elman(std::size_t H, std::mt19937& gen) {
        // PyTorch's initialisation for recurrent layers: U(-1/sqrt(H), 1/sqrt(H)).
        const float k = 1.0f / std::sqrt(static_cast<float>(H));
        std::uniform_real_distribution<float> u(-k, k);
        auto param = [&](Shape shape, const char* name) {
            xt::xarray<float> v = xt::xarray<float>::from_shape(shape);
            for (auto& e : v) e = u(gen);
            Tensor p(std::move(v), /*requires_grad=*/true);
            p.set_name(name);
            return p;
        };
        w_x = param({1, H}, "W_x");
        w_h = param({H, H}, "W_h");
        b = param({H}, "b");
        w_y = param({H, 1}, "W_y");
        b_y = param({1}, "b_y");
    }
    std::vector<Tensor*> params() { return {&w_x, &w_h, &b, &w_y, &b_y}; }

    // Unrolls over inputs [T, B, 1] from h_0 = 0 and returns the predictions [T, B, 1]. While a tape is
    // active every op below is recorded, so this loop is also the graph BPTT walks backwards.
    Tensor forward(const Tensor& inputs) const {
        const std::size_t T = inputs.size(0), B = inputs.size(1), H = w_h.size(0);
        Tensor h = zeros({B, H});  // [B, H]
        std::vector<Tensor> ys;
        for (std::size_t t = 0; t < T; ++t) {
            const Tensor x = select(inputs, 0, static_cast<long>(t));  // [B, 1]
            h = tanh(matmul(x, w_x) + matmul(h, w_h) + b);
            ys.push_back(matmul(h, w_y) + b_y);  // [B, 1]
        }
        return stack(ys);
    }
};

Tensor mse(const Tensor& pred, const Tensor& target) {
    const Tensor d = pred - target;
    return mean(d * d);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Train an Elman RNN, written by hand from tapegrad ops, to predict the next value of noisy "
                 "sine waves."};
    unsigned seed = 1;
    int steps = 3000;
    std::size_t hidden = 32, seq_len = 40, batch = 16;
    float lr = 0.3f;
    bool short_run = false, check = false;
    app.add_option("--seed", seed, "random seed (data and initialisation)")->capture_default_str();
    app.add_option("--steps", steps, "SGD steps")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--hidden", hidden, "hidden units H")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--seq-len", seq_len, "time steps unrolled per sequence")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "sequences per SGD step")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "SGD learning rate")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_flag("--short", short_run, "a quick run (for CI): fewer steps");
    app.add_flag("--check", check, "exit with status 1 unless the final loss beats the baseline by 2x");
    CLI11_PARSE(app, argc, argv);
    if (short_run && app.count("--steps") == 0) steps = 400;

    std::mt19937 gen(seed);
    Elman model(hidden, gen);
    // A fixed held-out batch, drawn from its own generator so it is the same whatever --steps is.
    std::mt19937 eval_gen(seed + 1000);
    const Batch eval = make_waves(eval_gen, seq_len, 64);

    auto eval_loss = [&] {
        NoGrad guard;  // inference: nothing recorded
        return mse(model.forward(eval.inputs), eval.targets).item();
    };
    // The baseline a model must beat: "the next value is the one just read".
    const double baseline = mse(eval.inputs, eval.targets).item();

    fmt::print("Elman RNN, H = {}, unrolled over {} steps, batch {}, SGD lr {}, {} steps (seed {})\n", hidden, seq_len,
               batch, lr, steps, seed);
    fmt::print("held-out MSE of predicting the last value read: {:.4f}\n\n", baseline);
    fmt::print("{:>6}  {:>10}  {:>10}  {:>7}\n", "step", "train MSE", "eval MSE", "time");
    const auto start = std::chrono::steady_clock::now();
    const int report_every = std::max(1, steps / 10);
    double train_sum = 0;
    int train_n = 0;
    for (int step = 1; step <= steps; ++step) {
        // Fresh waves every step: the data never repeats, so the train MSE is an honest estimate too.
        const Batch data = make_waves(gen, seq_len, batch);
        Tape tape;  // records this step's unrolled graph, released by backward
        const Tensor loss = mse(model.forward(data.inputs), data.targets);
        if (!std::isfinite(loss.item())) {
            // Plain SGD has no gradient clipping: too large a step makes the recurrence explode.
            fmt::print("step {}: the loss is {}; training diverged, try a smaller --lr\n", step, loss.item());
            return 1;
        }
        tape.backward(loss);  // BPTT: one reverse sweep over the whole unroll
        for (Tensor* p : model.params()) {
            p->mutable_value<float>() -= lr * p->grad_value<float>();
            p->zero_grad();  // gradients accumulate across backward calls until zeroed
        }
        train_sum += loss.item();
        ++train_n;
        if (step % report_every == 0 || step == steps) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            fmt::print("{:>6}  {:>10.4f}  {:>10.4f}  {:>6.1f}s\n", step, train_sum / train_n, eval_loss(), secs);
            train_sum = 0;
            train_n = 0;
        }
    }

    // A few predictions on the first held-out wave, at its last steps.
    {
        NoGrad guard;
        const Tensor pred = model.forward(eval.inputs);  // [T, B, 1]
        const auto& x = eval.inputs.value<float>();
        const auto& y = eval.targets.value<float>();
        const auto& p = pred.value<float>();
        fmt::print("\nthe last steps of a held-out wave (the baseline predicts the value read):\n");
        fmt::print("{:>4}  {:>8}  {:>8}  {:>10}\n", "t", "read", "next", "predicted");
        for (std::size_t t = seq_len - std::min<std::size_t>(seq_len, 8); t < seq_len; ++t)
            fmt::print("{:>4}  {:>8.3f}  {:>8.3f}  {:>10.3f}\n", t, x(t, 0, 0), y(t, 0, 0), p(t, 0, 0));
    }

    const double final_loss = eval_loss();
    fmt::print("\nfinal held-out MSE {:.4f}  vs  baseline (predict the last value) {:.4f}: {:.1f}x {}\n",
               final_loss, baseline, final_loss < baseline ? baseline / final_loss : final_loss / baseline,
               final_loss < baseline ? "lower" : "higher");
    if (check) {
        const bool ok = final_loss < 0.5 * baseline;
        fmt::print("check: {} (needs the final MSE below half the baseline)\n", ok ? "passed" : "FAILED");
        return ok ? 0 : 1;
    }
    return 0;
}
