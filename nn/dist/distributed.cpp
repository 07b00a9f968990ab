// tapegrad::dist: the MPI layer of data-parallel training. Every MPI call goes through check(),
// which turns an error code into MPIError (the world communicator returns errors instead of
// aborting); counts above INT_MAX are split into pieces; gradients travel in fixed-order buckets.
#include "distributed.hpp"

#if TAPEGRAD_DIST_MPI
#include <mpi.h>
#else
#include "detail/mpi_single.hpp"  // a job of one process, without MPI
#endif

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>

#include <fmt/format.h>

#include "../../autograd/random.hpp"
#include "../data/sequence.hpp"

namespace tapegrad::dist {

namespace {

bool g_alive = false;        // an Environment exists
bool g_we_initialized = false;  // it called MPI_Init_thread (and so finalizes)

void check(int rc, const char* where, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = std::snprintf(text, sizeof text, "error code %d", rc);
    throw MPIError(fmt::format("{}: {} failed: {}", where, call, std::string(text, static_cast<std::size_t>(len))));
}

void require_env(const char* where) {
    if (!g_alive)
        throw UsageError(fmt::format("{}: no dist::Environment is alive (create one at the start of main)", where));
}

template <class T>
MPI_Datatype mpi_type() {
    return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

// The fixed-order sum: an operation declared non-commutative, so MPI combines rank 0's value with
// rank 1's, then rank 2's, and so on (MPI standard 6.9.1), and hands everyone the one result.
template <class T>
void ordered_sum(void* in, void* inout, int* len, MPI_Datatype*) {
    const T* a = static_cast<const T*>(in);  // the lower ranks' partial sum
    T* b = static_cast<T*>(inout);           // the higher rank's value: result = a + b
    for (int i = 0; i < *len; ++i) b[i] = a[i] + b[i];
}

MPI_Op g_ordered_sum_f32 = MPI_OP_NULL, g_ordered_sum_f64 = MPI_OP_NULL;

template <class T>
MPI_Op ordered_sum_op() {
    return std::is_same_v<T, float> ? g_ordered_sum_f32 : g_ordered_sum_f64;
}

template <class T>
void all_reduce_impl(std::span<T> data, ReduceOp op, const ReduceOptions& options) {
    require_env("dist::all_reduce");
    const std::size_t limit = options.max_count ? options.max_count : static_cast<std::size_t>(INT_MAX);
    if (limit > static_cast<std::size_t>(INT_MAX))
        throw ValueError(fmt::format("dist::all_reduce: max_count {} exceeds INT_MAX", limit));
    MPI_Op mop = MPI_SUM;
    if (op == ReduceOp::max) mop = MPI_MAX;
    else if (op == ReduceOp::min) mop = MPI_MIN;
    else if (options.deterministic) mop = ordered_sum_op<T>();
    for (std::size_t at = 0; at < data.size(); at += limit) {
        const int n = static_cast<int>(std::min(limit, data.size() - at));
        check(MPI_Allreduce(MPI_IN_PLACE, data.data() + at, n, mpi_type<T>(), mop, MPI_COMM_WORLD), "dist::all_reduce",
              "MPI_Allreduce");
    }
    if (op == ReduceOp::mean) {
        const T scale = T(1) / static_cast<T>(size());
        for (T& x : data) x *= scale;
    }
}

template <class T>
void broadcast_impl(std::span<T> data, int root) {
    require_env("dist::broadcast");
    const auto limit = static_cast<std::size_t>(INT_MAX);
    for (std::size_t at = 0; at < data.size(); at += limit) {
        const int n = static_cast<int>(std::min(limit, data.size() - at));
        check(MPI_Bcast(data.data() + at, n, mpi_type<T>(), root, MPI_COMM_WORLD), "dist::broadcast", "MPI_Bcast");
    }
}

// A fingerprint of names (optional), shapes and dtypes, compared over the ranks with min and max.
std::uint64_t fnv(std::uint64_t h, const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
std::uint64_t fingerprint(const std::vector<Tensor>& ts) {
    std::uint64_t h = 14695981039346656037ull;
    const std::size_t count = ts.size();
    h = fnv(h, &count, sizeof count);
    for (const Tensor& t : ts) {
        const auto dt = static_cast<std::uint8_t>(t.dtype());
        h = fnv(h, &dt, 1);
        for (std::size_t d : t.shape()) h = fnv(h, &d, sizeof d);
        const std::size_t end = ~std::size_t(0);
        h = fnv(h, &end, sizeof end);
    }
    return h;
}
// Every rank learns whether all ranks hold the same fingerprint; a mismatch throws on every rank.
void check_same_everywhere(std::uint64_t h, const char* where, const char* what) {
    unsigned long long v[2] = {h, ~h};  // max of h and max of ~h (= ~min h)
    check(MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD), where, "MPI_Allreduce");
    if (v[0] != ~v[1])
        throw ValueError(fmt::format("{}: the ranks' {} differ (number, shapes or dtypes); every rank must build the "
                                     "same model",
                                     where, what));
}

template <class T>
void broadcast_tensor(const Tensor& t, int root) {
    auto& v = const_cast<Tensor&>(t).mutable_value<T>();
    broadcast_impl<T>(std::span<T>(v.data(), v.size()), root);
}

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void check_rank(const char* where, int rank, int size) {
    if (size <= 0 || rank < 0 || rank >= size)
        throw ValueError(fmt::format("{}: rank {} is not in [0, size = {})", where, rank, size));
}

}  // namespace

// ---- environment ----------------------------------------------------------------------------

Environment::Environment(int* argc, char*** argv) {
    if (g_alive) throw UsageError("dist::Environment: another Environment is alive (create one, in main)");
    int done = 0;
    MPI_Finalized(&done);
    if (done) throw UsageError("dist::Environment: MPI was already finalized and cannot start again");
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) throw MPIError(fmt::format("dist::Environment: MPI_Init_thread failed (code {})", rc));
        g_we_initialized = true;
    }
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "dist::Environment", "MPI_Comm_set_errhandler");
    check(MPI_Op_create(&ordered_sum<float>, 0, &g_ordered_sum_f32), "dist::Environment", "MPI_Op_create");
    check(MPI_Op_create(&ordered_sum<double>, 0, &g_ordered_sum_f64), "dist::Environment", "MPI_Op_create");
    g_alive = true;
}

Environment::~Environment() {
    g_alive = false;
    MPI_Op_free(&g_ordered_sum_f32);
    MPI_Op_free(&g_ordered_sum_f64);
    if (g_we_initialized) {
        g_we_initialized = false;
        MPI_Finalize();
    }
}

int Environment::rank() const { return dist::rank(); }
int Environment::size() const { return dist::size(); }

bool initialized() { return g_alive; }

int rank() {
    require_env("dist::rank");
    int r = 0;
    check(MPI_Comm_rank(MPI_COMM_WORLD, &r), "dist::rank", "MPI_Comm_rank");
    return r;
}

int size() {
    require_env("dist::size");
    int s = 1;
    check(MPI_Comm_size(MPI_COMM_WORLD, &s), "dist::size", "MPI_Comm_size");
    return s;
}

bool is_main() { return rank() == 0; }

void barrier() {
    require_env("dist::barrier");
    check(MPI_Barrier(MPI_COMM_WORLD), "dist::barrier", "MPI_Barrier");
}

// ---- reductions and broadcast ---------------------------------------------------------------

void all_reduce(std::span<float> data, ReduceOp op, const ReduceOptions& options) { all_reduce_impl(data, op, options); }
void all_reduce(std::span<double> data, ReduceOp op, const ReduceOptions& options) { all_reduce_impl(data, op, options); }

double all_reduce(double value, ReduceOp op) {
    all_reduce(std::span<double>(&value, 1), op);
    return value;
}

void broadcast(std::span<float> data, int root) { broadcast_impl(data, root); }
void broadcast(std::span<double> data, int root) { broadcast_impl(data, root); }

void broadcast(std::string& text, int root) {
    require_env("dist::broadcast");
    unsigned long long n = text.size();
    check(MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD), "dist::broadcast", "MPI_Bcast");
    text.resize(static_cast<std::size_t>(n));
    const auto limit = static_cast<std::size_t>(INT_MAX);
    for (std::size_t at = 0; at < text.size(); at += limit) {
        const int c = static_cast<int>(std::min(limit, text.size() - at));
        check(MPI_Bcast(text.data() + at, c, MPI_CHAR, root, MPI_COMM_WORLD), "dist::broadcast", "MPI_Bcast");
    }
}

void broadcast_tensors(const std::vector<Tensor>& tensors, int root) {
    require_env("dist::broadcast_tensors");
    for (std::size_t i = 0; i < tensors.size(); ++i)
        if (!tensors[i].defined())
            throw ValueError(fmt::format("dist::broadcast_tensors: tensor {} is undefined", i));
    check_same_everywhere(fingerprint(tensors), "dist::broadcast_tensors", "tensors");
    for (const Tensor& t : tensors) {
        if (t.dtype() == DType::f32) broadcast_tensor<float>(t, root);
        else broadcast_tensor<double>(t, root);
    }
}

void broadcast_parameters(const nn::Module& module, int root) {
    require_env("dist::broadcast_parameters");
    std::uint64_t names = 14695981039346656037ull;
    for (const auto& [name, t] : module.named_parameters()) names = fnv(names, name.data(), name.size() + 1);
    check_same_everywhere(names, "dist::broadcast_parameters", "parameter names");
    broadcast_tensors(module.parameters(), root);
}

// ---- gradient buckets -----------------------------------------------------------------------

GradientReducer::GradientReducer(std::vector<Tensor> params, GradientReducerOptions options)
    : params_(std::move(params)), options_(options) {
    require_env("dist::GradientReducer");
    for (std::size_t i = 0; i < params_.size(); ++i)
        if (!params_[i].defined()) throw ValueError(fmt::format("dist::GradientReducer: parameter {} is undefined", i));
    if (options_.bucket_bytes < sizeof(double))
        throw ValueError(fmt::format("dist::GradientReducer: bucket_bytes must be at least {}, got {}", sizeof(double),
                                     options_.bucket_bytes));
    check_same_everywhere(fingerprint(params_), "dist::GradientReducer", "parameters");
    // The plan: float32 parameters first, then float64, each stream cut into buckets of at most
    // bucket_bytes; a parameter that does not fit the rest of a bucket continues in the next.
    for (DType dt : {DType::f32, DType::f64}) {
        const std::size_t cap = options_.bucket_bytes / (dt == DType::f32 ? sizeof(float) : sizeof(double));
        Bucket cur{dt, 0, {}};
        for (std::size_t i = 0; i < params_.size(); ++i) {
            if (params_[i].dtype() != dt) continue;
            const std::size_t n = params_[i].numel();
            for (std::size_t off = 0; off < n;) {
                const std::size_t take = std::min(n - off, cap - cur.elements);
                cur.pieces.push_back({i, off, take});
                cur.elements += take;
                off += take;
                if (cur.elements == cap) buckets_.push_back(std::exchange(cur, Bucket{dt, 0, {}}));
            }
        }
        if (cur.elements) buckets_.push_back(std::move(cur));
    }
    std::size_t max32 = 0, max64 = 0;
    for (const Bucket& b : buckets_) (b.dtype == DType::f32 ? max32 : max64) = std::max(b.dtype == DType::f32 ? max32 : max64, b.elements);
    buffer_f32_.resize(max32);
    buffer_f64_.resize(max64);
    has_grad_.resize(params_.size());
}

std::size_t GradientReducer::num_elements() const {
    std::size_t n = 0;
    for (const Bucket& b : buckets_) n += b.elements;
    return n;
}

namespace {
template <class T>
void reduce_bucket(const GradientReducer::Bucket& b, std::vector<Tensor>& params, std::vector<T>& buffer,
                   const ReduceOptions& options, int nranks) {
    T* buf = buffer.data();
    std::size_t at = 0;
    for (const auto& piece : b.pieces) {
        // A parameter without a gradient on any rank (it shares the bucket with some that have
        // one) sends zeros and gets nothing back.
        const Array* g = params[piece.param].grad_array();
        if (g) std::memcpy(buf + at, std::get<xt::xarray<T>>(*g).data() + piece.offset, piece.count * sizeof(T));
        else std::fill(buf + at, buf + at + piece.count, T(0));
        at += piece.count;
    }
    all_reduce(std::span<T>(buf, b.elements), ReduceOp::sum, options);
    // Scaling on the way back: x * (1 / size) is exact for 1, 2, 4, 8 ranks and the same bits on
    // every rank for any size.
    const T scale = T(1) / static_cast<T>(nranks);
    at = 0;
    for (const auto& piece : b.pieces) {
        Array* ga = params[piece.param].mutable_grad_array();
        if (!ga) {
            at += piece.count;
            continue;
        }
        auto& g = std::get<xt::xarray<T>>(*ga);
        T* out = g.data() + piece.offset;
        for (std::size_t k = 0; k < piece.count; ++k) out[k] = buf[at + k] * scale;
        at += piece.count;
    }
}
}  // namespace

void GradientReducer::all_reduce() {
    require_env("dist::GradientReducer::all_reduce");
    // Which parameters have a gradient on at least one rank (one small collective).
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Array* g = params_[i].grad_array();
        has_grad_[i] = g != nullptr;
        if (g) {
            const std::size_t n = std::visit([](const auto& a) { return a.size(); }, *g);
            if (n != params_[i].numel())
                throw ShapeError(fmt::format("dist::GradientReducer::all_reduce: parameter {} ({}) has {} elements but "
                                             "its gradient {}",
                                             i, params_[i].name(), params_[i].numel(), n));
        }
    }
    if (size() == 1) return;  // the mean over one rank: the gradients as they are
    if (!has_grad_.empty())
        check(MPI_Allreduce(MPI_IN_PLACE, has_grad_.data(), static_cast<int>(has_grad_.size()), MPI_UINT8_T, MPI_MAX,
                            MPI_COMM_WORLD),
              "dist::GradientReducer::all_reduce", "MPI_Allreduce");
    for (std::size_t i = 0; i < params_.size(); ++i)
        if (has_grad_[i] && !params_[i].grad_array()) params_[i].backward(zeros(params_[i].shape(), params_[i].dtype()));
    const int nranks = size();
    for (const Bucket& b : buckets_) {
        bool any = false;
        for (const auto& piece : b.pieces) any = any || has_grad_[piece.param];
        if (!any) continue;  // the same decision on every rank: has_grad_ was reduced
        if (b.dtype == DType::f32) reduce_bucket<float>(b, params_, buffer_f32_, options_.reduce, nranks);
        else reduce_bucket<double>(b, params_, buffer_f64_, options_.reduce, nranks);
    }
}

// ---- sharding ---------------------------------------------------------------------------------

Range shard_range(std::size_t n, int rank, int size) {
    check_rank("dist::shard_range", rank, size);
    const auto s = static_cast<std::size_t>(size), r = static_cast<std::size_t>(rank);
    const std::size_t base = n / s, extra = n % s;
    const std::size_t begin = r * base + std::min(r, extra);
    return {begin, begin + base + (r < extra ? 1 : 0)};
}

Range shard_range(std::size_t n) { return shard_range(n, rank(), size()); }

std::vector<std::size_t> epoch_shard(std::size_t n, std::uint64_t epoch, std::uint64_t seed, int rank, int size) {
    check_rank("dist::epoch_shard", rank, size);
    const auto s = static_cast<std::size_t>(size), r = static_cast<std::size_t>(rank);
    if (n < s) throw ValueError(fmt::format("dist::epoch_shard: {} examples cannot be shared by {} ranks", n, size));
    Generator gen(splitmix64(seed ^ splitmix64(epoch)));
    const std::vector<std::size_t> order = nn::shuffled_indices(n, gen);
    const std::size_t per = n / s;
    return {order.begin() + static_cast<std::ptrdiff_t>(r * per), order.begin() + static_cast<std::ptrdiff_t>((r + 1) * per)};
}

std::vector<std::size_t> epoch_shard(std::size_t n, std::uint64_t epoch, std::uint64_t seed) {
    return epoch_shard(n, epoch, seed, rank(), size());
}

// ---- failures ---------------------------------------------------------------------------------

int run_guarded(const std::function<int()>& body) {
    std::string what;
    try {
        return body();
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
        what = "an exception that is not a std::exception";
    }
    int r = 0, s = 1;
    if (g_alive) {
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
        MPI_Comm_size(MPI_COMM_WORLD, &s);
    }
    std::fprintf(stderr, "rank %d: %s\n", r, what.c_str());
    std::fflush(stderr);
    if (g_alive && s > 1) {
        std::fprintf(stderr, "rank %d: stopping all %d ranks (MPI_Abort)\n", r, s);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 1;
}

}  // namespace tapegrad::dist
