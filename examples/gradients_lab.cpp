// Vanishing and exploding gradients, measured on the adding problem. Each input step is a pair
// (value in [0, 1), marker 0 or 1); two steps are marked, one in each half of the sequence, and
// the target is the sum of the two marked values. Predicting the mean, 1.0, gives MSE 1/6 ~ 0.167.
// The lab has three parts:
//   1. how the gradient d loss / d h_t of a tanh RNN shrinks (or grows) with the distance T-1-t
//      from the loss, at several scales of the recurrent weights, read with Tensor::retain_grad,
//      and the same for an LSTM cell (h_t and its cell state c_t) and a GRU cell;
//   2. exploding gradients with large recurrent weights, and what nn::clip_grad_norm does to them;
//   3. training an RNN, an LSTM and a GRU on a length where the tanh RNN cannot learn the task.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

// The adding problem: inputs [T, B, 2] (value, marker), targets [B, 1] (sum of the marked values).
struct Batch {
    Tensor inputs;   // [T, B, 2]
    Tensor targets;  // [B, 1]
};
Batch adding_problem(std::size_t T, std::size_t B, Generator& gen) {
    xt::xarray<float> x = xt::zeros<float>({T, B, std::size_t{2}});
    xt::xarray<float> y = xt::zeros<float>({B, std::size_t{1}});
    float* px = x.data();
    for (std::size_t b = 0; b < B; ++b) {
        for (std::size_t t = 0; t < T; ++t) px[(t * B + b) * 2] = static_cast<float>(gen.uniform());
        const std::size_t first = gen.randint(T / 2), second = T / 2 + gen.randint(T - T / 2);
        px[(first * B + b) * 2 + 1] = 1.0f;
        px[(second * B + b) * 2 + 1] = 1.0f;
        y.data()[b] = px[(first * B + b) * 2] + px[(second * B + b) * 2];
    }
    return {Tensor(std::move(x)), Tensor(std::move(y))};
}

// The L2 norm of all gradients of `params` together (what clip_grad_norm measures).
double grad_norm(const std::vector<Tensor>& params) {
    double s = 0;
    for (const Tensor& p : params) {
        if (!p.has_grad()) continue;
        const auto& g = p.grad_value<float>();
        for (std::size_t i = 0; i < g.size(); ++i) s += static_cast<double>(g.data()[i]) * g.data()[i];
    }
    return std::sqrt(s);
}

double norm_of(const xt::xarray<float>& a) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a.data()[i]) * a.data()[i];
    return std::sqrt(s);
}

// Multiplies a parameter's values in place (used to scale the recurrent weights).
void scale_values(Tensor& p, float factor) {
    auto& v = p.mutable_value<float>();
    for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] *= factor;
}

// Part 1. A tanh RNNCell run step by step, keeping every state's gradient: returns ||dL/dh_t||
// for t = 0..T-1, the loss being the MSE of a Linear read-out of the last state.
std::vector<double> state_gradient_norms(const nn::RNNCell& cell, const nn::Linear& head, const Batch& data) {
    const std::size_t T = data.inputs.size(0);
    std::vector<Tensor> hs;  // h_0 .. h_{T-1}, each [B, H]
    Tape tape;
    Tensor h;  // undefined: zeros
    for (std::size_t t = 0; t < T; ++t) {
        h = cell(select(data.inputs, 0, static_cast<long>(t)), h);
        h.retain_grad();  // keep d loss / d h_t after backward, though h_t is not a leaf
        hs.push_back(h);
    }
    tape.backward(mse_loss(head(h), data.targets));
    std::vector<double> norms;
    for (const Tensor& ht : hs) norms.push_back(norm_of(ht.grad_value<float>()));
    return norms;
}

// Part 1 for the gated cells, the same measurement: an LSTMCell (returning ||dL/dh_t|| and
// ||dL/dc_t||, its cell state) and a GRUCell, run step by step from zero states.
std::pair<std::vector<double>, std::vector<double>> lstm_state_gradient_norms(const nn::LSTMCell& cell,
                                                                              const nn::Linear& head, const Batch& data) {
    const std::size_t T = data.inputs.size(0);
    std::vector<Tensor> hs, cs;
    Tape tape;
    nn::LSTMState s;  // undefined h and c: zeros
    for (std::size_t t = 0; t < T; ++t) {
        s = cell(select(data.inputs, 0, static_cast<long>(t)), s.h, s.c);
        s.h.retain_grad();
        s.c.retain_grad();
        hs.push_back(s.h);
        cs.push_back(s.c);
    }
    tape.backward(mse_loss(head(s.h), data.targets));
    std::vector<double> h_norms, c_norms;
    for (std::size_t t = 0; t < T; ++t) {
        h_norms.push_back(norm_of(hs[t].grad_value<float>()));
        c_norms.push_back(norm_of(cs[t].grad_value<float>()));
    }
    return {h_norms, c_norms};
}
std::vector<double> gru_state_gradient_norms(const nn::GRUCell& cell, const nn::Linear& head, const Batch& data) {
    const std::size_t T = data.inputs.size(0);
    std::vector<Tensor> hs;
    Tape tape;
    Tensor h;
    for (std::size_t t = 0; t < T; ++t) {
        h = cell(select(data.inputs, 0, static_cast<long>(t)), h);
        h.retain_grad();
        hs.push_back(h);
    }
    tape.backward(mse_loss(head(h), data.targets));
    std::vector<double> norms;
    for (const Tensor& ht : hs) norms.push_back(norm_of(ht.grad_value<float>()));
    return norms;
}

// A recurrent layer of the chosen kind with a Linear on its last step: [T, B, 2] -> [B, 1].
struct AddingModel : nn::Module {
    std::unique_ptr<nn::RNN> rnn;
    std::unique_ptr<nn::LSTM> lstm;
    std::unique_ptr<nn::GRU> gru;
    nn::Linear head;
    AddingModel(const std::string& cell, std::size_t hidden) : head(hidden, 1) {
        if (cell == "rnn") register_module("rnn", *(rnn = std::make_unique<nn::RNN>(nn::RNNOptions{2, hidden})));
        if (cell == "lstm") register_module("lstm", *(lstm = std::make_unique<nn::LSTM>(nn::LSTMOptions{2, hidden})));
        if (cell == "gru") register_module("gru", *(gru = std::make_unique<nn::GRU>(nn::GRUOptions{2, hidden})));
        register_module("head", head);
    }
    std::string type_name() const override { return "AddingModel"; }
    Tensor operator()(const Tensor& x) const {
        const Tensor out = rnn ? rnn->forward(x).output : lstm ? lstm->forward(x).output : gru->forward(x).output;
        return head(nn::last_step(out));
    }
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Vanishing and exploding gradients of recurrent networks on the adding problem: gradient norms "
                 "against time, gradient clipping, and RNN vs LSTM vs GRU."};
    unsigned seed = 1;
    std::size_t T = 100, batch = 64, hidden = 32, clip_steps = 300, train_steps = 2000, train_T = 50;
    std::vector<double> scales = {0.5, 1.0, 2.0, 4.0};
    double big_scale = 4.0, max_norm = 1.0, clip_lr = 0.05, lr = 3e-3;
    std::string cells = "all", csv_dir;
    bool short_run = false, check = false;
    app.add_option("--seed", seed, "random seed (data and initialisation)")->capture_default_str();
    app.add_option("--T", T, "sequence length of parts 1 and 2")->check(CLI::Range(2, 100000))->capture_default_str();
    app.add_option("--batch", batch, "sequences per batch")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--hidden", hidden, "hidden units")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--scales", scales, "part 1: factors applied to the initial recurrent weights")->capture_default_str();
    app.add_option("--big-scale", big_scale, "part 2: factor applied to the recurrent weights")->capture_default_str();
    app.add_option("--max-norm", max_norm, "part 2: clip_grad_norm threshold")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--clip-steps", clip_steps, "part 2: SGD steps per run")->capture_default_str();
    app.add_option("--clip-lr", clip_lr, "part 2: SGD learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--cell", cells, "part 3: the layers to train")
        ->check(CLI::IsMember({"rnn", "lstm", "gru", "all"}))
        ->capture_default_str();
    app.add_option("--train-T", train_T, "part 3: sequence length")->check(CLI::Range(2, 100000))->capture_default_str();
    app.add_option("--train-steps", train_steps, "part 3: Adam steps per layer (0 skips part 3)")->capture_default_str();
    app.add_option("--lr", lr, "part 3: Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--csv-dir", csv_dir, "write grad_norms.csv, cell_grad_norms.csv, clipping.csv and training.csv here");
    app.add_flag("--short", short_run, "a quick run (for CI): T = 50, 20 clipping steps, no part 3");
    app.add_flag("--check", check, "exit with status 1 unless the gradient decays and clipping reaches its threshold");
    CLI11_PARSE(app, argc, argv);
    if (short_run) {
        if (app.count("--T") == 0) T = 50;
        if (app.count("--clip-steps") == 0) clip_steps = 20;
        if (app.count("--train-steps") == 0) train_steps = 0;
    }
    if (!csv_dir.empty()) std::filesystem::create_directories(csv_dir);
    auto csv_path = [&](const char* name) { return (std::filesystem::path(csv_dir) / name).string(); };
    bool ok = true;
    Generator gen(seed);
    manual_seed(seed);

    // ---- part 1: ||dL/dh_t|| against t ----
    fmt::print("1. ||dL/dh_t|| of a tanh RNN at initialisation, T = {}, batch {}, hidden {} (seed {})\n", T, batch,
               hidden, seed);
    fmt::print("   weight_hh = scale x PyTorch's U(-1/sqrt(H), 1/sqrt(H)); the loss reads h_{}\n\n", T - 1);
    const Batch probe = adding_problem(T, batch, gen);
    std::vector<std::vector<double>> curves;
    for (double s : scales) {
        manual_seed(seed);  // the same initial weights for every scale, only multiplied
        nn::RNNCell cell(2, hidden);
        nn::Linear head(hidden, 1);
        scale_values(cell.weight_hh, static_cast<float>(s));
        curves.push_back(state_gradient_norms(cell, head, probe));
    }
    fmt::print("{:>6}", "t");
    for (double s : scales) fmt::print("  {:>10}", fmt::format("scale {}", s));
    fmt::print("\n");
    const std::size_t every = std::max<std::size_t>(1, T / 10);
    for (std::size_t t = 0; t < T; ++t) {
        if (t % every != 0 && t != T - 1) continue;
        fmt::print("{:>6}", t);
        for (const auto& c : curves) fmt::print("  {:>10.3e}", c[t]);
        fmt::print("\n");
    }
    if (!csv_dir.empty()) {
        std::ofstream f(csv_path("grad_norms.csv"));
        f << "t";
        for (double s : scales) f << fmt::format(",scale_{}", s);
        f << "\n";
        for (std::size_t t = 0; t < T; ++t) {
            f << t;
            for (const auto& c : curves) f << fmt::format(",{:.6e}", c[t]);
            f << "\n";
        }
    }
    // The property CI checks: at the default scale (small weights) the gradient that reaches h_0 is
    // many orders of magnitude smaller than the one at h_{T-1}.
    {
        const auto it = std::find(scales.begin(), scales.end(), 1.0);
        if (it != scales.end()) {
            const auto& c = curves[static_cast<std::size_t>(it - scales.begin())];
            const double ratio = c.front() / c.back();
            const bool decays = ratio < 1e-3;
            fmt::print("\n   scale 1: ||dL/dh_0|| / ||dL/dh_{}|| = {:.2e}{}\n", T - 1, ratio,
                       check ? (decays ? "  (check: below 1e-3, passed)" : "  (check: below 1e-3, FAILED)") : "");
            ok = ok && decays;
        }
    }

    // The same measurement for the gated cells at their own (PyTorch) initialisation, next to the
    // tanh RNN at scale 1: how far back does d loss / d h_t reach?
    {
        std::vector<std::vector<double>> cell_curves;
        manual_seed(seed);
        {
            nn::RNNCell cell(2, hidden);
            nn::Linear head(hidden, 1);
            cell_curves.push_back(state_gradient_norms(cell, head, probe));
        }
        manual_seed(seed);
        {
            nn::LSTMCell cell(2, hidden);
            nn::Linear head(hidden, 1);
            auto [h_norms, c_norms] = lstm_state_gradient_norms(cell, head, probe);
            cell_curves.push_back(h_norms);
            cell_curves.push_back(c_norms);
        }
        manual_seed(seed);
        {
            nn::GRUCell cell(2, hidden);
            nn::Linear head(hidden, 1);
            cell_curves.push_back(gru_state_gradient_norms(cell, head, probe));
        }
        const char* names[] = {"rnn h_t", "lstm h_t", "lstm c_t", "gru h_t"};
        fmt::print("\n   The same at initialisation for each cell (no scaling), ||dL/dh_t|| (and ||dL/dc_t|| for the LSTM):\n\n");
        fmt::print("{:>6}", "t");
        for (const char* n : names) fmt::print("  {:>10}", n);
        fmt::print("\n");
        for (std::size_t t = 0; t < T; ++t) {
            if (t % every != 0 && t != T - 1) continue;
            fmt::print("{:>6}", t);
            for (const auto& c : cell_curves) fmt::print("  {:>10.3e}", c[t]);
            fmt::print("\n");
        }
        fmt::print("\n   ||dL/dh_0|| / ||dL/dh_{}||:", T - 1);
        for (std::size_t k = 0; k < cell_curves.size(); ++k)
            if (k != 2) fmt::print("  {} {:.2e}", names[k], cell_curves[k].front() / cell_curves[k].back());
        fmt::print("\n");
        if (!csv_dir.empty()) {
            std::ofstream f(csv_path("cell_grad_norms.csv"));
            f << "t,rnn_h,lstm_h,lstm_c,gru_h\n";
            for (std::size_t t = 0; t < T; ++t) {
                f << t;
                for (const auto& c : cell_curves) f << fmt::format(",{:.6e}", c[t]);
                f << "\n";
            }
        }
    }

    // ---- part 2: exploding gradients and clipping ----
    fmt::print("\n2. Training the tanh RNN with weight_hh x {} by SGD (lr {}), {} steps, without and with "
               "clip_grad_norm(max_norm = {})\n\n",
               big_scale, clip_lr, clip_steps, max_norm);
    struct ClipRun {
        std::vector<double> norms, losses;
    };
    ClipRun runs[2];
    double worst_clip_error = 0;  // |norm after clipping - max_norm| / max_norm, over clipped steps
    std::size_t clipped_steps = 0;
    for (int clip = 0; clip < 2; ++clip) {
        manual_seed(seed);
        AddingModel model("rnn", hidden);
        Tensor w_hh = model.parameter("rnn.weight_hh_l0");
        scale_values(w_hh, static_cast<float>(big_scale));
        const std::vector<Tensor> params = model.parameters();
        nn::SGD opt(params, {.lr = clip_lr});
        Generator data_gen(seed + 1);  // both runs see the same batches
        for (std::size_t step = 1; step <= clip_steps; ++step) {
            const Batch data = adding_problem(T, batch, data_gen);
            Tape tape;
            const Tensor loss = mse_loss(model(data.inputs), data.targets);
            tape.backward(loss);
            // The norm before clipping; without clipping, an infinite threshold only measures it.
            const double norm = nn::clip_grad_norm(params, clip ? max_norm : INFINITY, false);
            if (clip && norm > max_norm) {
                worst_clip_error = std::max(worst_clip_error, std::abs(grad_norm(params) - max_norm) / max_norm);
                ++clipped_steps;
            }
            runs[clip].norms.push_back(norm);
            runs[clip].losses.push_back(loss.item());
            opt.step();
            opt.zero_grad();
        }
    }
    auto summary = [&](const char* name, const ClipRun& r) {
        const double max_g = *std::max_element(r.norms.begin(), r.norms.end());
        double last = 0;
        const std::size_t k = std::min<std::size_t>(20, r.losses.size());
        for (std::size_t i = r.losses.size() - k; i < r.losses.size(); ++i) last += r.losses[i] / static_cast<double>(k);
        const auto bad = std::find_if(r.losses.begin(), r.losses.end(), [](double l) { return !std::isfinite(l); });
        if (bad != r.losses.end())
            fmt::print("   {:<14} largest gradient norm {:>10.3e}, first loss {:.4f}, diverged: loss not finite from step {}\n",
                       name, max_g, r.losses.front(), bad - r.losses.begin() + 1);
        else
            fmt::print("   {:<14} largest gradient norm {:>10.3e}, first loss {:.4f}, mean loss of the last {} steps {:.4f}\n",
                       name, max_g, r.losses.front(), k, last);
    };
    summary("without clip:", runs[0]);
    summary("with clip:", runs[1]);
    {
        const bool clip_ok = clipped_steps > 0 && worst_clip_error < 1e-4;
        fmt::print("   clipped on {} of {} steps; largest |norm after clipping - {}| / {} = {:.1e}{}\n", clipped_steps,
                   clip_steps, max_norm, max_norm, worst_clip_error,
                   check ? (clip_ok ? "  (check: clipped and below 1e-4, passed)" : "  (check: FAILED)") : "");
        ok = ok && clip_ok;
    }
    if (!csv_dir.empty()) {
        std::ofstream f(csv_path("clipping.csv"));
        f << "step,norm_noclip,loss_noclip,norm_clip,loss_clip\n";
        for (std::size_t i = 0; i < clip_steps; ++i)
            f << fmt::format("{},{:.6e},{:.6e},{:.6e},{:.6e}\n", i + 1, runs[0].norms[i], runs[0].losses[i],
                             runs[1].norms[i], runs[1].losses[i]);
    }

    // ---- part 3: which cell learns the adding problem at length train_T ----
    if (train_steps > 0) {
        const std::vector<std::string> which =
            cells == "all" ? std::vector<std::string>{"rnn", "lstm", "gru"} : std::vector<std::string>{cells};
        fmt::print("\n3. The adding problem at T = {}: Adam lr {}, batch {}, hidden {}, {} steps, clip_grad_norm 1.0\n",
                   train_T, lr, batch, hidden, train_steps);
        fmt::print("   predicting 1.0 gives MSE ~0.167; held-out MSE on 1000 fresh sequences:\n\n");
        Generator eval_gen(seed + 2);
        const Batch eval = adding_problem(train_T, 1000, eval_gen);
        const std::size_t report = std::max<std::size_t>(1, train_steps / 10);
        std::vector<std::vector<double>> evals(which.size());
        fmt::print("{:>6}", "step");
        for (const auto& c : which) fmt::print("  {:>8}", c);
        fmt::print("\n");
        std::vector<double> secs(which.size());
        for (std::size_t k = 0; k < which.size(); ++k) {
            manual_seed(seed);
            AddingModel model(which[k], hidden);
            nn::Adam opt(model.parameters(), {.lr = lr});
            Generator data_gen(seed + 3);
            const auto start = std::chrono::steady_clock::now();
            for (std::size_t step = 1; step <= train_steps; ++step) {
                const Batch data = adding_problem(train_T, batch, data_gen);
                Tape tape;
                tape.backward(mse_loss(model(data.inputs), data.targets));
                nn::clip_grad_norm(model.parameters(), 1.0);
                opt.step();
                opt.zero_grad();
                if (step % report == 0) {
                    NoGrad guard;
                    evals[k].push_back(mse_loss(model(eval.inputs), eval.targets).item());
                }
            }
            secs[k] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        for (std::size_t r = 0; r < evals[0].size(); ++r) {
            fmt::print("{:>6}", (r + 1) * report);
            for (const auto& e : evals) fmt::print("  {:>8.4f}", e[r]);
            fmt::print("\n");
        }
        // The times go to stderr, so that stdout stays the same from run to run.
        fmt::print(stderr, "{:>6}", "time");
        for (double s : secs) fmt::print(stderr, "  {:>7.0f}s", s);
        fmt::print(stderr, "\n");
        if (!csv_dir.empty()) {
            std::ofstream f(csv_path("training.csv"));
            f << "step";
            for (const auto& c : which) f << "," << c;
            f << "\n";
            for (std::size_t r = 0; r < evals[0].size(); ++r) {
                f << (r + 1) * report;
                for (const auto& e : evals) f << fmt::format(",{:.6f}", e[r]);
                f << "\n";
            }
        }
    }
    if (!csv_dir.empty()) fmt::print("\nwrote the CSV files to {}\n", csv_dir);
    if (check) {
        fmt::print("\ncheck: {}\n", ok ? "passed" : "FAILED");
        return ok ? 0 : 1;
    }
    return 0;
}
