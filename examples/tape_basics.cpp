// The tape, one idea per function: what a Tensor is, what the tape records, backward, accumulation,
// NoGrad, detach, retain_graph and gradcheck. docs/autograd.md quotes this file and its output, and
// the example_tape_basics test runs it and compares what it prints with the output the docs show.
#include <cstdio>
#include <exception>
#include <vector>

#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

void tensors() {
    Tensor x = Tensor::of({1.0, 2.0, 3.0}, f64, /*requires_grad=*/true);  // a leaf we want d/dx of
    Tensor c = Tensor::of({10.0, 20.0, 30.0}, f64);                      // a constant
    fmt::print("{}\n{}\n", x, c);
}

//! [record_and_backward]
void record_and_backward() {
    Tensor x = Tensor::of({1.0, 2.0, 3.0}, f64, true);
    Tensor c = Tensor::of({10.0, 20.0, 30.0}, f64);
    Tape tape;                 // from here on, this thread's active tape
    Tensor k = c * 2.0;        // not recorded: no input requires grad
    Tensor y = x * x;          // entry 0: mul(x, x)
    Tensor loss = sum(y * c);  // entry 1: mul(y, c), entry 2: sum
    fmt::print("entries on the tape: {}; k requires grad: {}\n", tape.size(), k.requires_grad());
    tape.backward(loss);       // d loss / dx = 2 x c
    fmt::print("dloss/dx = {}\n", x.grad());
    fmt::print("entries after backward: {}, consumed: {}\n", tape.size(), tape.consumed());
}
//! [record_and_backward]

void accumulation() {
    Tensor x = Tensor::scalar(3.0, f64, true);
    {
        Tape tape;
        tape.backward(x * x + x);  // x is used twice: 2x + 1 = 7
    }
    fmt::print("after one backward:  {}\n", x.grad().item());
    {
        Tape tape;
        tape.backward(x * x + x);  // gradients add up across backward calls...
    }
    fmt::print("after two backwards: {}\n", x.grad().item());
    x.zero_grad();                 // ...until zeroed, as in PyTorch
    fmt::print("after zero_grad, has_grad: {}\n", x.has_grad());
}

void no_grad() {
    Tensor w = Tensor::of({0.5, -0.5}, f64, true);
    Tape tape;
    {
        NoGrad guard;              // inference: nothing recorded, nothing saved
        Tensor y = tanh(w * 2.0);
        fmt::print("under NoGrad: requires_grad {}, entries {}\n", y.requires_grad(), tape.size());
    }
    Tensor y = tanh(w * 2.0);
    fmt::print("recording again: requires_grad {}, entries {}\n", y.requires_grad(), tape.size());
}

void truncated_bptt() {
    Tensor w = Tensor::scalar(0.5, f64, true);
    Tensor h = Tensor::scalar(0.0, f64);
    for (int chunk = 0; chunk < 3; ++chunk) {
        Tape tape;                       // one tape per chunk of the sequence
        for (int t = 0; t < 4; ++t) h = tanh(w * h + 1.0);
        tape.backward(h);                // gradient through this chunk only
        h = h.detach();                  // carry the value forward, not the history
        fmt::print("chunk {}: h = {:.6f}, w.grad = {:.6f}\n", chunk, h.item(), w.grad().item());
    }
}

void retain_graph() {
    Tensor x = Tensor::scalar(2.0, f64, true);
    Tape tape;
    Tensor y = x * x * x;                      // dy/dx = 3 x^2 = 12
    tape.backward(y, {.retain_graph = true});  // keep the record...
    tape.backward(y);                          // ...so a second backward may run: 12 + 12
    fmt::print("dy/dx after two backwards: {}\n", x.grad().item());
    try {
        tape.backward(y);  // the record is gone now
    } catch (const UsageError& e) {
        fmt::print("third backward refused: {}\n", e.what());
    }
}

// x^2 with a deliberately wrong backward (3x instead of 2x), to see gradcheck catch it.
Tensor bad_square(const Tensor& x) {
    Tensor value;
    {
        NoGrad guard;  // the value is computed here; custom_op records it with our backward
        value = x * x;
    }
    return custom_op("bad_square", {x}, value,
                     [](const Tensor& grad_out, const std::vector<Tensor>& in, const Tensor&) {
                         return std::vector<Tensor>{grad_out * in[0] * 3.0};
                     });
}

//! [checking_gradients]
void checking_gradients() {
    Tensor W = Tensor::of({{0.1, -0.2}, {0.3, 0.4}}, f64);
    Tensor v = Tensor::of({{1.0, 0.5}, {-1.0, 2.0}}, f64);
    auto f = [](const std::vector<Tensor>& in) { return sum(tanh(matmul(in[0], in[1]))); };
    GradcheckResult r = gradcheck(f, {W, v});
    fmt::print("gradcheck of tanh(W v): ok {}, {} Jacobian entries compared\n", r.ok, r.compared);

    Tensor x = Tensor::of({1.0, 2.0}, f64).set_name("x");
    GradcheckResult bad = gradcheck([](const std::vector<Tensor>& in) { return bad_square(in[0]); }, {x});
    fmt::print("gradcheck of bad_square: ok {}, input '{}', element {}, analytic {}, numeric {:.4f}\n",
               bad.ok, bad.input, shape_str(bad.element), bad.analytic, bad.numeric);
}
//! [checking_gradients]

}  // namespace

int main() {
    try {
        fmt::print("== tensors\n");
        tensors();
        fmt::print("== record_and_backward\n");
        record_and_backward();
        fmt::print("== accumulation\n");
        accumulation();
        fmt::print("== no_grad\n");
        no_grad();
        fmt::print("== truncated_bptt\n");
        truncated_bptt();
        fmt::print("== retain_graph\n");
        retain_graph();
        fmt::print("== checking_gradients\n");
        checking_gradients();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
