// tapegrad: rnn_sequence, lstm_sequence and gru_sequence, whole-sequence recurrences as one tape
// entry each (recurrent.hpp). Why fused: composed per step, an LSTM records about fifteen entries
// and as many [B, H]-sized arrays per step, each through malloc, and its backward adds a full-size
// gradient per step. Fused, a step is one GEMM plus one gate kernel over contiguous buffers;
// backward is one pass over the steps for the gate gradients, after which the weight and input
// gradients are single GEMMs over all steps.
//
// Variable lengths live inside the kernels: a padded row keeps its state (copied, never computed
// from the padded input), emits an exact zero, and gets a zero gate gradient, and the input is read
// with its padded rows zeroed where a GEMM would multiply it by those zeros (0 * NaN is NaN).
//
// The final states are a second, small tape entry after the sequence entry. The sweep runs entries
// in reverse creation order, so its backward runs first and hands d loss / d (h_n, c_n) to the
// sequence entry through a shared link; the sequence entry's output then needs no extra rows.
#include "recurrent.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#include "detail/kernels.hpp"
#include "detail/op.hpp"
#include "shape.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::gemm;

namespace {

enum class Cell { elman, lstm, gru };

// The validated sizes and options of one fused call.
struct Seq {
    const char* op = "";
    Cell cell = Cell::elman;
    std::size_t T = 0, B = 0, F = 0, H = 0, G = 0;  // G = gates * H: the rows of w_ih and w_hh
    bool bias = false, relu = false, reverse = false, has_h0 = false, has_c0 = false;
    std::vector<std::int64_t> lengths;  // one per row when some row is shorter than T, else empty
    std::size_t BH() const { return B * H; }
    // The k-th step processed is time step t(k).
    std::size_t t(std::size_t k) const { return reverse ? T - 1 - k : k; }
    bool padded() const { return !lengths.empty(); }
    bool valid(std::size_t t, std::size_t b) const {
        return lengths.empty() || static_cast<std::int64_t>(t) < lengths[b];
    }
    // Input indices: x, w_ih, w_hh, then b_ih, b_hh, then h0, then c0, each when given.
    std::size_t i_h0() const { return bias ? 5 : 3; }
    std::size_t i_c0() const { return i_h0() + (has_h0 ? 1 : 0); }
};

Seq check_inputs(const char* op, Cell cell, std::size_t gates, const Tensor& x, const Tensor& h0, const Tensor* c0,
                 const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, bool reverse,
                 const std::vector<std::int64_t>& lengths) {
    detail::check_defined(op, x, "x");
    detail::check_defined(op, w_ih, "w_ih");
    detail::check_defined(op, w_hh, "w_hh");
    // Every message lists all the inputs' shapes; formatted only when there is an error to report.
    auto shapes = [&] {
        auto str = [](const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("none"); };
        std::string s = fmt::format("x {}, h0 {}, ", str(x), str(h0));
        if (c0) s += fmt::format("c0 {}, ", str(*c0));
        return s + fmt::format("w_ih {}, w_hh {}, b_ih {}, b_hh {}", str(w_ih), str(w_hh), str(b_ih), str(b_hh));
    };
    const Tensor none;
    for (const Tensor* t : {&h0, c0 ? c0 : &none, &w_ih, &w_hh, &b_ih, &b_hh})
        if (t->defined() && t->dtype() != x.dtype())
            throw DTypeError(fmt::format("{}: {}: every input must be {} like x; convert with .to()", op, shapes(),
                                         dtype_name(x.dtype())));
    const std::string g = gates == 1 ? "" : std::to_string(gates);  // "4" in "[4H, F]"
    if (x.dim() != 3 || w_ih.dim() != 2 || w_hh.dim() != 2)
        throw ShapeError(fmt::format("{}: {}: needs x [T, B, F], w_ih [{}H, F] and w_hh [{}H, H]", op, shapes(), g, g));
    Seq s;
    s.op = op, s.cell = cell, s.reverse = reverse;
    s.T = x.size(0), s.B = x.size(1), s.F = x.size(2), s.H = w_hh.size(1), s.G = gates * s.H;
    const std::size_t H = s.H, G = s.G, F = s.F, B = s.B;
    if (w_hh.size(0) != G || w_ih.size(0) != G || w_ih.size(1) != F)
        throw ShapeError(fmt::format("{}: {}: needs w_ih [{}H, F] = [{}, {}] and w_hh [{}H, H] = [{}, {}]", op,
                                     shapes(), g, G, F, g, G, H));
    if (b_ih.defined() != b_hh.defined())
        throw ShapeError(fmt::format("{}: {}: give both biases or neither", op, shapes()));
    if (b_ih.defined() && (b_ih.shape() != Shape{G} || b_hh.shape() != Shape{G}))
        throw ShapeError(fmt::format("{}: {}: the biases must be [{}]", op, shapes(), G));
    const char* state_names[] = {"h0", "c0"};
    const Tensor* states[] = {&h0, c0 ? c0 : &none};
    for (int i = 0; i < 2; ++i)
        if (states[i]->defined() && states[i]->shape() != Shape{B, H})
            throw ShapeError(fmt::format("{}: {}: {} must be [B, H] = [{}, {}]", op, shapes(), state_names[i], B, H));
    if (s.T == 0 || B == 0 || H == 0)
        throw ShapeError(fmt::format("{}: {}: the sequence, the batch and the hidden size must not be empty", op,
                                     shapes()));
    // The buffers are [T, B, G] and [T, B, F]: refuse sizes whose element or byte count wraps.
    for (std::size_t width : {G, F, std::size_t{4} * H}) {
        std::size_t n = 0;
        if (__builtin_mul_overflow(s.T, B, &n) || __builtin_mul_overflow(n, width, &n) ||
            __builtin_mul_overflow(n, sizeof(double), &n))
            throw ValueError(fmt::format("{}: {}: the sequence's buffers ([T, B, {}] elements) are too large to "
                                         "allocate", op, shapes(), width));
    }
    if (!lengths.empty()) {
        if (lengths.size() != B)
            throw ShapeError(fmt::format("{}: {}: {} lengths given for a batch of {}", op, shapes(), lengths.size(), B));
        bool all_full = true;
        for (std::size_t b = 0; b < B; ++b) {
            if (lengths[b] < 1 || lengths[b] > static_cast<std::int64_t>(s.T))
                throw ValueError(fmt::format("{}: lengths[{}] = {} is out of range: each length must be in [1, {}] "
                                             "(the padded sequence length)",
                                             op, b, lengths[b], s.T));
            all_full = all_full && lengths[b] == static_cast<std::int64_t>(s.T);
        }
        if (!all_full) s.lengths = lengths;  // lengths all T: nothing is padded, the plain path runs
    }
    s.bias = b_ih.defined();
    s.has_h0 = h0.defined();
    s.has_c0 = c0 && c0->defined();
    return s;
}

std::vector<Tensor> input_list(const Seq& s, const Tensor& x, const Tensor& h0, const Tensor* c0, const Tensor& w_ih,
                               const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
    std::vector<Tensor> inputs{x, w_ih, w_hh};
    if (s.bias) inputs.insert(inputs.end(), {b_ih, b_hh});
    if (s.has_h0) inputs.push_back(h0);
    if (s.has_c0) inputs.push_back(*c0);
    return inputs;
}

// out [T*B, G] = x W_ih^T + bias (bias [G], or none): the input projection of every step, one GEMM.
template <class V>
void project(const Seq& s, const V* x, const V* w_ih, const std::vector<V>& bias, V* out) {
    const std::size_t rows = s.T * s.B;
    V beta(0);
    if (!bias.empty()) {
        for (std::size_t r = 0; r < rows; ++r) std::copy_n(bias.data(), s.G, out + r * s.G);
        beta = V(1);
    }
    gemm<V>(x, w_ih, out, rows, s.F, s.G, false, true, beta);
}

// b_ih (+ b_hh when both are folded into the projection), or empty without biases.
template <class V>
std::vector<V> bias_row(const Seq& s, const Tensor& b_ih, const Tensor& b_hh, bool both) {
    std::vector<V> r;
    if (!s.bias) return r;
    const V* bi = b_ih.value<V>().data();
    const V* bh = b_hh.value<V>().data();
    r.assign(bi, bi + s.G);
    if (both)
        for (std::size_t j = 0; j < s.G; ++j) r[j] += bh[j];
    return r;
}

// Row b of step t's state: the state before step k's row b is copied into the padded rows, so a
// padded row leaves the state as it was (zeros when there is no initial state yet).
template <class V>
void keep_padded_rows(const Seq& s, std::size_t t, const V* prev, V* cur) {
    if (!s.padded()) return;
    for (std::size_t b = 0; b < s.B; ++b)
        if (!s.valid(t, b)) {
            if (prev) std::copy_n(prev + b * s.H, s.H, cur + b * s.H);
            else std::fill_n(cur + b * s.H, s.H, V(0));
        }
}

// The output: the states themselves when nothing is padded, else a copy with padded rows zero.
template <class V>
xt::xarray<V> masked_output(const Seq& s, const xt::xarray<V>& hs) {
    xt::xarray<V> out = hs;
    V* o = out.data();
    for (std::size_t t = 0; t < s.T; ++t)
        for (std::size_t b = 0; b < s.B; ++b)
            if (!s.valid(t, b)) std::fill_n(o + (t * s.B + b) * s.H, s.H, V(0));
    return out;
}

// d loss / d (final states) [S, B, H], handed from the final-states entry to the sequence entry.
template <class V>
struct FinalsLink {
    xt::xarray<V> grad;
    bool has = false;
};

const char* finals_op(Cell cell) {
    switch (cell) {
        case Cell::lstm: return "lstm_sequence (final states)";
        case Cell::gru: return "gru_sequence (final states)";
        default: return "rnn_sequence (final states)";
    }
}

// The result: y (the output, already recorded) and the final states of every row, copied from the
// states buffer(s) at each row's own last step, as a second entry linked to the first.
template <class V>
SequenceResult finish(const Seq& s, const Tensor& y, const std::vector<const V*>& state_bufs,
                      const std::shared_ptr<FinalsLink<V>>& link) {
    const std::size_t S = state_bufs.size(), BH = s.BH();
    xt::xarray<V> fin = xt::xarray<V>::from_shape({S, s.B, s.H});
    // With padding every row's state after the last step processed is already its own final state.
    const std::size_t last = s.t(s.T - 1);
    for (std::size_t i = 0; i < S; ++i) std::copy_n(state_bufs[i] + last * BH, BH, fin.data() + i * BH);
    const Tensor f = detail::result(finals_op(s.cell), std::move(fin), {&y}, [link](BackwardCtx& c) {
        link->grad = c.take_grad_out<V>();
        link->has = true;
        c.grad_buffer<V>(0);  // the sequence entry runs only when its output has a gradient
    });
    SequenceResult r{y, select(f, 0, 0), Tensor()};
    if (S == 2) r.c_n = select(f, 0, 1);
    return r;
}

// Takes the final states' gradient out of the link ([S, B, H]), or zeros when none came.
template <class V>
xt::xarray<V> take_finals_grad(const Seq& s, FinalsLink<V>& link, std::size_t S) {
    if (link.has) {
        link.has = false;
        return std::move(link.grad);
    }
    return xt::xarray<V>(xt::zeros<V>({S, s.B, s.H}));
}

// Column sums of d [rows, G], accumulated in double, added into the bias gradient of input i.
template <class V>
void add_bias_grad(BackwardCtx& c, std::size_t i, const V* d, std::size_t rows, std::size_t G) {
    if (!c.needs(i)) return;
    std::vector<double> acc(G, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < G; ++j) acc[j] += d[r * G + j];
    V* db = c.grad_buffer<V>(i).data();
    for (std::size_t j = 0; j < G; ++j) db[j] += static_cast<V>(acc[j]);
}

// What every cell forms the same way once the per-step gate gradients are known: dgx [T, B, G] is
// d loss / d (the input projection), dgh [T, B, G] d loss / d (h_{t-1} W_hh^T + b_hh) (the same
// array for Elman and LSTM), hs [T, B, H] the states by time, dh0 [B, H] the gradient that reached
// the initial state.
template <class V>
void common_grads(BackwardCtx& c, const Seq& s, const V* dgx, const V* dgh, const V* hs, const V* dh0) {
    const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, F = s.F, BH = s.BH(), rows = T * B;
    V beta{};
    const std::size_t i_h0 = s.i_h0();
    if (s.has_h0 && c.needs(i_h0)) {
        V* d = c.grad_buffer<V>(i_h0).data();
        for (std::size_t i = 0; i < BH; ++i) d[i] += dh0[i];
    }
    if (c.needs(2)) {  // d W_hh [G, H] = sum over steps of dgh_t^T h_{t-1}: one GEMM
        V* dW = c.grad_for_gemm<V>(2, beta).data();
        const std::size_t pairs = (T - 1) * B;  // steps after the first processed, with their h_{t-1}
        if (s.reverse)
            gemm<V>(dgh, hs + BH, dW, G, pairs, H, true, false, beta);  // (t, t+1) for t < T-1
        else
            gemm<V>(dgh + B * G, hs, dW, G, pairs, H, true, false, beta);  // (t, t-1) for t > 0
        if (s.has_h0) gemm<V>(dgh + s.t(0) * B * G, c.in<V>(i_h0).data(), dW, G, B, H, true, false, V(1));
    }
    const bool need_x = c.needs(0), need_w = c.needs(1);
    if (need_w) {  // d W_ih [G, F] = dgx^T x over all rows, padded rows of x read as zeros
        const V* x = c.in<V>(0).data();
        std::vector<V> xz;
        if (s.padded()) {
            xz.assign(x, x + rows * F);
            for (std::size_t t = 0; t < T; ++t)
                for (std::size_t b = 0; b < B; ++b)
                    if (!s.valid(t, b)) std::fill_n(xz.data() + (t * B + b) * F, F, V(0));
            x = xz.data();
        }
        V* dW = c.grad_for_gemm<V>(1, beta).data();
        gemm<V>(dgx, x, dW, G, rows, F, true, false, beta);
    }
    if (need_x) {  // d x [T*B, F] = dgx @ W_ih (zero rows where padded)
        V* dx = c.grad_for_gemm<V>(0, beta).data();
        gemm<V>(dgx, c.in<V>(1).data(), dx, rows, G, F, false, false, beta);
    }
    if (s.bias) {
        add_bias_grad<V>(c, 3, dgx, rows, G);
        add_bias_grad<V>(c, 4, dgh, rows, G);
    }
}

// Rows of the carried gradient dh [B, H] that a valid step consumes start from zero before the
// step's GEMM adds dgh_t @ W_hh; padded rows keep what they hold (the state passed through).
template <class V>
void clear_valid_rows(const Seq& s, std::size_t t, V* dh) {
    for (std::size_t b = 0; b < s.B; ++b)
        if (s.valid(t, b)) std::fill_n(dh + b * s.H, s.H, V(0));
}

}  // namespace

// ---- Elman --------------------------------------------------------------------------------------
SequenceResult rnn_sequence(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                            const Tensor& b_ih, const Tensor& b_hh, const RNNSequenceOptions& options) {
    Seq s = check_inputs("rnn_sequence", Cell::elman, 1, x, h0, nullptr, w_ih, w_hh, b_ih, b_hh, options.reverse,
                         options.lengths);
    s.relu = options.relu;
    const std::vector<Tensor> inputs = input_list(s, x, h0, nullptr, w_ih, w_hh, b_ih, b_hh);
    return dispatch(x.dtype(), [&]<class V>(V) {
        const std::size_t T = s.T, B = s.B, H = s.H, BH = s.BH();
        // hs [T, B, H]: the state after each time step; the output itself when nothing is padded.
        auto hs = std::make_shared<xt::xarray<V>>(xt::xarray<V>::from_shape({T, B, H}));
        V* Y = hs->data();
        project<V>(s, x.value<V>().data(), w_ih.value<V>().data(), bias_row<V>(s, b_ih, b_hh, true), Y);
        const V* Whh = w_hh.value<V>().data();
        const V* h0v = s.has_h0 ? h0.value<V>().data() : nullptr;
        for (std::size_t k = 0; k < T; ++k) {
            const std::size_t t = s.t(k);
            V* yt = Y + t * BH;
            const V* prev = k > 0 ? Y + s.t(k - 1) * BH : h0v;
            if (prev) gemm<V>(prev, Whh, yt, B, H, H, false, true, V(1));  // += h_{t-1} W_hh^T
            if (s.relu)
                for (std::size_t i = 0; i < BH; ++i) yt[i] = std::max(yt[i], V(0));
            else if (!s.padded())
                detail::tanh_inplace(yt, BH);
            else  // padded rows may hold NaN from the input; the vector tanh must not read them
                for (std::size_t b = 0; b < B; ++b)
                    if (s.valid(t, b)) detail::tanh_inplace(yt + b * H, H);
            keep_padded_rows<V>(s, t, prev, yt);
        }
        auto link = std::make_shared<FinalsLink<V>>();
        const bool padded = s.padded();
        xt::xarray<V> out = padded ? masked_output<V>(s, *hs) : std::move(*hs);
        if (!padded) hs.reset();  // the output is the states: backward reads them from there
        const Tensor y = detail::result(s.op, std::move(out), inputs, [s, hs, link](BackwardCtx& c) {
            const std::size_t T = s.T, B = s.B, H = s.H, BH = s.BH();
            const V* Y = hs ? hs->data() : c.out<V>().data();
            const V* Whh = c.in<V>(2).data();
            // g: d loss / d output, rewritten in place into d loss / d pre-activation, step by step.
            xt::xarray<V> g = c.take_grad_out<V>();
            V* Gd = g.data();
            // dh [B, H]: the gradient reaching the state after the step being processed from the
            // steps after it (and from h_n); after the loop, d loss / d h0.
            xt::xarray<V> dh = take_finals_grad<V>(s, *link, 1);
            V* D = dh.data();
            for (std::size_t k = T; k-- > 0;) {
                const std::size_t t = s.t(k);
                V* gt = Gd + t * BH;
                const V* yt = Y + t * BH;
                for (std::size_t b = 0; b < B; ++b) {
                    V* gr = gt + b * H;
                    const V* yr = yt + b * H;
                    const V* dr = D + b * H;
                    if (!s.valid(t, b)) {  // a padded step: no output, the state passes through
                        std::fill_n(gr, H, V(0));
                        continue;
                    }
                    if (s.relu)
                        for (std::size_t j = 0; j < H; ++j) gr[j] = yr[j] > V(0) ? gr[j] + dr[j] : V(0);
                    else
                        for (std::size_t j = 0; j < H; ++j) gr[j] = (gr[j] + dr[j]) * (V(1) - yr[j] * yr[j]);
                }
                // The state before this step: d h_{t-1} = d pre_t @ W_hh on valid rows.
                if (s.padded()) clear_valid_rows<V>(s, t, D);
                gemm<V>(gt, Whh, D, B, H, H, false, false, s.padded() ? V(1) : V(0));
            }
            common_grads<V>(c, s, Gd, Gd, Y, D);
        });
        return finish<V>(s, y, {hs ? hs->data() : y.value<V>().data()}, link);
    });
}

// ---- LSTM ---------------------------------------------------------------------------------------
namespace {
// One LSTM step's gate kernel for row b: gates [4H] pre-activations (in place -> activations i, f, g, o),
// c_prev (or null for zeros) -> c, h.
template <class V>
void lstm_row(V* gates, const V* c_prev, V* c, V* h, V* tmp, std::size_t H) {
    detail::sigmoid_inplace(gates, 2 * H);      // i, f
    detail::tanh_inplace(gates + 2 * H, H);     // g
    detail::sigmoid_inplace(gates + 3 * H, H);  // o
    const V *i = gates, *f = gates + H, *g = gates + 2 * H, *o = gates + 3 * H;
    if (c_prev)
        for (std::size_t j = 0; j < H; ++j) c[j] = f[j] * c_prev[j] + i[j] * g[j];
    else
        for (std::size_t j = 0; j < H; ++j) c[j] = i[j] * g[j];
    std::copy_n(c, H, tmp);
    detail::tanh_inplace(tmp, H);
    for (std::size_t j = 0; j < H; ++j) h[j] = o[j] * tmp[j];
}
}  // namespace

SequenceResult lstm_sequence(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                             const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                             const SequenceOptions& options) {
    const Seq s = check_inputs("lstm_sequence", Cell::lstm, 4, x, h0, &c0, w_ih, w_hh, b_ih, b_hh, options.reverse,
                               options.lengths);
    const std::vector<Tensor> inputs = input_list(s, x, h0, &c0, w_ih, w_hh, b_ih, b_hh);
    return dispatch(x.dtype(), [&]<class V>(V) {
        const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, BH = s.BH();
        struct Saved {
            xt::xarray<V> acts;  // [T, B, 4H]: i, f, g, o after their activations
            xt::xarray<V> cs;    // [T, B, H]: c after each time step
            xt::xarray<V> hs;    // [T, B, H]: h after each time step, kept here only when padded
        };
        auto sv = std::make_shared<Saved>();
        sv->acts = xt::xarray<V>::from_shape({T, B, G});
        sv->cs = xt::xarray<V>::from_shape({T, B, H});
        xt::xarray<V> hs = xt::xarray<V>::from_shape({T, B, H});
        V *A = sv->acts.data(), *C = sv->cs.data(), *Hs = hs.data();
        project<V>(s, x.value<V>().data(), w_ih.value<V>().data(), bias_row<V>(s, b_ih, b_hh, true), A);
        const V* Whh = w_hh.value<V>().data();
        const V* h0v = s.has_h0 ? h0.value<V>().data() : nullptr;
        const V* c0v = s.has_c0 ? c0.value<V>().data() : nullptr;
        std::vector<V> tmp(H);
        for (std::size_t k = 0; k < T; ++k) {
            const std::size_t t = s.t(k), tp = k > 0 ? s.t(k - 1) : 0;
            V* at = A + t * B * G;
            const V* hp = k > 0 ? Hs + tp * BH : h0v;
            const V* cp = k > 0 ? C + tp * BH : c0v;
            if (hp) gemm<V>(hp, Whh, at, B, H, G, false, true, V(1));  // += h_{t-1} W_hh^T
            for (std::size_t b = 0; b < B; ++b)
                if (s.valid(t, b))
                    lstm_row<V>(at + b * G, cp ? cp + b * H : nullptr, C + t * BH + b * H, Hs + t * BH + b * H,
                                tmp.data(), H);
            keep_padded_rows<V>(s, t, hp, Hs + t * BH);
            keep_padded_rows<V>(s, t, cp, C + t * BH);
        }
        auto link = std::make_shared<FinalsLink<V>>();
        const bool padded = s.padded();
        xt::xarray<V> out = padded ? masked_output<V>(s, hs) : std::move(hs);
        if (padded) sv->hs = std::move(hs);
        const Tensor y = detail::result(s.op, std::move(out), inputs, [s, sv, link](BackwardCtx& c) {
            const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, BH = s.BH();
            const V* A = sv->acts.data();
            const V* C = sv->cs.data();
            const V* Hs = s.padded() ? sv->hs.data() : c.out<V>().data();
            const V* Whh = c.in<V>(2).data();
            const V* c0v = s.has_c0 ? c.in<V>(s.i_c0()).data() : nullptr;
            const xt::xarray<V>& gy = c.grad_out<V>();  // d loss / d output [T, B, H]
            xt::xarray<V> fin = take_finals_grad<V>(s, *link, 2);
            // dh, dc [B, H]: the gradients reaching h and c after the step being processed from the
            // steps after it (and from h_n, c_n); after the loop, d loss / d h0 and d c0.
            std::vector<V> dh(fin.data(), fin.data() + BH), dc(fin.data() + BH, fin.data() + 2 * BH), tc(H);
            xt::xarray<V> dg = xt::xarray<V>::from_shape({T, B, G});  // d loss / d gates (pre-activation)
            V* dG = dg.data();
            for (std::size_t k = T; k-- > 0;) {
                const std::size_t t = s.t(k);
                const V* cp = k > 0 ? C + s.t(k - 1) * BH : c0v;
                for (std::size_t b = 0; b < B; ++b) {
                    V* d = dG + (t * B + b) * G;
                    if (!s.valid(t, b)) {
                        std::fill_n(d, G, V(0));
                        continue;
                    }
                    const V* a = A + (t * B + b) * G;
                    const V *i = a, *f = a + H, *g = a + 2 * H, *o = a + 3 * H;
                    const V* cr = C + t * BH + b * H;
                    const V* cpr = cp ? cp + b * H : nullptr;
                    const V* gyr = gy.data() + t * BH + b * H;
                    V* dhr = dh.data() + b * H;
                    V* dcr = dc.data() + b * H;
                    std::copy_n(cr, H, tc.data());
                    detail::tanh_inplace(tc.data(), H);
                    for (std::size_t j = 0; j < H; ++j) {
                        const V dhj = dhr[j] + gyr[j];
                        const V dcj = dcr[j] + dhj * o[j] * (V(1) - tc[j] * tc[j]);
                        d[j] = dcj * g[j] * i[j] * (V(1) - i[j]);                          // d i
                        d[H + j] = cpr ? dcj * cpr[j] * f[j] * (V(1) - f[j]) : V(0);       // d f
                        d[2 * H + j] = dcj * i[j] * (V(1) - g[j] * g[j]);                  // d g
                        d[3 * H + j] = dhj * tc[j] * o[j] * (V(1) - o[j]);                 // d o
                        dcr[j] = dcj * f[j];                                               // d c_{t-1}
                    }
                }
                clear_valid_rows<V>(s, t, dh.data());
                gemm<V>(dG + t * B * G, Whh, dh.data(), B, G, H, false, false, V(1));  // d h_{t-1}
            }
            if (s.has_c0 && c.needs(s.i_c0())) {
                V* d = c.grad_buffer<V>(s.i_c0()).data();
                for (std::size_t i = 0; i < BH; ++i) d[i] += dc[i];
            }
            common_grads<V>(c, s, dG, dG, Hs, dh.data());
        });
        return finish<V>(s, y, {padded ? sv->hs.data() : y.value<V>().data(), sv->cs.data()}, link);
    });
}

// ---- GRU ----------------------------------------------------------------------------------------
SequenceResult gru_sequence(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                            const Tensor& b_ih, const Tensor& b_hh, const SequenceOptions& options) {
    const Seq s = check_inputs("gru_sequence", Cell::gru, 3, x, h0, nullptr, w_ih, w_hh, b_ih, b_hh, options.reverse,
                               options.lengths);
    const std::vector<Tensor> inputs = input_list(s, x, h0, nullptr, w_ih, w_hh, b_ih, b_hh);
    return dispatch(x.dtype(), [&]<class V>(V) {
        const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, BH = s.BH();
        struct Saved {
            xt::xarray<V> acts;  // [T, B, 3H]: r, z, n after their activations
            xt::xarray<V> hn;    // [T, B, H]: h_{t-1} W_hn^T + b_hn, which r multiplies
            xt::xarray<V> hs;    // [T, B, H]: h after each time step, kept here only when padded
        };
        auto sv = std::make_shared<Saved>();
        sv->acts = xt::xarray<V>::from_shape({T, B, G});
        sv->hn = xt::xarray<V>::from_shape({T, B, H});
        xt::xarray<V> hs = xt::xarray<V>::from_shape({T, B, H});
        V *A = sv->acts.data(), *HN = sv->hn.data(), *Hs = hs.data();
        project<V>(s, x.value<V>().data(), w_ih.value<V>().data(), bias_row<V>(s, b_ih, b_hh, false), A);
        const V* Whh = w_hh.value<V>().data();
        const V* bhh = s.bias ? b_hh.value<V>().data() : nullptr;
        const V* h0v = s.has_h0 ? h0.value<V>().data() : nullptr;
        std::vector<V> gh(B * G);  // h_{t-1} W_hh^T + b_hh for one step
        for (std::size_t k = 0; k < T; ++k) {
            const std::size_t t = s.t(k);
            const V* hp = k > 0 ? Hs + s.t(k - 1) * BH : h0v;
            for (std::size_t b = 0; b < B; ++b) {
                if (bhh) std::copy_n(bhh, G, gh.data() + b * G);
                else std::fill_n(gh.data() + b * G, G, V(0));
            }
            if (hp) gemm<V>(hp, Whh, gh.data(), B, H, G, false, true, V(1));
            for (std::size_t b = 0; b < B; ++b) {
                if (!s.valid(t, b)) continue;
                V* a = A + (t * B + b) * G;  // x_r, x_z, x_n -> r, z, n
                const V* ghr = gh.data() + b * G;
                V* hnr = HN + t * BH + b * H;
                for (std::size_t j = 0; j < 2 * H; ++j) a[j] += ghr[j];
                detail::sigmoid_inplace(a, 2 * H);
                for (std::size_t j = 0; j < H; ++j) {
                    hnr[j] = ghr[2 * H + j];
                    a[2 * H + j] += a[j] * hnr[j];
                }
                detail::tanh_inplace(a + 2 * H, H);
                const V *z = a + H, *n = a + 2 * H;
                V* h = Hs + t * BH + b * H;
                if (hp)
                    for (std::size_t j = 0; j < H; ++j) h[j] = (V(1) - z[j]) * n[j] + z[j] * hp[b * H + j];
                else
                    for (std::size_t j = 0; j < H; ++j) h[j] = (V(1) - z[j]) * n[j];
            }
            keep_padded_rows<V>(s, t, hp, Hs + t * BH);
        }
        auto link = std::make_shared<FinalsLink<V>>();
        const bool padded = s.padded();
        xt::xarray<V> out = padded ? masked_output<V>(s, hs) : std::move(hs);
        if (padded) sv->hs = std::move(hs);
        const Tensor y = detail::result(s.op, std::move(out), inputs, [s, sv, link](BackwardCtx& c) {
            const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, BH = s.BH();
            const V* A = sv->acts.data();
            const V* HN = sv->hn.data();
            const V* Hs = s.padded() ? sv->hs.data() : c.out<V>().data();
            const V* Whh = c.in<V>(2).data();
            const V* h0v = s.has_h0 ? c.in<V>(s.i_h0()).data() : nullptr;
            const xt::xarray<V>& gy = c.grad_out<V>();
            xt::xarray<V> dh = take_finals_grad<V>(s, *link, 1);  // as in lstm_sequence
            V* D = dh.data();
            xt::xarray<V> dgx = xt::xarray<V>::from_shape({T, B, G}), dgh = xt::xarray<V>::from_shape({T, B, G});
            for (std::size_t k = T; k-- > 0;) {
                const std::size_t t = s.t(k);
                const V* hp = k > 0 ? Hs + s.t(k - 1) * BH : h0v;
                for (std::size_t b = 0; b < B; ++b) {
                    V* dx = dgx.data() + (t * B + b) * G;
                    V* dhh = dgh.data() + (t * B + b) * G;
                    if (!s.valid(t, b)) {
                        std::fill_n(dx, G, V(0));
                        std::fill_n(dhh, G, V(0));
                        continue;
                    }
                    const V* a = A + (t * B + b) * G;
                    const V *r = a, *z = a + H, *n = a + 2 * H;
                    const V* hnr = HN + t * BH + b * H;
                    const V* gyr = gy.data() + t * BH + b * H;
                    V* dr = D + b * H;
                    for (std::size_t j = 0; j < H; ++j) {
                        const V dhj = dr[j] + gyr[j];
                        const V hpj = hp ? hp[b * H + j] : V(0);
                        const V dpre_n = dhj * (V(1) - z[j]) * (V(1) - n[j] * n[j]);
                        const V dpre_z = dhj * (hpj - n[j]) * z[j] * (V(1) - z[j]);
                        const V dpre_r = dpre_n * hnr[j] * r[j] * (V(1) - r[j]);
                        dx[j] = dhh[j] = dpre_r;
                        dx[H + j] = dhh[H + j] = dpre_z;
                        dx[2 * H + j] = dpre_n;
                        dhh[2 * H + j] = dpre_n * r[j];
                        dr[j] = dhj * z[j];  // h' = ... + z * h: the direct path; the GEMM adds the rest
                    }
                }
                gemm<V>(dgh.data() + t * B * G, Whh, D, B, G, H, false, false, V(1));  // d h_{t-1}
            }
            common_grads<V>(c, s, dgx.data(), dgh.data(), Hs, D);
        });
        return finish<V>(s, y, {padded ? sv->hs.data() : y.value<V>().data()}, link);
    });
}

}  // namespace tapegrad
