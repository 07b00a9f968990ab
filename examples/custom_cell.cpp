// A recurrent cell of your own, composed from tape ops: a minimal gated unit
//   f  = sigmoid(x W_f + h U_f + b_f)
//   h' = f * h + (1 - f) * tanh(x W + h U + b)
// written as an nn::Module with registered parameters, gradient-checked in float64 with
// nn::gradcheck_module, compared with two deliberately broken versions (a detach() in the wrong
// place, and a custom_op whose backward is wrong) that gradcheck catches, then trained briefly on a
// task that needs memory: output the first input of a sequence at its last step.
//
// Exits with status 1 if the correct cell fails gradcheck, a broken one passes, or training does
// not get well below the trivial loss. docs/custom_cell.md quotes it and shows its output.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

// sigmoid as a custom op whose backward forgets the factor (1 - s): d sigmoid / dx = s (1 - s).
Tensor sigmoid_wrong_backward(const Tensor& x) {
    Tensor value;
    {
        NoGrad guard;  // the value is computed here; custom_op records it with our backward
        value = sigmoid(x);
    }
    return custom_op("sigmoid_wrong_backward", {x}, value,
                     [](const Tensor& grad_out, const std::vector<Tensor>&, const Tensor& s) {
                         return std::vector<Tensor>{grad_out * s};  // should be grad_out * s * (1 - s)
                     });
}

enum class Variant { correct, detached_gate, wrong_backward };

//! [custom_module]
class MinimalGatedCell : public nn::Module {
public:
    MinimalGatedCell(std::size_t input_size, std::size_t hidden_size, Variant variant = Variant::correct)
        : hidden_size(hidden_size), variant(variant) {
        // PyTorch's recurrent initialisation, U(-1/sqrt(H), 1/sqrt(H)), for every parameter.
        const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
        W_f = register_parameter("W_f", uniform({input_size, hidden_size}, -k, k));
        U_f = register_parameter("U_f", uniform({hidden_size, hidden_size}, -k, k));
        b_f = register_parameter("b_f", uniform({hidden_size}, -k, k));
        W = register_parameter("W", uniform({input_size, hidden_size}, -k, k));
        U = register_parameter("U", uniform({hidden_size, hidden_size}, -k, k));
        b = register_parameter("b", uniform({hidden_size}, -k, k));
    }
    std::string type_name() const override { return "MinimalGatedCell"; }
    std::string extra_repr() const override { return fmt::format("{}, {}", W.size(0), hidden_size); }

    // x [B, input], h [B, hidden] -> h' [B, hidden]
    Tensor forward(const Tensor& x, const Tensor& h) const {
        const Tensor gate_in = matmul(x, W_f) + matmul(h, U_f) + b_f;
        Tensor f;
        if (variant == Variant::correct) f = sigmoid(gate_in);
        if (variant == Variant::detached_gate) f = sigmoid(gate_in).detach();  // wrong: no gradient reaches W_f, U_f, b_f
        if (variant == Variant::wrong_backward) f = sigmoid_wrong_backward(gate_in);
        const Tensor candidate = tanh(matmul(x, W) + matmul(h, U) + b);
        return f * h + (1.0 - f) * candidate;
    }
    Tensor operator()(const Tensor& x, const Tensor& h) const { return forward(x, h); }

    Tensor W_f, U_f, b_f, W, U, b;
    const std::size_t hidden_size;
    const Variant variant;
};
//! [custom_module]

// The cell unrolled over x [T, B, input] from h0, and a fixed weighted sum of every state, so that
// every element of every state (and so every parameter, through every step) reaches the scalar.
Tensor unrolled_score(const MinimalGatedCell& cell, const Tensor& x, const Tensor& h0, const Tensor& weights) {
    Tensor h = h0, total;
    for (long t = 0; t < static_cast<long>(x.size(0)); ++t) {
        h = cell(select(x, 0, t), h);
        const Tensor s = sum(h * select(weights, 0, t));
        total = total.defined() ? total + s : s;
    }
    return total;
}

// The memory task: inputs [T, B, 1] of +-1, target [B, 1] the first input, read from the last state.
struct Task {
    Tensor inputs, targets;
};
Task first_value_task(std::size_t T, std::size_t B, Generator& gen) {
    xt::xarray<float> x = xt::zeros<float>({T, B, std::size_t{1}});
    xt::xarray<float> y = xt::zeros<float>({B, std::size_t{1}});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = gen.uniform() < 0.5 ? -1.0f : 1.0f;
    for (std::size_t b = 0; b < B; ++b) y.data()[b] = x.data()[b];  // step 0, row b
    return {Tensor(std::move(x)), Tensor(std::move(y))};
}

}  // namespace

int main() {
    bool ok = true;

    // ---- 1. the cell, as a module ----
    manual_seed(1);
    MinimalGatedCell cell(3, 4);
    fmt::print("{}\n", cell.summary());

    // ---- 2. gradcheck in float64, through a 3-step unroll, w.r.t. every parameter, x and h0 ----
    cell.to(f64);
    Generator gen(7);
    const Tensor x = randn({3, 2, 3}, gen, f64), h0 = randn({2, 4}, gen, f64), weights = randn({3, 2, 4}, gen, f64);
    GradcheckResult r = nn::gradcheck_module(
        cell, [&] { return unrolled_score(cell, x, h0, weights); }, {x, h0}, {.names = {"x", "h0"}});
    fmt::print("correct cell:       {}\n", r.message);
    ok = ok && r.ok;

    // ---- 3. two broken cells: the same weights, one mistake each ----
    for (Variant v : {Variant::detached_gate, Variant::wrong_backward}) {
        manual_seed(1);  // the same initial weights as the correct cell
        MinimalGatedCell broken(3, 4, v);
        broken.to(f64);
        GradcheckResult rb = nn::gradcheck_module(
            broken, [&] { return unrolled_score(broken, x, h0, weights); }, {x, h0}, {.names = {"x", "h0"}});
        fmt::print("{:<20}{}\n", v == Variant::detached_gate ? "detached gate:" : "wrong backward:", rb.message);
        ok = ok && !rb.ok;  // gradcheck must catch the mistake
    }

    // ---- 4. training the correct cell (float32) to output the first of T = 10 inputs ----
    manual_seed(2);
    const std::size_t T = 10, B = 32, H = 16, steps = 600;
    MinimalGatedCell model(1, H);
    nn::Linear head(H, 1);
    std::vector<Tensor> params = model.parameters();
    for (const Tensor& p : head.parameters()) params.push_back(p);
    nn::Adam opt(params, {.lr = 1e-2});
    Generator data_gen(3), eval_gen(4);
    const Task eval = first_value_task(T, 500, eval_gen);
    auto loss_of = [&](const Task& task) {
        Tensor h = zeros({task.inputs.size(1), H});
        for (long t = 0; t < static_cast<long>(T); ++t) h = model(select(task.inputs, 0, t), h);
        return mse_loss(head(h), task.targets);
    };
    fmt::print("\ntraining: output the first of T = {} inputs of +-1 (predicting 0 gives MSE 1), Adam, batch {}, hidden {}\n",
               T, B, H);
    double held_out = 0;
    for (std::size_t step = 1; step <= steps; ++step) {
        const Task task = first_value_task(T, B, data_gen);
        Tape tape;
        tape.backward(loss_of(task));
        opt.step();
        opt.zero_grad();
        if (step % 100 == 0) {
            NoGrad guard;
            held_out = loss_of(eval).item();
            fmt::print("  step {:>4}  held-out MSE {:.4f}\n", step, held_out);
        }
    }
    const bool learned = held_out < 0.05;
    ok = ok && learned;
    fmt::print("\n{}\n", ok ? "all checks passed" : "a check FAILED");
    return ok ? 0 : 1;
}
