// The installed-package check: includes tapegrad the way a user does, builds a small expression,
// runs backward and compares the gradient with one worked out by hand. Exits non-zero when wrong,
// so the install_consumer test fails.
#include <cmath>
#include <cstdio>

#include <tapegrad/nn/layers/rnn.hpp>  // a part's header by its own path
#include <tapegrad/nn/rnn.hpp>         // and by the old flat path (a forwarding header)
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

int main() {
    // loss = sum((W v)^2), so d loss / dW = 2 (W v) v^T.
    // W v = [[1*1 + 2*(-1)], [3*1 + 4*(-1)]] = [[-1], [-1]]; gradient [[-2, 2], [-2, 2]].
    Tensor W = Tensor::of({{1.0, 2.0}, {3.0, 4.0}}, f64, true);  // [2, 2]
    Tensor v = reshape(Tensor::of({1.0, -1.0}, f64), {2, 1});    // [2, 1]
    Tape tape;
    Tensor Wv = matmul(W, v);  // [2, 1], through BLAS: the link line must carry OpenBLAS
    Tensor loss = sum(Wv * Wv);
    tape.backward(loss);

    const double expected[4] = {-2.0, 2.0, -2.0, 2.0};
    int wrong = 0;
    if (loss.item() != 2.0) {
        std::printf("consumer: loss is %g, expected 2\n", loss.item());
        ++wrong;
    }
    for (std::size_t i = 0; i < 4; ++i)
        if (std::abs(W.grad().at(i) - expected[i]) > 1e-12) {
            std::printf("consumer: dloss/dW[%zu] is %g, expected %g\n", i, W.grad().at(i), expected[i]);
            ++wrong;
        }
    if (wrong == 0) std::printf("consumer: gradient of the installed tapegrad matches the hand value\n");
    return wrong == 0 ? 0 : 1;
}
