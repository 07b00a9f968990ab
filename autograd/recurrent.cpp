// tapegrad: rnn_sequence, the whole-sequence Elman recurrence as one tape entry (recurrent.hpp).
// Why one op: composed per step, an RNN records four entries and four [B, H] arrays per step (the
// selected input row, h W_hh^T, the sum, the activation), and their backward adds a full-size
// gradient per step. Fused, the only array kept is the output, and backward needs one [T, B, H]
// buffer, which is the incoming gradient itself, rewritten in place.
#include "recurrent.hpp"

#include <algorithm>

#include "detail/kernels.hpp"
#include "detail/op.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::gemm;

Tensor rnn_sequence(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                    const Tensor& b_hh, RNNSequenceOptions options) {
    const char* op = "rnn_sequence";
    detail::check_defined(op, x, "x");
    detail::check_defined(op, w_ih, "w_ih");
    detail::check_defined(op, w_hh, "w_hh");
    // Every message lists all the inputs' shapes; formatted only when there is an error to report.
    auto shapes = [&] {
        auto str = [](const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("none"); };
        return fmt::format("x {}, h0 {}, w_ih {}, w_hh {}, b_ih {}, b_hh {}", str(x), str(h0), str(w_ih), str(w_hh),
                           str(b_ih), str(b_hh));
    };
    for (const Tensor* t : {&h0, &w_ih, &w_hh, &b_ih, &b_hh})
        if (t->defined() && t->dtype() != x.dtype())
            throw DTypeError(fmt::format("{}: {}: every input must be {} like x; convert with .to()", op, shapes(),
                                         dtype_name(x.dtype())));
    if (x.dim() != 3 || w_ih.dim() != 2 || w_hh.dim() != 2)
        throw ShapeError(fmt::format("{}: {}: needs x [T, B, F], w_ih [H, F] and w_hh [H, H]", op, shapes()));
    const std::size_t T = x.size(0), B = x.size(1), F = x.size(2), H = w_hh.size(0);
    if (w_hh.size(1) != H || w_ih.size(0) != H || w_ih.size(1) != F)
        throw ShapeError(fmt::format("{}: {}: needs w_ih [H, F] = [{}, {}] and w_hh [H, H] = [{}, {}]", op,
                                     shapes(), H, F, H, H));
    if (b_ih.defined() != b_hh.defined())
        throw ShapeError(fmt::format("{}: {}: give both biases or neither", op, shapes()));
    if (b_ih.defined() && (b_ih.shape() != Shape{H} || b_hh.shape() != Shape{H}))
        throw ShapeError(fmt::format("{}: {}: the biases must be [{}]", op, shapes(), H));
    if (h0.defined() && h0.shape() != Shape{B, H})
        throw ShapeError(fmt::format("{}: {}: h0 must be [B, H] = [{}, {}]", op, shapes(), B, H));
    if (T == 0 || B == 0)
        throw ShapeError(fmt::format("{}: {}: the sequence and the batch must not be empty", op, shapes()));

    const bool bias = b_ih.defined(), relu = options.relu, reverse = options.reverse;
    std::vector<Tensor> inputs{x, w_ih, w_hh};  // then b_ih, b_hh, then h0, when given
    if (bias) inputs.insert(inputs.end(), {b_ih, b_hh});
    const std::size_t i_h0 = inputs.size();
    if (h0.defined()) inputs.push_back(h0);
    const bool has_h0 = h0.defined();
    const std::size_t BH = B * H;
    // The k-th step processed is time step order(k).
    auto order = [T, reverse](std::size_t k) { return reverse ? T - 1 - k : k; };

    return dispatch(x.dtype(), [&]<class T_>(T_) {
        using V = T_;
        xt::xarray<V> y = xt::xarray<V>::from_shape({T, B, H});
        V* Y = y.data();
        V beta(0);
        if (bias) {  // every row starts as b_ih + b_hh; the input GEMM adds x W_ih^T onto it
            const V* bi = b_ih.value<V>().data();
            const V* bh = b_hh.value<V>().data();
            for (std::size_t j = 0; j < H; ++j) Y[j] = bi[j] + bh[j];
            for (std::size_t r = 1; r < T * B; ++r) std::copy_n(Y, H, Y + r * H);
            beta = V(1);
        }
        gemm<V>(x.value<V>().data(), w_ih.value<V>().data(), Y, T * B, F, H, false, true, beta);
        const V* Whh = w_hh.value<V>().data();
        for (std::size_t k = 0; k < T; ++k) {
            V* yt = Y + order(k) * BH;
            const V* prev = k > 0 ? Y + order(k - 1) * BH : has_h0 ? h0.value<V>().data() : nullptr;
            if (prev) gemm<V>(prev, Whh, yt, B, H, H, false, true, V(1));  // += h_{t-1} W_hh^T
            if (relu)
                for (std::size_t i = 0; i < BH; ++i) yt[i] = std::max(yt[i], V(0));
            else
                detail::tanh_inplace(yt, BH);
        }
        return detail::result(op, std::move(y), inputs, [=](BackwardCtx& c) {
            xt::xarray<V> g = c.take_grad_out<V>();  // d loss / d h_t, rewritten into d loss / d pre_t
            V* G = g.data();
            const V* Y = c.out<V>().data();
            const V* Whh = c.in<V>(2).data();
            for (std::size_t k = T; k-- > 0;) {
                V* gt = G + order(k) * BH;
                const V* yt = Y + order(k) * BH;
                // h_t also fed the next step processed: d h_t += d pre_next @ W_hh.
                if (k + 1 < T) gemm<V>(G + order(k + 1) * BH, Whh, gt, B, H, H, false, false, V(1));
                if (relu)
                    for (std::size_t i = 0; i < BH; ++i) gt[i] = yt[i] > V(0) ? gt[i] : V(0);
                else
                    for (std::size_t i = 0; i < BH; ++i) gt[i] *= V(1) - yt[i] * yt[i];
            }
            V beta{};
            const V* G0 = G + order(0) * BH;  // the first step processed: its h_{t-1} is h0
            if (has_h0 && c.needs(i_h0)) {    // d h0 [B, H] = d pre_first @ W_hh
                V* dh0 = c.grad_for_gemm<V>(i_h0, beta).data();
                gemm<V>(G0, Whh, dh0, B, H, H, false, false, beta);
            }
            if (c.needs(2)) {  // d W_hh [H, H] = sum over steps of d pre_t^T h_{t-1}: one GEMM
                V* dW = c.grad_for_gemm<V>(2, beta).data();
                const std::size_t rows = (T - 1) * B;  // steps after the first, paired with their h_{t-1}
                if (reverse)
                    gemm<V>(G, Y + BH, dW, H, rows, H, true, false, beta);  // (t, t+1) for t < T-1
                else
                    gemm<V>(G + BH, Y, dW, H, rows, H, true, false, beta);  // (t, t-1) for t > 0
                if (has_h0) gemm<V>(G0, c.in<V>(i_h0).data(), dW, H, B, H, true, false, V(1));
            }
            if (c.needs(1)) {  // d W_ih [H, F] = d pre^T x over all T*B rows
                V* dW = c.grad_for_gemm<V>(1, beta).data();
                gemm<V>(G, c.in<V>(0).data(), dW, H, T * B, F, true, false, beta);
            }
            if (c.needs(0)) {  // d x [T*B, F] = d pre @ W_ih
                V* dx = c.grad_for_gemm<V>(0, beta).data();
                gemm<V>(G, c.in<V>(1).data(), dx, T * B, H, F, false, false, beta);
            }
            if (bias && (c.needs(3) || c.needs(4))) {  // both biases get the column sums of d pre
                std::vector<double> acc(H, 0.0);
                for (std::size_t r = 0; r < T * B; ++r)
                    for (std::size_t j = 0; j < H; ++j) acc[j] += G[r * H + j];
                for (std::size_t i : {std::size_t{3}, std::size_t{4}})
                    if (c.needs(i)) {
                        V* db = c.grad_buffer<V>(i).data();
                        for (std::size_t j = 0; j < H; ++j) db[j] += static_cast<V>(acc[j]);
                    }
            }
        });
    });
}

}  // namespace tapegrad
