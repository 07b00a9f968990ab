// tapegrad: the tape engine (recording, the reverse sweep) and the checks every op shares.
#include "tape.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <unordered_map>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <xtensor/xbuilder.hpp>

#include "detail/op.hpp"

namespace tapegrad {

using detail::Entry;
using detail::Node;
using detail::TapeState;

namespace {
// This thread's active tapes, innermost last. Each holds the tape's state as well as the Tape, so
// that a Tape destroyed on another thread (which cannot reach this thread's stack) leaves an entry
// whose state says so (alive == false) instead of a dangling pointer; see drop_foreign_destroyed().
struct ActiveTape {
    Tape* tape;
    std::shared_ptr<TapeState> state;
};
thread_local std::vector<ActiveTape> t_tapes;

// Drops the entries of tapes destroyed on another thread from this thread's stack; when there were
// any, a UsageError naming op, so that the ops that would have recorded on such a tape fail loudly
// once (then the stack is sound again) rather than record into a tape nobody can run backward on.
void drop_foreign_destroyed(const char* op) {
    const auto dead = [](const ActiveTape& a) { return !a.state->alive.load(std::memory_order_acquire); };
    if (std::none_of(t_tapes.begin(), t_tapes.end(), dead)) return;
    std::erase_if(t_tapes, dead);
    throw UsageError(fmt::format(
        "{}: a Tape created on this thread was destroyed on another thread; a Tape must be destroyed on the "
        "thread that created it (it is that thread's active tape). Its record is gone: run the forward pass "
        "again under a new Tape",
        op));
}
struct LiveNoGrad {
    const NoGrad* guard;
    const char* file;
    int line;
};
thread_local std::vector<LiveNoGrad> t_nograd;  // innermost last
thread_local int t_anomaly = 0;
thread_local std::vector<Where> t_scopes;  // innermost last

std::string current_where() { return t_scopes.empty() ? std::string() : where_str(t_scopes.back()); }

// The first NaN or Inf of an array: its flat index and value, or false.
bool find_nonfinite(const Array& a, std::size_t& index, double& value) {
    return std::visit(
        [&](const auto& x) {
            const auto* p = x.data();
            for (std::size_t i = 0, n = x.size(); i < n; ++i)
                if (!std::isfinite(p[i])) {
                    index = i;
                    value = static_cast<double>(p[i]);
                    return true;
                }
            return false;
        },
        a);
}

std::string at_where(const std::string& where) { return where.empty() ? std::string() : " at " + where; }

// A training step frees and reallocates the same few-megabyte arrays every time. glibc's defaults
// give each large array fresh pages from the kernel (mmap, or the top of a heap trimmed at every
// step): in a medium RNN that was 1 500 page faults per step and a fifth of the CPU time. So the
// first Tape of the process raises both thresholds, keeping freed memory for reuse; nothing changes
// if the user set either through glibc's own environment variables.
void tune_malloc_once() {
#if defined(__GLIBC__)
    static const bool done = [] {
        if (!std::getenv("MALLOC_MMAP_THRESHOLD_") && !std::getenv("MALLOC_TRIM_THRESHOLD_")) {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 256 << 20);
        }
        return true;
    }();
    (void)done;
#endif
}
}  // namespace

Tape::Tape() : state_(std::make_shared<TapeState>()) {
    tune_malloc_once();
    t_tapes.push_back({this, state_});
}
// On the creating thread the tape leaves the stack here. On another thread this thread's stack
// does not hold it, and the creating thread's stack cannot be reached safely: the tape is marked
// dead, and the creating thread's next op or backward reports it (drop_foreign_destroyed). A
// destructor must not throw, so that is where the user hears of it.
Tape::~Tape() {
    state_->alive.store(false, std::memory_order_release);
    auto it = std::find_if(t_tapes.begin(), t_tapes.end(),
                           [this](const ActiveTape& a) { return a.state == state_; });
    if (it != t_tapes.end()) t_tapes.erase(it);
}
Tape* Tape::active() {
    drop_foreign_destroyed("Tape::active");
    return t_tapes.empty() ? nullptr : t_tapes.back().tape;
}
std::size_t Tape::size() const { return state_->entries.size(); }
bool Tape::consumed() const { return state_->consumed; }
// Values recorded before clear() keep a generation the state has left behind: using one in an op
// that records, or running backward from one, is a UsageError rather than a sweep that finds no
// entries and silently computes nothing.
void Tape::clear() {
    if (state_->in_backward)
        throw UsageError("Tape::clear: called while a backward over this tape is running (from a custom_op's "
                         "backward?); clear the tape after backward returns");
    state_->entries.clear();
    state_->entries.shrink_to_fit();
    state_->consumed = false;
    ++state_->generation;
}

NoGrad::NoGrad(const char* file, int line) { t_nograd.push_back({this, file, line}); }
NoGrad::~NoGrad() {
    // Guards usually end in reverse order of creation, but one held by a pointer may end earlier.
    auto it = std::find_if(t_nograd.rbegin(), t_nograd.rend(),
                           [this](const LiveNoGrad& g) { return g.guard == this; });
    if (it != t_nograd.rend()) t_nograd.erase(std::next(it).base());
}
namespace {
bool recording_now() { return t_nograd.empty() && !t_tapes.empty(); }  // after drop_foreign_destroyed
}  // namespace
bool is_recording() {
    drop_foreign_destroyed("is_recording");
    return recording_now();
}
std::vector<std::string> live_no_grad_guards() {
    std::vector<std::string> out;
    for (const LiveNoGrad& g : t_nograd) out.push_back(fmt::format("{}:{}", g.file ? g.file : "?", g.line));
    return out;
}

DetectAnomaly::DetectAnomaly() { ++t_anomaly; }
DetectAnomaly::~DetectAnomaly() { --t_anomaly; }
bool anomaly_mode() { return t_anomaly > 0; }

std::string where_str(const Where& w) {
    std::string s = w.name ? w.name : "";
    if (w.layer >= 0) s += fmt::format(" layer {}", w.layer);
    if (w.direction) s += fmt::format(" ({})", w.direction);
    if (w.step >= 0) s += fmt::format("{}step {}", s.empty() ? "" : ", ", w.step);
    return s;
}
OpScope::OpScope(const Where& where) { t_scopes.push_back(where); }
OpScope::~OpScope() { t_scopes.pop_back(); }

namespace detail {

void run_backward(TapeState* st, const Tensor& root, const Tensor& grad_output, bool retain) {
    check_defined("backward", root, "root");
    Node& r = *root.node();
    if (!r.requires_grad) {
        // A NoGrad guard still alive here most likely also covered the forward pass: name it, since
        // "no tape active" would send the reader looking for a tape that is there.
        if (!t_nograd.empty())
            throw UsageError(fmt::format(
                "backward: the root (shape {}) does not require grad: {} alive on this thread (created at {}), "
                "so the ops that produced the root recorded nothing{}; end the guard's scope before the "
                "forward pass",
                shape_str(root.shape()),
                t_nograd.size() == 1 ? std::string("a NoGrad guard is")
                                     : fmt::format("{} NoGrad guards are", t_nograd.size()),
                fmt::join(live_no_grad_guards(), ", "), t_tapes.empty() ? "" : " although a tape is active"));
        throw UsageError(fmt::format("backward: the root (shape {}) does not require grad: no input of the "
                                     "ops that produced it requires grad, or they ran while no tape was active "
                                     "or a NoGrad guard was alive",
                                     shape_str(root.shape())));
    }
    if (st && st->in_backward)
        throw UsageError("backward: called on a tape whose backward is already running (from inside a backward "
                         "function, such as a custom_op's backward); a backward function must compute its "
                         "gradients with ops, not run backward on the tape that is calling it");
    if (st && st->consumed)
        throw UsageError("backward: this tape's record was already released by an earlier backward; pass "
                         "BackwardOptions{.retain_graph = true} to the earlier call to run backward twice");
    if (st && r.generation != st->generation)
        throw UsageError(fmt::format(
            "backward: the root (shape {}) was recorded before Tape::clear() dropped its tape's record, so no "
            "gradient can flow from it; run backward before clear(), and detach() values that must outlive the "
            "record",
            shape_str(root.shape())));
    Tensor seed;
    if (!grad_output.defined()) {
        if (root.numel() != 1)
            throw UsageError(fmt::format("backward: the root has shape {} ({} elements); backward of a "
                                         "non-scalar needs an explicit grad_output of that shape",
                                         shape_str(root.shape()), root.numel()));
        seed = ones(root.shape(), root.dtype());
    } else {
        if (grad_output.shape() != root.shape())
            throw ShapeError(fmt::format("backward: grad_output has shape {} but the root has shape {}",
                                         shape_str(grad_output.shape()), shape_str(root.shape())));
        check_same_dtype("backward", root, grad_output);
        seed = grad_output;
    }

    // Gradients already retained on intermediates are set aside, so that this sweep propagates only
    // its own contribution, and added back afterwards.
    std::unordered_map<std::shared_ptr<Node>, Array> stash;
    if (st)
        for (Entry& e : st->entries)
            if (e.output->retain && e.output->has_grad) {
                stash.emplace(e.output, std::move(e.output->grad));
                e.output->has_grad = false;
            }

    if (t_anomaly > 0) {
        std::size_t at = 0;
        double v = 0;
        if (find_nonfinite(seed.array(), at, v))
            throw AnomalyError(fmt::format("anomaly: backward's grad_output (shape {}) holds {} at element {}",
                                           shape_str(seed.shape()), v, at));
    }
    dispatch(root.dtype(), [&]<class T>(T) { accumulate_into<T>("backward", r, seed.value<T>()); });
    if (!st) return;  // the root is a leaf: nothing to propagate

    // Without retain_graph the record goes when the sweep ends, however it ends (an error thrown
    // half-way leaves nothing half-released to run again). During the sweep, each entry lets go of
    // its saved arrays and inputs as soon as its backward has run, as PyTorch frees saved tensors:
    // the peak memory of backward is then what is still needed, not the whole forward record.
    struct Release {
        TapeState* st;
        bool retain;
        ~Release() {
            st->in_backward = false;
            if (retain) return;
            st->entries.clear();
            st->entries.shrink_to_fit();
            st->consumed = true;
        }
    } release{st, retain};
    st->in_backward = true;
    auto done = [&](Entry& e) {
        if (retain) return;
        e.backward = nullptr;
        e.inputs.clear();
        e.inputs.shrink_to_fit();
    };
    for (std::size_t i = st->entries.size(); i-- > 0;) {
        Entry& e = st->entries[i];
        Node& out = *e.output;
        if (!out.has_grad) {
            done(e);
            continue;
        }
        for (std::size_t k = 0; k < e.inputs.size(); ++k)
            if (e.inputs[k]->version != e.versions[k])
                throw UsageError(fmt::format("backward: input {} of '{}' (tape entry {}) was modified in place "
                                             "after it was recorded; its backward needs the original value",
                                             k, e.op, i));
        if (out.version != e.output_version)
            throw UsageError(fmt::format("backward: the output of '{}' (tape entry {}) was modified in place "
                                         "after it was recorded",
                                         e.op, i));
        BackwardCtx ctx(e, retain);
        e.backward(ctx);
        if (t_anomaly > 0)
            for (std::size_t k = 0; k < e.inputs.size(); ++k) {
                const Node& in = *e.inputs[k];
                std::size_t at = 0;
                double v = 0;
                if (in.requires_grad && in.has_grad && find_nonfinite(in.grad, at, v))
                    throw AnomalyError(fmt::format(
                        "anomaly: the backward of '{}' (tape entry {}{}) produced {} in the gradient of input {} "
                        "(shape {}), element {}",
                        e.op, i, at_where(e.where), v, k, shape_str(shape_of(in.value)), at));
            }
        if (!out.retain) {
            out.grad = Array();
            out.has_grad = false;
        }
        done(e);
    }
    for (auto& [node, g] : stash)
        std::visit([&, n = node.get()](auto& arr) {  // (clang 14 cannot capture a structured binding)
            using T = typename std::decay_t<decltype(arr)>::value_type;
            accumulate_into<T>("backward", *n, arr);
        }, g);
}

}  // namespace detail

void Tape::backward(const Tensor& root, BackwardOptions options) {
    backward(root, Tensor(), options);
}
void Tape::backward(const Tensor& root, const Tensor& grad_output, BackwardOptions options) {
    detail::check_defined("backward", root, "root");
    const Node& r = *root.node();
    if (r.recorded && r.tape.lock() != state_)
        throw UsageError("backward: the root was recorded on a different tape than the one asked to run backward");
    detail::run_backward(r.recorded ? state_.get() : nullptr, root, grad_output, options.retain_graph);
}

void Tensor::backward() const { backward(Tensor()); }
void Tensor::backward(const Tensor& grad_output) const {
    detail::check_defined("backward", *this, "root");
    const Node& n = *node();
    if (!n.recorded) {
        detail::run_backward(nullptr, *this, grad_output, false);
        return;
    }
    auto st = n.tape.lock();
    if (!st || !st->alive.load(std::memory_order_acquire))
        throw UsageError("backward: the tape that recorded this tensor no longer exists (it went out of scope); "
                         "call backward while the Tape is alive");
    detail::run_backward(st.get(), *this, grad_output, false);
}

// ---- recording ----------------------------------------------------------------------------------
namespace detail {

namespace {
template <class Range>
bool should_record_impl(const char* op, const Range& inputs) {
    std::size_t k = 0;
    for (const Tensor* t : inputs) check_defined(op, *t, "input");
    drop_foreign_destroyed(op);  // names the op; then the stack needs no second scan
    if (!recording_now()) return false;
    bool any = false;
    for (const Tensor* t : inputs) {
        const Node& n = *t->node();
        if (n.requires_grad) any = true;
        if (n.recorded) {
            auto st = n.tape.lock();
            if (!st || !st->alive.load(std::memory_order_acquire))
                throw UsageError(fmt::format(
                    "{}: input {} (shape {}) was recorded on a tape that no longer exists, so no gradient can flow "
                    "through it; call detach() on it to use its value as a constant",
                    op, k, shape_str(t->shape())));
            if (st->consumed)
                throw UsageError(fmt::format(
                    "{}: input {} (shape {}) was recorded on a tape whose record an earlier backward released; "
                    "call detach() on it to carry its value forward (as in truncated BPTT)",
                    op, k, shape_str(t->shape())));
            if (n.generation != st->generation)
                throw UsageError(fmt::format(
                    "{}: input {} (shape {}) was recorded on a tape whose record Tape::clear() dropped since, so no "
                    "gradient can flow through it; call detach() on it to use its value as a constant",
                    op, k, shape_str(t->shape())));
        }
        ++k;
    }
    return any;
}
}  // namespace

bool should_record(const char* op, std::initializer_list<const Tensor*> inputs) {
    return should_record_impl(op, inputs);
}
bool should_record(const char* op, const std::vector<Tensor>& inputs) {
    std::vector<const Tensor*> ptrs;
    ptrs.reserve(inputs.size());
    for (const Tensor& t : inputs) ptrs.push_back(&t);
    return should_record_impl(op, ptrs);
}

Tensor make_output(const char* op, Array value, std::vector<std::shared_ptr<Node>> inputs, bool record,
                   BackwardFn fn) {
    auto out = std::make_shared<Node>();
    out->value = std::move(value);
    if (t_anomaly > 0) {
        std::size_t at = 0;
        double v = 0;
        if (find_nonfinite(out->value, at, v)) {
            const std::string entry =
                record ? fmt::format(", tape entry {}", Tape::active()->state()->entries.size()) : std::string();
            throw AnomalyError(fmt::format("anomaly: '{}' produced {} (element {} of its {} result{}{})", op, v, at,
                                           shape_str(shape_of(out->value)), entry, at_where(current_where())));
        }
    }
    if (record) {
        Tape* tape = Tape::active();
        out->requires_grad = true;
        out->recorded = true;
        out->tape = tape->state();
        out->generation = tape->state()->generation;
        Entry e{op, std::move(inputs), {}, out, 0, std::move(fn), {}};
        e.versions.reserve(e.inputs.size());
        for (const auto& n : e.inputs) e.versions.push_back(n->version);
        if (t_anomaly > 0) e.where = current_where();
        auto& entries = tape->state()->entries;
        entries.push_back(std::move(e));
        tape->state()->consumed = false;
    }
    return Tensor(std::move(out));
}

// ---- checks -------------------------------------------------------------------------------------
void check_defined(const char* op, const Tensor& t, const char* what) {
    if (!t.defined()) throw UsageError(fmt::format("{}: {} is an undefined (default-constructed) tensor", op, what));
}

void check_shape_size(const char* op, const Shape& shape) {
    constexpr std::size_t limit = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
    std::size_t product = 1;
    for (std::size_t d : shape) {
        if (d == 0) continue;
        if (d > limit / product)
            throw ValueError(fmt::format("{}: shape {} is too large: the product of its sizes overflows a 64-bit index",
                                         op, shape_str(shape)));
        product *= d;
    }
}

void check_shape_bytes(const char* op, const Shape& shape, std::size_t elem_size) {
    constexpr std::size_t limit = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
    if (std::find(shape.begin(), shape.end(), std::size_t{0}) != shape.end()) return;  // empty: no bytes
    std::size_t bytes = elem_size;
    for (std::size_t d : shape)
        if (__builtin_mul_overflow(bytes, d, &bytes) || bytes > limit)
            throw ValueError(fmt::format("{}: shape {} is too large: its elements of {} bytes need more than {} bytes, "
                                         "the most one array can hold",
                                         op, shape_str(shape), elem_size, limit));
}

std::size_t checked_add(const char* op, std::size_t a, std::size_t b, const char* what) {
    std::size_t r = 0;
    if (__builtin_add_overflow(a, b, &r))
        throw ValueError(fmt::format("{}: {} overflows: {} + {} exceeds {}", op, what, a, b,
                                     std::numeric_limits<std::size_t>::max()));
    return r;
}

std::size_t checked_mul(const char* op, std::size_t a, std::size_t b, const char* what) {
    std::size_t r = 0;
    if (__builtin_mul_overflow(a, b, &r))
        throw ValueError(fmt::format("{}: {} overflows: {} * {} exceeds {}", op, what, a, b,
                                     std::numeric_limits<std::size_t>::max()));
    return r;
}

void throw_alloc_failed(const char* op, const Shape& shape, std::size_t elem_size) {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;  // checked by check_shape_bytes before any allocation
    throw ValueError(fmt::format("{}: cannot allocate an array of shape {} ({} bytes): out of memory", op,
                                 shape_str(shape), n * elem_size));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
    if (a.dtype() != b.dtype())
        throw DTypeError(fmt::format("{}: dtypes differ: {} {} and {} {}; convert one with .to()", op,
                                     shape_str(a.shape()), dtype_name(a.dtype()), shape_str(b.shape()),
                                     dtype_name(b.dtype())));
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const std::size_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (da != db && da != 1 && db != 1)
            throw ShapeError(fmt::format("{}: shapes {} and {} cannot be broadcast together (axis {} from the end: "
                                         "{} vs {})",
                                         op, shape_str(a), shape_str(b), n - i, da, db));
        out[i] = da == 1 ? db : da;
    }
    // Each input fits, but the broadcast result of two can still be too large (a [n, 1] by [1, m]).
    check_shape_size(op, out);
    check_shape_bytes(op, out, sizeof(double));
    return out;
}

std::size_t norm_axis(const char* op, long axis, const Shape& shape, std::size_t rank_extra) {
    const long rank = static_cast<long>(shape.size() + rank_extra);
    if (rank == 0)
        throw ShapeError(fmt::format("{}: axis {} given for a 0-d tensor (shape []), which has no axes", op, axis));
    const long a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank)
        throw ShapeError(fmt::format("{}: axis {} is out of range for a tensor of shape {} (valid: {} to {})", op,
                                     axis, shape_str(shape), -rank, rank - 1));
    return static_cast<std::size_t>(a);
}

template <class T>
xt::xarray<T> sum_axis(const xt::xarray<T>& x, std::size_t axis) {
    const Shape s = to_shape(x.shape());
    std::size_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < axis; ++i) outer *= s[i];
    for (std::size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
    const std::size_t n = s[axis];
    Shape out = s;
    out[axis] = 1;
    xt::xarray<T> y = xt::zeros<T>(out);
    const T* src = x.data();
    T* dst = y.data();
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t k = 0; k < n; ++k) {
            const T* row = src + (o * n + k) * inner;
            T* acc = dst + o * inner;
            for (std::size_t i = 0; i < inner; ++i) acc[i] += row[i];
        }
    return y;
}

template <class T>
T sum_all(const xt::xarray<T>& x) {
    double acc = 0;
    const T* p = x.data();
    for (std::size_t i = 0, n = x.size(); i < n; ++i) acc += static_cast<double>(p[i]);
    return static_cast<T>(acc);
}

template <class T>
xt::xarray<T> sum_to(const xt::xarray<T>& g, const Shape& target) {
    const std::size_t gd = g.dimension(), td = target.size();
    if (shapes_equal(g.shape(), target)) return g;
    xt::xarray<T> s = g;
    for (std::size_t i = 0; i < gd; ++i)
        if (i < gd - td || (target[i - (gd - td)] == 1 && g.shape()[i] != 1)) s = sum_axis(s, i);
    s.reshape(target);
    return s;
}
template xt::xarray<float> sum_axis(const xt::xarray<float>&, std::size_t);
template xt::xarray<double> sum_axis(const xt::xarray<double>&, std::size_t);
template float sum_all(const xt::xarray<float>&);
template double sum_all(const xt::xarray<double>&);
template xt::xarray<float> sum_to(const xt::xarray<float>&, const Shape&);
template xt::xarray<double> sum_to(const xt::xarray<double>&, const Shape&);

}  // namespace detail
}  // namespace tapegrad
