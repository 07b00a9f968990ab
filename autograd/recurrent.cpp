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
#include <atomic>
#include <cstring>
#include <memory>
#include <utility>

#include "detail/kernels.hpp"
#include "detail/op.hpp"
#include "detail/parallel.hpp"
#include "shape.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::gemm;
using detail::gemm_ld;

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
    // Input indices: x (0), then this direction's w_ih, w_hh, then b_ih, b_hh, then h0, then c0,
    // each when given, from index `first` (1; after the forward direction's for the reverse one of
    // a bidirectional op).
    std::size_t first = 1;
    std::size_t i_wih() const { return first; }
    std::size_t i_whh() const { return first + 1; }
    std::size_t i_bih() const { return first + 2; }
    std::size_t i_bhh() const { return first + 3; }
    std::size_t i_h0() const { return first + (bias ? 4 : 2); }
    std::size_t i_c0() const { return i_h0() + (has_h0 ? 1 : 0); }
    std::size_t end() const { return i_c0() + (has_c0 ? 1 : 0); }  // one past this direction's inputs
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

// Appends one direction's inputs in the order Seq's indices give.
void add_inputs(std::vector<Tensor>& inputs, const Seq& s, const Tensor& h0, const Tensor* c0, const Tensor& w_ih,
                const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
    inputs.insert(inputs.end(), {w_ih, w_hh});
    if (s.bias) inputs.insert(inputs.end(), {b_ih, b_hh});
    if (s.has_h0) inputs.push_back(h0);
    if (s.has_c0) inputs.push_back(*c0);
}

// One direction's inputs as buffers (null where not given).
template <class V>
struct Raw {
    const V *x = nullptr, *w_ih = nullptr, *w_hh = nullptr, *b_ih = nullptr, *b_hh = nullptr, *h0 = nullptr,
            *c0 = nullptr;
};

// Input i's buffer comes from in(i): the op's input tensors forward, the tape entry's backward.
template <class V, class In>
Raw<V> raw_inputs(const Seq& s, In in) {
    Raw<V> r;
    r.x = in(0);
    r.w_ih = in(s.i_wih());
    r.w_hh = in(s.i_whh());
    if (s.bias) r.b_ih = in(s.i_bih()), r.b_hh = in(s.i_bhh());
    if (s.has_h0) r.h0 = in(s.i_h0());
    if (s.has_c0) r.c0 = in(s.i_c0());
    return r;
}

template <class V>
Raw<V> raw_inputs(const Seq& s, const std::vector<Tensor>& inputs) {
    return raw_inputs<V>(s, [&](std::size_t i) { return inputs[i].value<V>().data(); });
}

template <class V>
Raw<V> raw_inputs(const Seq& s, const BackwardCtx& c) {
    return raw_inputs<V>(s, [&](std::size_t i) { return c.in<V>(i).data(); });
}

// Where one direction's backward puts its gradients; null where none is wanted. The three formed
// by GEMMs come with their beta (0: a new buffer, overwritten; 1: one that holds a gradient, added
// to); the rest are added to. The buffers are all taken before the kernels run, in the order the
// kernels write them (c0, h0, w_hh, w_ih, x, b_ih, b_hh), so an input given twice (one tensor as
// w_ih and w_hh, say) gets "overwrite" first and "add" after, as when each was taken just before
// its write.
template <class V>
struct Grads {
    V *dc0 = nullptr, *dh0 = nullptr, *dw_hh = nullptr, *dw_ih = nullptr, *dx = nullptr, *db_ih = nullptr,
      *db_hh = nullptr;
    V beta_hh{}, beta_ih{}, beta_x{};
};

// dx_own: where x's gradient goes when not into x's own buffer (the reverse half of a bidirectional
// op writes its share apart, overwriting, and the op adds it once both halves have ended).
template <class V>
Grads<V> grad_buffers(BackwardCtx& c, const Seq& s, V* dx_own = nullptr) {
    Grads<V> g;
    if (s.has_c0 && c.needs(s.i_c0())) g.dc0 = c.grad_buffer<V>(s.i_c0()).data();
    if (s.has_h0 && c.needs(s.i_h0())) g.dh0 = c.grad_buffer<V>(s.i_h0()).data();
    if (c.needs(s.i_whh())) g.dw_hh = c.grad_for_gemm<V>(s.i_whh(), g.beta_hh).data();
    if (c.needs(s.i_wih())) g.dw_ih = c.grad_for_gemm<V>(s.i_wih(), g.beta_ih).data();
    if (c.needs(0)) g.dx = dx_own ? dx_own : c.grad_for_gemm<V>(0, g.beta_x).data();
    if (s.bias && c.needs(s.i_bih())) g.db_ih = c.grad_buffer<V>(s.i_bih()).data();
    if (s.bias && c.needs(s.i_bhh())) g.db_hh = c.grad_buffer<V>(s.i_bhh()).data();
    return g;
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
std::vector<V> bias_row(const Seq& s, const Raw<V>& in, bool both) {
    std::vector<V> r;
    if (!s.bias) return r;
    r.assign(in.b_ih, in.b_ih + s.G);
    if (both)
        for (std::size_t j = 0; j < s.G; ++j) r[j] += in.b_hh[j];
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

// d loss / d (final states), handed from the final-states entry to the sequence entry: [S, B, H],
// or [S, 2, B, H] for both directions of a bidirectional op.
template <class V>
struct FinalsLink {
    xt::xarray<V> grad;
    bool has = false;
};

// The names a cell's ops record and report (string literals: tape entries keep the pointer).
struct CellNames {
    const char *one, *one_finals, *both, *both_finals, *both_forward, *both_reverse;
};

const CellNames& names(Cell cell) {
    static const CellNames elman{"rnn_sequence", "rnn_sequence (final states)", "rnn_sequence_bidirectional",
                                 "rnn_sequence_bidirectional (final states)",
                                 "rnn_sequence_bidirectional (forward direction)",
                                 "rnn_sequence_bidirectional (reverse direction)"};
    static const CellNames lstm{"lstm_sequence", "lstm_sequence (final states)", "lstm_sequence_bidirectional",
                                "lstm_sequence_bidirectional (final states)",
                                "lstm_sequence_bidirectional (forward direction)",
                                "lstm_sequence_bidirectional (reverse direction)"};
    static const CellNames gru{"gru_sequence", "gru_sequence (final states)", "gru_sequence_bidirectional",
                               "gru_sequence_bidirectional (final states)",
                               "gru_sequence_bidirectional (forward direction)",
                               "gru_sequence_bidirectional (reverse direction)"};
    return cell == Cell::lstm ? lstm : cell == Cell::gru ? gru : elman;
}

// The result: y (the output, already recorded) and the final states of every row, copied from the
// states buffers bufs[d][i] (direction d, state i) at each row's own last step, as a second entry
// linked to the first. One direction: h_n [B, H]; two: h_n [2, B, H] (forward, then reverse).
template <class V>
SequenceResult finish(const std::vector<const Seq*>& seqs, const Tensor& y,
                      const std::vector<std::vector<const V*>>& bufs, const std::shared_ptr<FinalsLink<V>>& link) {
    const Seq& s = *seqs[0];
    const std::size_t D = seqs.size(), S = bufs[0].size(), BH = s.BH();
    xt::xarray<V> fin = D == 1 ? xt::xarray<V>::from_shape({S, s.B, s.H}) : xt::xarray<V>::from_shape({S, D, s.B, s.H});
    // With padding every row's state after the last step processed is already its own final state.
    for (std::size_t d = 0; d < D; ++d) {
        const std::size_t last = seqs[d]->t(s.T - 1);
        for (std::size_t i = 0; i < S; ++i) std::copy_n(bufs[d][i] + last * BH, BH, fin.data() + (i * D + d) * BH);
    }
    const char* op = D == 2 ? names(s.cell).both_finals : names(s.cell).one_finals;
    const Tensor f = detail::result(op, std::move(fin), {&y}, [link](BackwardCtx& c) {
        link->grad = c.take_grad_out<V>();
        link->has = true;
        c.grad_buffer<V>(0);  // the sequence entry runs only when its output has a gradient
    });
    SequenceResult r{y, select(f, 0, 0), Tensor()};
    if (S == 2) r.c_n = select(f, 0, 1);
    return r;
}

// Direction d's share of the final states' gradient ([S, B, H]; zeros when none came), of D.
template <class V>
std::vector<V> finals_grad(const FinalsLink<V>& link, std::size_t S, std::size_t D, std::size_t d, std::size_t BH) {
    std::vector<V> g(S * BH, V(0));
    if (link.has)
        for (std::size_t i = 0; i < S; ++i) std::copy_n(link.grad.data() + (i * D + d) * BH, BH, g.data() + i * BH);
    return g;
}

// What every cell forms the same way from its per-step gate gradients: the weight and bias
// gradients, dx, d h0 (and d c0). A kernel's backward calls begin() once its gradient arrays exist,
// step_done(n) when the first n steps processed (backward goes from the last step to the first)
// have their gate gradients written, and end() after the last. dgx [T, B, G] is d loss / d (the
// input projection); dgh, d loss / d (h_{t-1} W_hh^T + b_hh) [T, B, G], equals dgx in its columns
// [0, split) and is `tail` [T, B, G - split] in the rest (Elman and LSTM: split = G, no tail; GRU:
// the n gate's third, which r scales); hs [T, B, H] are the states by time.
//
// Serial, end() forms everything over all steps at once: one GEMM each. Pipelined, consume() runs
// on a second thread while the kernel's backward runs: it forms the weight gradients and the bias
// sums block by block of steps as step_done() reports them, and each block's dx unless the kernel's
// thread, done with its recurrence, took it first (help()), so the products over all steps overlap
// the recurrence instead of following it; d h0 and d c0 are added by finish() once both have ended.
// The blocks are fixed by T alone, so a result does not depend on timing.
template <class V>
class GradSink {
public:
    GradSink(const Seq& s, const Raw<V>& in, const Grads<V>& g, bool pipelined)
        : s_(s), in_(in), g_(g), pipelined_(pipelined), acc_(s.G, 0.0) {}

    void begin(const V* dgx, const V* tail, std::size_t split, const V* hs) {
        dgx_ = dgx, tail_ = tail, split_ = split, hs_ = hs;
        acc_tail_.assign(s_.G - split, 0.0);
        if (pipelined_) publish(0);
    }
    void step_done(std::size_t n) {
        if (pipelined_) publish(static_cast<std::ptrdiff_t>(n));
    }
    // dh0 [B, H] and dc0 (or null): the gradients that reached the initial states.
    void end(const V* dh0, const V* dc0) {
        if (!pipelined_) {
            add_initial(dc0, g_.dc0);
            add_initial(dh0, g_.dh0);
            add_steps(0, s_.T);
            add_bias();
            return;
        }
        const std::size_t BH = s_.BH();
        if (g_.dc0) dc0_.assign(dc0, dc0 + BH);
        if (g_.dh0) dh0_.assign(dh0, dh0 + BH);
        publish(static_cast<std::ptrdiff_t>(s_.T));
    }
    // The pipelined kernel's backward failed: consume() stops waiting.
    void fail() { publish(failed); }
    // Arrays for the kernel's gradients that live as long as the sink: consume() may still read
    // them after the kernel's backward has returned.
    xt::xarray<V>& array(std::size_t i) { return arrays_[i]; }

    // The second thread's part: block by block as the steps are ready, the products into d W_hh and
    // d W_ih and the bias sums (in block order: they add into one buffer), then dx of the first block
    // whose dx no thread has taken yet.
    void consume() {
        for (std::size_t i = 0; i < blocks(); ++i) {
            const std::size_t next = std::min(s_.T, (i + 1) * block());
            std::ptrdiff_t r;
            while ((r = ready_.load(std::memory_order_acquire)) != failed && r < static_cast<std::ptrdiff_t>(next))
                ready_.wait(r, std::memory_order_acquire);
            if (r == failed) return;
            const auto [t0, t1] = times(i);
            add_steps(t0, t1);
            take_dx();
        }
        add_bias();
    }
    // The kernel's thread, once its recurrence has ended: dx of the blocks left (each block's rows of
    // dx are its own, so whichever thread forms them, the numbers are the same).
    void help() {
        while (take_dx()) {
        }
    }
    void finish() {
        add_initial(dc0_.empty() ? nullptr : dc0_.data(), g_.dc0);
        add_initial(dh0_.empty() ? nullptr : dh0_.data(), g_.dh0);
    }
private:
    static constexpr std::ptrdiff_t failed = -2;

    // Blocks of T/16 steps (at least one), fixed by T alone so that no result depends on timing.
    std::size_t block() const { return std::max<std::size_t>(1, (s_.T + 15) / 16); }
    std::size_t blocks() const { return (s_.T + block() - 1) / block(); }
    // Block i holds the steps processed [i * block, ...): times [T - next, T - done) forward,
    // [done, next) reversed (backward processes the last time first).
    std::pair<std::size_t, std::size_t> times(std::size_t i) const {
        const std::size_t done = i * block(), next = std::min(s_.T, done + block());
        return s_.reverse ? std::pair{done, next} : std::pair{s_.T - next, s_.T - done};
    }
    // dx of the next block no thread has taken; false when none is left (or none is wanted).
    bool take_dx() {
        if (!g_.dx) return false;
        const std::size_t i = dx_next_.fetch_add(1);
        if (i >= blocks()) return false;
        const auto [t0, t1] = times(i);
        add_dx(t0, t1);
        return true;
    }
    void add_dx(std::size_t t0, std::size_t t1) {  // dx rows of times [t0, t1) = dgx @ W_ih
        const std::size_t B = s_.B, G = s_.G, F = s_.F, r0 = t0 * B;
        gemm<V>(dgx_ + r0 * G, in_.w_ih, g_.dx + r0 * F, (t1 - t0) * B, G, F, false, false, g_.beta_x);
    }

    void publish(std::ptrdiff_t n) {
        ready_.store(n, std::memory_order_release);
        ready_.notify_one();
    }
    void add_initial(const V* from, V* to) const {
        if (from && to)
            for (std::size_t i = 0; i < s_.BH(); ++i) to[i] += from[i];
    }
    // The first GEMM into a buffer uses its beta (0: overwrite), later ones add.
    static V take(V& beta) {
        const V b = beta;
        beta = V(1);
        return b;
    }

    // Rows [j0, j0 + w) of d W_hh [G, H] += sum over times t in [t0, t1) of d_t^T h_{t-1}, where
    // h_{t-1} is the state of the step processed before t (h0 for the first); d [T, B, w] has rows
    // ld apart. One GEMM over the steps with a state before them, one for h0.
    void add_hh(const V* d, std::size_t ld, std::size_t w, std::size_t j0, std::size_t t0, std::size_t t1) {
        const std::size_t T = s_.T, B = s_.B, H = s_.H, BH = s_.BH();
        V* dw = g_.dw_hh + j0 * H;
        V& beta = j0 == 0 ? beta_hh_ : beta_hh_tail_;
        if (s_.reverse) {  // h_{t-1} is hs[t + 1], for t < T - 1
            const std::size_t p1 = std::min(t1, T - 1), n = p1 > t0 ? p1 - t0 : 0;
            gemm_ld<V>(d + t0 * B * ld, ld, hs_ + (t0 + 1) * BH, H, dw, H, w, n * B, H, true, false, take(beta));
            if (s_.has_h0 && t1 == T)
                gemm_ld<V>(d + (T - 1) * B * ld, ld, in_.h0, H, dw, H, w, B, H, true, false, V(1));
        } else {  // h_{t-1} is hs[t - 1], for t > 0
            const std::size_t p0 = std::max<std::size_t>(t0, 1), n = t1 > p0 ? t1 - p0 : 0;
            gemm_ld<V>(d + p0 * B * ld, ld, hs_ + (p0 - 1) * BH, H, dw, H, w, n * B, H, true, false, take(beta));
            if (s_.has_h0 && t0 == 0) gemm_ld<V>(d, ld, in_.h0, H, dw, H, w, B, H, true, false, V(1));
        }
    }

    // Every gradient formed from the times [t0, t1), except the biases' (summed into acc_) and,
    // pipelined, dx.
    void add_steps(std::size_t t0, std::size_t t1) {
        const std::size_t B = s_.B, G = s_.G, F = s_.F, rows = (t1 - t0) * B, r0 = t0 * B;
        const V* d = dgx_ + r0 * G;
        if (g_.dw_hh) {
            add_hh(dgx_, G, split_, 0, t0, t1);
            if (split_ < G) add_hh(tail_, G - split_, G - split_, split_, t0, t1);
        }
        if (g_.dw_ih) {  // d W_ih [G, F] += d^T x over the rows, padded rows of x read as zeros
            const V* x = in_.x + r0 * F;
            std::vector<V> xz;
            if (s_.padded()) {
                xz.assign(x, x + rows * F);
                for (std::size_t t = t0; t < t1; ++t)
                    for (std::size_t b = 0; b < B; ++b)
                        if (!s_.valid(t, b)) std::fill_n(xz.data() + ((t - t0) * B + b) * F, F, V(0));
                x = xz.data();
            }
            gemm<V>(d, x, g_.dw_ih, G, rows, F, true, false, take(beta_ih_));
        }
        if (!pipelined_ && g_.dx) add_dx(t0, t1);  // pipelined: block by block, by either thread
        if (g_.db_ih || g_.db_hh) {
            sum_columns(d, rows, G, G, acc_);
            if (g_.db_hh && split_ < G) sum_columns(tail_ + r0 * (G - split_), rows, G - split_, G - split_, acc_tail_);
        }
    }
    // dgx's column sums serve both biases where dgh equals it.
    void add_bias() {
        const std::size_t G = s_.G;
        for (std::size_t j = 0; j < G; ++j) {
            if (g_.db_ih) g_.db_ih[j] += static_cast<V>(acc_[j]);
            if (g_.db_hh) g_.db_hh[j] += static_cast<V>(j < split_ ? acc_[j] : acc_tail_[j - split_]);
        }
    }
    static void sum_columns(const V* d, std::size_t rows, std::size_t cols, std::size_t ld, std::vector<double>& acc) {
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < cols; ++j) acc[j] += d[r * ld + j];
    }

    const Seq& s_;
    const Raw<V>& in_;
    Grads<V> g_;
    const bool pipelined_;
    V beta_hh_ = g_.beta_hh, beta_hh_tail_ = g_.beta_hh, beta_ih_ = g_.beta_ih;
    const V *dgx_ = nullptr, *tail_ = nullptr, *hs_ = nullptr;
    std::size_t split_ = 0;
    std::vector<double> acc_, acc_tail_;
    std::vector<V> dh0_, dc0_;
    xt::xarray<V> arrays_[2];
    std::atomic<std::ptrdiff_t> ready_{-1};
    std::atomic<std::size_t> dx_next_{0};
};

// Rows of the carried gradient dh [B, H] that a valid step consumes start from zero before the
// step's GEMM adds dgh_t @ W_hh; padded rows keep what they hold (the state passed through).
template <class V>
void clear_valid_rows(const Seq& s, std::size_t t, V* dh) {
    for (std::size_t b = 0; b < s.B; ++b)
        if (s.valid(t, b)) std::fill_n(dh + b * s.H, s.H, V(0));
}

// ---- the cells' kernels -------------------------------------------------------------------------
// Each cell is a kernel object: forward(s, in) computes hs [T, B, H] (the state after each time
// step) and whatever its backward needs; backward(s, in, Hs, gy, fin, sink, overwrite) takes the
// states (hs, or the op's output holding the same values), d loss / d output gy [T, B, H]
// (overwritten), and d loss / d final states fin [S, B, H], forms the gate gradients step by step
// and hands them to the sink, which forms the rest (GradSink). With
// `overwrite` (the graph is not retained, so backward runs once) the gated cells write their gate
// gradients over the saved activations instead of into a new [T, B, gates * H] array: the largest
// array of backward, the size of all activations. Neither touches the tape, so the two directions
// of a bidirectional op can run on two threads.

template <class V>
struct ElmanKernel {
    static constexpr std::size_t states = 1;
    xt::xarray<V> hs;

    void forward(const Seq& s, const Raw<V>& in) {
        const std::size_t T = s.T, B = s.B, H = s.H, BH = s.BH();
        hs = xt::xarray<V>::from_shape({T, B, H});
        V* Y = hs.data();
        project<V>(s, in.x, in.w_ih, bias_row<V>(s, in, true), Y);
        for (std::size_t k = 0; k < T; ++k) {
            const std::size_t t = s.t(k);
            V* yt = Y + t * BH;
            const V* prev = k > 0 ? Y + s.t(k - 1) * BH : in.h0;
            if (prev) gemm<V>(prev, in.w_hh, yt, B, H, H, false, true, V(1));  // += h_{t-1} W_hh^T
            if (s.relu)
                for (std::size_t i = 0; i < BH; ++i) yt[i] = std::max(yt[i], V(0));
            else if (!s.padded())
                detail::tanh_inplace(yt, BH);
            else  // padded rows may hold NaN from the input; the vector tanh must not read them
                for (std::size_t b = 0; b < B; ++b)
                    if (s.valid(t, b)) detail::tanh_inplace(yt + b * H, H);
            keep_padded_rows<V>(s, t, prev, yt);
        }
    }
    std::vector<const V*> state_bufs(const V* h) const { return {h}; }

    // (No `overwrite` here: the pre-activation gradients go into Gd, an array of the op's own.)
    void backward(const Seq& s, const Raw<V>& in, const V* Y, V* Gd, const V* fin, GradSink<V>& sink,
                  bool /*overwrite*/) {
        const std::size_t T = s.T, B = s.B, H = s.H, BH = s.BH();
        // Gd: d loss / d output, rewritten in place into d loss / d pre-activation, step by step.
        // dh [B, H]: the gradient reaching the state after the step being processed from the steps
        // after it (and from h_n); after the loop, d loss / d h0.
        std::vector<V> dh(fin, fin + BH);
        V* D = dh.data();
        sink.begin(Gd, nullptr, s.G, Y);
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
            sink.step_done(T - k);
            if (s.padded()) clear_valid_rows<V>(s, t, D);
            gemm<V>(gt, in.w_hh, D, B, H, H, false, false, s.padded() ? V(1) : V(0));
        }
        sink.end(D, nullptr);
    }
};

// Where a gated cell's backward writes a gradient of the shape of an array its forward saved (the
// gate gradients over the activations, say): over `saved` when it may (backward runs once, and each
// row is read before it is written), else into `own`, allocated here.
template <class V>
V* grad_over_saved(xt::xarray<V>& saved, bool overwrite, xt::xarray<V>& own) {
    if (overwrite) return saved.data();
    own = xt::xarray<V>::from_shape(saved.shape());
    return own.data();
}

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

template <class V>
struct LSTMKernel {
    static constexpr std::size_t states = 2;
    xt::xarray<V> hs;
    xt::xarray<V> acts;  // [T, B, 4H]: i, f, g, o after their activations
    xt::xarray<V> cs;    // [T, B, H]: c after each time step

    void forward(const Seq& s, const Raw<V>& in) {
        const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, BH = s.BH();
        acts = xt::xarray<V>::from_shape({T, B, G});
        cs = xt::xarray<V>::from_shape({T, B, H});
        hs = xt::xarray<V>::from_shape({T, B, H});
        V *A = acts.data(), *C = cs.data(), *Hs = hs.data();
        project<V>(s, in.x, in.w_ih, bias_row<V>(s, in, true), A);
        std::vector<V> tmp(H);
        for (std::size_t k = 0; k < T; ++k) {
            const std::size_t t = s.t(k), tp = k > 0 ? s.t(k - 1) : 0;
            V* at = A + t * B * G;
            const V* hp = k > 0 ? Hs + tp * BH : in.h0;
            const V* cp = k > 0 ? C + tp * BH : in.c0;
            if (hp) gemm<V>(hp, in.w_hh, at, B, H, G, false, true, V(1));  // += h_{t-1} W_hh^T
            for (std::size_t b = 0; b < B; ++b)
                if (s.valid(t, b))
                    lstm_row<V>(at + b * G, cp ? cp + b * H : nullptr, C + t * BH + b * H, Hs + t * BH + b * H,
                                tmp.data(), H);
            keep_padded_rows<V>(s, t, hp, Hs + t * BH);
            keep_padded_rows<V>(s, t, cp, C + t * BH);
        }
    }
    std::vector<const V*> state_bufs(const V* h) const { return {h, cs.data()}; }

    void backward(const Seq& s, const Raw<V>& in, const V* Hs, V* gy, const V* fin, GradSink<V>& sink,
                  bool overwrite) {
        const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, BH = s.BH();
        const V* A = acts.data();
        const V* C = cs.data();
        // dh, dc [B, H]: the gradients reaching h and c after the step being processed from the
        // steps after it (and from h_n, c_n); after the loop, d loss / d h0 and d c0.
        std::vector<V> dh(fin, fin + BH), dc(fin + BH, fin + 2 * BH), tc(H), d(G);
        // d loss / d gates (pre-activation) [T, B, 4H]
        V* dG = grad_over_saved<V>(acts, overwrite, sink.array(0));
        sink.begin(dG, nullptr, G, Hs);
        for (std::size_t k = T; k-- > 0;) {
            const std::size_t t = s.t(k);
            const V* cp = k > 0 ? C + s.t(k - 1) * BH : in.c0;
            for (std::size_t b = 0; b < B; ++b) {
                V* out = dG + (t * B + b) * G;
                if (!s.valid(t, b)) {
                    std::fill_n(out, G, V(0));
                    continue;
                }
                const V* a = A + (t * B + b) * G;
                const V *i = a, *f = a + H, *gg = a + 2 * H, *o = a + 3 * H;
                const V* cr = C + t * BH + b * H;
                const V* cpr = cp ? cp + b * H : nullptr;
                const V* gyr = gy + t * BH + b * H;
                V* dhr = dh.data() + b * H;
                V* dcr = dc.data() + b * H;
                std::copy_n(cr, H, tc.data());
                detail::tanh_inplace(tc.data(), H);
                for (std::size_t j = 0; j < H; ++j) {
                    const V dhj = dhr[j] + gyr[j];
                    const V dcj = dcr[j] + dhj * o[j] * (V(1) - tc[j] * tc[j]);
                    d[j] = dcj * gg[j] * i[j] * (V(1) - i[j]);                      // d i
                    d[H + j] = cpr ? dcj * cpr[j] * f[j] * (V(1) - f[j]) : V(0);    // d f
                    d[2 * H + j] = dcj * i[j] * (V(1) - gg[j] * gg[j]);             // d g
                    d[3 * H + j] = dhj * tc[j] * o[j] * (V(1) - o[j]);              // d o
                    dcr[j] = dcj * f[j];                                            // d c_{t-1}
                }
                std::copy_n(d.data(), G, out);
            }
            sink.step_done(T - k);
            clear_valid_rows<V>(s, t, dh.data());
            gemm<V>(dG + t * B * G, in.w_hh, dh.data(), B, G, H, false, false, V(1));  // d h_{t-1}
        }
        sink.end(dh.data(), dc.data());
    }
};

template <class V>
struct GRUKernel {
    static constexpr std::size_t states = 1;
    xt::xarray<V> hs;
    xt::xarray<V> acts;  // [T, B, 3H]: r, z, n after their activations
    xt::xarray<V> hn;    // [T, B, H]: h_{t-1} W_hn^T + b_hn, which r multiplies

    void forward(const Seq& s, const Raw<V>& in) {
        const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, BH = s.BH();
        acts = xt::xarray<V>::from_shape({T, B, G});
        hn = xt::xarray<V>::from_shape({T, B, H});
        hs = xt::xarray<V>::from_shape({T, B, H});
        V *A = acts.data(), *HN = hn.data(), *Hs = hs.data();
        project<V>(s, in.x, in.w_ih, bias_row<V>(s, in, false), A);
        std::vector<V> gh(B * G);  // h_{t-1} W_hh^T + b_hh for one step
        for (std::size_t k = 0; k < T; ++k) {
            const std::size_t t = s.t(k);
            const V* hp = k > 0 ? Hs + s.t(k - 1) * BH : in.h0;
            for (std::size_t b = 0; b < B; ++b) {
                if (in.b_hh) std::copy_n(in.b_hh, G, gh.data() + b * G);
                else std::fill_n(gh.data() + b * G, G, V(0));
            }
            if (hp) gemm<V>(hp, in.w_hh, gh.data(), B, H, G, false, true, V(1));
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
    }
    std::vector<const V*> state_bufs(const V* h) const { return {h}; }

    void backward(const Seq& s, const Raw<V>& in, const V* Hs, V* gy, const V* fin, GradSink<V>& sink,
                  bool overwrite) {
        const std::size_t T = s.T, B = s.B, H = s.H, G = s.G, BH = s.BH();
        const V* A = acts.data();
        const V* HN = hn.data();
        std::vector<V> dh(fin, fin + BH), dx(G);  // dh as in LSTMKernel
        V* D = dh.data();
        // d loss / d (the input projection) [T, B, 3H], over the activations. d loss / d
        // (h_{t-1} W_hh^T + b_hh) differs from it only in n's third, which r scales: that third is
        // kept for all steps (dghn [T, B, H], over hn), the whole only for the step at hand (step
        // [B, 3H], for its GEMM).
        V* dgx = grad_over_saved<V>(acts, overwrite, sink.array(0));
        V* dghn = grad_over_saved<V>(hn, overwrite, sink.array(1));
        std::vector<V> step(B * G);
        sink.begin(dgx, dghn, 2 * H, Hs);
        for (std::size_t k = T; k-- > 0;) {
            const std::size_t t = s.t(k);
            const V* hp = k > 0 ? Hs + s.t(k - 1) * BH : in.h0;
            for (std::size_t b = 0; b < B; ++b) {
                V* out = dgx + (t * B + b) * G;
                V* dhh = step.data() + b * G;
                V* dn = dghn + (t * B + b) * H;  // may be hnr: each element read before it is written
                if (!s.valid(t, b)) {
                    std::fill_n(out, G, V(0));
                    std::fill_n(dhh, G, V(0));
                    std::fill_n(dn, H, V(0));
                    continue;
                }
                const V* a = A + (t * B + b) * G;
                const V *r = a, *z = a + H, *n = a + 2 * H;
                const V* hnr = HN + t * BH + b * H;
                const V* gyr = gy + t * BH + b * H;
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
                    dhh[2 * H + j] = dn[j] = dpre_n * r[j];
                    dr[j] = dhj * z[j];  // h' = ... + z * h: the direct path; the GEMM adds the rest
                }
                std::copy_n(dx.data(), G, out);
            }
            sink.step_done(T - k);
            gemm<V>(step.data(), in.w_hh, D, B, G, H, false, false, V(1));  // d h_{t-1}
        }
        sink.end(D, nullptr);
    }
};

// ---- the drivers: one direction, or both at once ------------------------------------------------

// One direction as one tape entry (plus the final-states entry). Unpadded, the output is the states
// array itself and backward reads the states from it.
template <template <class> class K, class V>
SequenceResult run_one(const Seq& s, const std::vector<Tensor>& inputs) {
    auto k = std::make_shared<K<V>>();
    k->forward(s, raw_inputs<V>(s, inputs));
    auto link = std::make_shared<FinalsLink<V>>();
    const bool padded = s.padded();
    xt::xarray<V> out = padded ? masked_output<V>(s, k->hs) : std::move(k->hs);
    const Tensor y = detail::result(s.op, std::move(out), inputs, [s, k, link](BackwardCtx& c) {
        const Raw<V> in = raw_inputs<V>(s, c);
        const V* Hs = s.padded() ? k->hs.data() : c.out<V>().data();
        xt::xarray<V> gy = c.take_grad_out<V>();
        const std::vector<V> fin = finals_grad<V>(*link, K<V>::states, 1, 0, s.BH());
        *link = {};  // taken: free the final states' gradient
        const bool overwrite = !c.retain_graph();
        // With two or more BLAS threads (and not inside another op's split), the products over all
        // steps run on a second thread while the recurrence runs (GradSink).
        const bool pipelined = s.T > 1 && detail::can_run_two();
        GradSink<V> sink(s, in, grad_buffers<V>(c, s), pipelined);
        if (!pipelined) return k->backward(s, in, Hs, gy.data(), fin.data(), sink, overwrite);
        detail::run_two(
            [&] {
                try {
                    k->backward(s, in, Hs, gy.data(), fin.data(), sink, overwrite);
                    sink.help();
                } catch (...) {
                    sink.fail();
                    throw;
                }
            },
            [&] { sink.consume(); });
        sink.finish();
    });
    return finish<V>({&s}, y, {k->state_bufs(padded ? k->hs.data() : y.value<V>().data())}, link);
}

// Both directions of a bidirectional layer as one tape entry: output [T, B, 2H] (forward states,
// then reverse), h_n [2, B, H]. Forward and backward each run the two directions through run_two:
// at once when the BLAS has two or more threads, unless an input of the reverse direction is also
// one of the forward's (their gradients would then share a buffer), one after the other otherwise.
template <template <class> class K, class V>
SequenceResult run_both(const char* op, const Seq& s0, const Seq& s1, const std::vector<Tensor>& inputs) {
    bool apart = true;
    for (std::size_t i = s1.first; i < s1.end(); ++i)
        for (std::size_t j = 0; j < s0.end(); ++j) apart = apart && !inputs[i].same(inputs[j]);
    auto k0 = std::make_shared<K<V>>(), k1 = std::make_shared<K<V>>();
    const Raw<V> raw0 = raw_inputs<V>(s0, inputs), raw1 = raw_inputs<V>(s1, inputs);
    detail::run_two([&] { k0->forward(s0, raw0); }, [&] { k1->forward(s1, raw1); });
    const std::size_t T = s0.T, B = s0.B, H = s0.H;
    xt::xarray<V> out = xt::xarray<V>::from_shape({T, B, 2 * H});
    for (std::size_t t = 0; t < T; ++t)
        for (std::size_t b = 0; b < B; ++b) {
            V* o = out.data() + (t * B + b) * 2 * H;
            const std::size_t r = (t * B + b) * H;
            if (s0.valid(t, b)) {
                std::copy_n(k0->hs.data() + r, H, o);
                std::copy_n(k1->hs.data() + r, H, o + H);
            } else {
                std::fill_n(o, 2 * H, V(0));
            }
        }
    auto link = std::make_shared<FinalsLink<V>>();
    const Tensor y = detail::result(op, std::move(out), inputs, [s0, s1, k0, k1, link, apart](BackwardCtx& c) {
        const std::size_t T = s0.T, B = s0.B, H = s0.H, F = s0.F, BH = s0.BH(), S = K<V>::states;
        const V* gy = c.grad_out<V>().data();
        xt::xarray<V> g0 = xt::xarray<V>::from_shape({T, B, H}), g1 = xt::xarray<V>::from_shape({T, B, H});
        for (std::size_t r = 0; r < T * B; ++r) {
            std::copy_n(gy + r * 2 * H, H, g0.data() + r * H);
            std::copy_n(gy + r * 2 * H + H, H, g1.data() + r * H);
        }
        const std::vector<V> fin0 = finals_grad<V>(*link, S, 2, 0, BH), fin1 = finals_grad<V>(*link, S, 2, 1, BH);
        *link = {};  // taken: free the final states' gradient
        const Raw<V> in0 = raw_inputs<V>(s0, c), in1 = raw_inputs<V>(s1, c);
        // x's gradient: the forward direction's into x's buffer, the reverse one's apart, then added.
        std::vector<V> dx1(c.needs(0) ? T * B * F : 0);
        const Grads<V> gr0 = grad_buffers<V>(c, s0), gr1 = grad_buffers<V>(c, s1, dx1.empty() ? nullptr : dx1.data());
        const bool overwrite = !c.retain_graph();
        GradSink<V> sink0(s0, in0, gr0, false), sink1(s1, in1, gr1, false);
        detail::run_two([&] { k0->backward(s0, in0, k0->hs.data(), g0.data(), fin0.data(), sink0, overwrite); },
                        [&] { k1->backward(s1, in1, k1->hs.data(), g1.data(), fin1.data(), sink1, overwrite); },
                        apart);
        for (std::size_t i = 0; i < dx1.size(); ++i) gr0.dx[i] += dx1[i];
    });
    return finish<V>({&s0, &s1}, y, {k0->state_bufs(k0->hs.data()), k1->state_bufs(k1->hs.data())}, link);
}

// Checks one direction's inputs, lays them out in Seq's order and runs them as one op.
template <template <class> class K>
SequenceResult run_unidirectional(Cell cell, std::size_t gates, const Tensor& x, const Tensor& h0, const Tensor* c0,
                                  const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                                  bool reverse, const std::vector<std::int64_t>& lengths, bool relu) {
    Seq s = check_inputs(names(cell).one, cell, gates, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, lengths);
    s.relu = relu;
    std::vector<Tensor> inputs{x};
    add_inputs(inputs, s, h0, c0, w_ih, w_hh, b_ih, b_hh);
    return dispatch(x.dtype(), [&]<class V>(V) { return run_one<K, V>(s, inputs); });
}

// Checks both directions (each named in its messages), lays out the inputs (x, then the forward
// direction's, then the reverse one's) and runs them as one op.
template <template <class> class K>
SequenceResult run_bidirectional(Cell cell, std::size_t gates, const Tensor& x, const DirectionWeights& fw,
                                 const DirectionWeights& rv, bool reverse_option,
                                 const std::vector<std::int64_t>& lengths, bool relu) {
    const CellNames& n = names(cell);
    if (reverse_option)
        throw ValueError(fmt::format("{}: options.reverse must be false: the op runs both directions", n.both));
    const bool lstm = cell == Cell::lstm;
    if (!lstm && (fw.c0.defined() || rv.c0.defined()))
        throw ValueError(fmt::format("{}: c0 is given, but only an LSTM has a cell state; leave it undefined", n.both));
    Seq s0 = check_inputs(n.both_forward, cell, gates, x, fw.h0, lstm ? &fw.c0 : nullptr, fw.w_ih, fw.w_hh, fw.b_ih,
                          fw.b_hh, false, lengths);
    Seq s1 = check_inputs(n.both_reverse, cell, gates, x, rv.h0, lstm ? &rv.c0 : nullptr, rv.w_ih, rv.w_hh, rv.b_ih,
                          rv.b_hh, true, lengths);
    if (s1.H != s0.H)
        throw ShapeError(fmt::format("{}: the directions' hidden sizes differ: w_hh {} and {}", n.both_forward,
                                     shape_str(fw.w_hh.shape()), shape_str(rv.w_hh.shape())));
    s0.relu = s1.relu = relu;
    std::vector<Tensor> inputs{x};
    add_inputs(inputs, s0, fw.h0, lstm ? &fw.c0 : nullptr, fw.w_ih, fw.w_hh, fw.b_ih, fw.b_hh);
    s1.first = s0.end();
    add_inputs(inputs, s1, rv.h0, lstm ? &rv.c0 : nullptr, rv.w_ih, rv.w_hh, rv.b_ih, rv.b_hh);
    return dispatch(x.dtype(), [&]<class V>(V) { return run_both<K, V>(n.both, s0, s1, inputs); });
}

}  // namespace

// ---- the ops ------------------------------------------------------------------------------------
SequenceResult rnn_sequence(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                            const Tensor& b_ih, const Tensor& b_hh, const RNNSequenceOptions& options) {
    return run_unidirectional<ElmanKernel>(Cell::elman, 1, x, h0, nullptr, w_ih, w_hh, b_ih, b_hh, options.reverse,
                                           options.lengths, options.relu);
}

SequenceResult lstm_sequence(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                             const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                             const SequenceOptions& options) {
    return run_unidirectional<LSTMKernel>(Cell::lstm, 4, x, h0, &c0, w_ih, w_hh, b_ih, b_hh, options.reverse,
                                          options.lengths, false);
}

SequenceResult gru_sequence(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                            const Tensor& b_ih, const Tensor& b_hh, const SequenceOptions& options) {
    return run_unidirectional<GRUKernel>(Cell::gru, 3, x, h0, nullptr, w_ih, w_hh, b_ih, b_hh, options.reverse,
                                         options.lengths, false);
}

SequenceResult rnn_sequence_bidirectional(const Tensor& x, const DirectionWeights& forward,
                                          const DirectionWeights& reverse, const RNNSequenceOptions& options) {
    return run_bidirectional<ElmanKernel>(Cell::elman, 1, x, forward, reverse, options.reverse, options.lengths,
                                          options.relu);
}

SequenceResult lstm_sequence_bidirectional(const Tensor& x, const DirectionWeights& forward,
                                           const DirectionWeights& reverse, const SequenceOptions& options) {
    return run_bidirectional<LSTMKernel>(Cell::lstm, 4, x, forward, reverse, options.reverse, options.lengths, false);
}

SequenceResult gru_sequence_bidirectional(const Tensor& x, const DirectionWeights& forward,
                                          const DirectionWeights& reverse, const SequenceOptions& options) {
    return run_bidirectional<GRUKernel>(Cell::gru, 3, x, forward, reverse, options.reverse, options.lengths, false);
}

}  // namespace tapegrad
