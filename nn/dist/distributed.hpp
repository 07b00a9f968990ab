/// \file
/// \brief Data-parallel training across processes with MPI: ranks, broadcast of a model, the
/// averaged all-reduce of gradients, reductions of metrics, data sharding and a failure guard.
/// \ingroup dist
///
/// Every process (a "rank") holds a whole copy of the model and trains it on its own share of the
/// data; after backward, the gradients are averaged over the ranks, so every rank takes the same
/// optimizer step and the copies stay equal. The layer is small on purpose (Marian's MPI wrapper
/// and Flashlight's distributed module are the models): an Environment object, rank()/size(),
/// broadcast, all-reduce, barrier. A program written against it runs unchanged as one process
/// without mpirun: MPI starts as a singleton of size 1 and every collective returns its input.
///
/// Include <tapegrad/nn/dist/distributed.hpp> and link tapegrad::dist. It runs over MPI when CMake
/// found MPI; without MPI (and in the sanitizer builds) it is a stand-in for a job of one process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../layers/module.hpp"

namespace tapegrad::dist {

/// An MPI call that failed: the message names the tapegrad function, the MPI call and MPI's own
/// error text. MPI's errors are returned to tapegrad (MPI_ERRORS_RETURN on the world communicator)
/// and translated into this exception rather than aborting inside the MPI library.
class MPIError : public Error {
public:
    using Error::Error;
};

/// Starts MPI when constructed and finalizes it when destroyed (RAII). Create exactly one, first
/// thing in main(), before any other function of this namespace. Without mpirun the process
/// starts as a singleton: rank 0 of 1.
///
/// The world communicator's error handler is set to MPI_ERRORS_RETURN, so a failing MPI call
/// throws MPIError. If MPI was already initialized by someone else, the Environment uses it and
/// leaves finalizing to them. A second Environment alive at the same time is a UsageError.
class Environment {
public:
    /// Initializes MPI (MPI_Init_thread with MPI_THREAD_FUNNELED: only the thread that made the
    /// Environment calls MPI). argc and argv may be null. Throws MPIError when MPI cannot start,
    /// UsageError when MPI was already finalized or another Environment is alive.
    Environment(int* argc = nullptr, char*** argv = nullptr);
    /// Finalizes MPI, if this object initialized it. Never throws.
    ~Environment();
    Environment(const Environment&) = delete;
    Environment& operator=(const Environment&) = delete;

    /// This process's rank, 0 .. size() - 1.
    int rank() const;
    /// The number of processes in the job (1 without mpirun).
    int size() const;
    /// Whether this is rank 0, the rank that logs and writes checkpoints.
    bool is_main() const { return rank() == 0; }
};

/// Whether an Environment is alive (MPI initialized and not finalized by it).
bool initialized();
/// This process's rank. UsageError when no Environment is alive.
int rank();
/// The number of processes. UsageError when no Environment is alive.
int size();
/// rank() == 0. UsageError when no Environment is alive.
bool is_main();
/// Waits until every rank has called barrier(). Throws MPIError on failure.
void barrier();

/// How values are combined over the ranks by the all_reduce functions.
enum class ReduceOp {
    sum,   ///< /< the sum over ranks
    mean,  ///< /< the sum divided by size()
    max,   ///< /< the largest value
    min,   ///< /< the smallest value
};

/// Options of the in-place all-reduce of a buffer.
struct ReduceOptions {
    /// The most elements one MPI call carries. MPI counts are int, so a longer buffer is reduced
    /// in pieces of at most this many elements; the default is INT_MAX. A smaller value (at least
    /// 1, else ValueError) only exists to test the splitting.
    std::size_t max_count = 0;
    /// Sum in a fixed order: rank 0's value + rank 1's + ... (a non-commutative MPI operation, so
    /// Open MPI reduces in rank order and sends one result to every rank). Every rank gets the
    /// same bits, and a rerun with the same number of ranks the same numbers. false uses MPI_SUM,
    /// whose association may depend on the algorithm MPI picks. Ignored by max and min, which are
    /// exact.
    bool deterministic = true;
};

/// Reduces `data` over the ranks in place: afterwards every rank holds the same combined values.
/// Every rank must call it with the same length and op. float32 sums in float32. A length that
/// differs between ranks is undefined behaviour of MPI (usually a hang or MPIError), so the caller
/// keeps lengths in step. Throws MPIError on failure and UsageError without an Environment.
void all_reduce(std::span<float> data, ReduceOp op, const ReduceOptions& options = {});
/// The same in float64.
void all_reduce(std::span<double> data, ReduceOp op, const ReduceOptions& options = {});
/// One number (a loss, a count, a time) combined over the ranks, for logging; the sum and mean are
/// computed in float64 in rank order.
double all_reduce(double value, ReduceOp op);

/// Sends `data` from rank `root` to every rank, in place (the other ranks' contents are
/// overwritten). Same length on every rank; pieces of at most INT_MAX elements.
void broadcast(std::span<float> data, int root = 0);
/// The same in float64.
void broadcast(std::span<double> data, int root = 0);
/// Sends a string (e.g. a configuration or a generator's state) from `root`; the others' strings
/// are replaced, whatever their length.
void broadcast(std::string& text, int root = 0);

/// Copies every parameter of `module` from rank `root` to all ranks, so training starts from one
/// model even when each rank initialised its own with a different seed. (Modules keep no buffers
/// besides their parameters; optimizer state starts empty or is restored from one checkpoint by
/// every rank.) The ranks' models must have the same parameter names, shapes and dtypes, in the
/// same order: otherwise every rank throws ValueError (checked with a collective, so no rank is
/// left waiting). Gradients are left alone.
void broadcast_parameters(const nn::Module& module, int root = 0);
/// The same for a list of tensors (values only), which must agree in number, shape and dtype.
void broadcast_tensors(const std::vector<Tensor>& tensors, int root = 0);

/// Options of GradientReducer.
struct GradientReducerOptions {
    /// The largest bucket in bytes (default 4 MiB). Gradients are packed in parameter order into
    /// buckets of at most this size; a tensor that does not fit the rest of a bucket continues in
    /// the next one. At least the size of one element of each dtype, else ValueError.
    std::size_t bucket_bytes = std::size_t(4) << 20;
    /// Passed to all_reduce for each bucket (max_count, deterministic).
    ReduceOptions reduce{};
};

/// Averages the parameters' gradients over the ranks after backward, before clipping and the
/// optimizer step:
///   dist::GradientReducer reducer(model.parameters());
///   ... backward ...; reducer.all_reduce(); nn::clip_grad_norm(...); opt.step();
/// With a loss that is a mean over each rank's B/size examples, the averaged gradient is the
/// gradient of the mean over all B.
///
/// float32 and float64 parameters are packed separately (each into its own buckets of its dtype),
/// in the order the parameters were given, which is the same on every rank for the same model.
/// Each bucket is reduced in place with all_reduce(sum) and scaled by 1 / size() on the way back.
/// A parameter without a gradient on some ranks gets a zero gradient there when another rank has
/// one (so all ranks step it alike); a parameter without a gradient on every rank keeps none and
/// the optimizer skips it, as in one process.
class GradientReducer {
public:
    /// Fixes the parameters and plans the buckets. Collective: checks that every rank passed the
    /// same number of parameters with the same shapes and dtypes (ValueError on every rank
    /// otherwise). An undefined tensor or a bad bucket size is a ValueError.
    explicit GradientReducer(std::vector<Tensor> params, GradientReducerOptions options = {});
    /// One step's all-reduce: every rank's gradients are replaced by their mean over the ranks.
    /// Collective. A gradient whose shape no longer matches its parameter's is a ShapeError.
    void all_reduce();
    /// How many buckets one all_reduce() sends (float32 buckets first, then float64).
    std::size_t num_buckets() const { return buckets_.size(); }
    /// How many gradient elements one all_reduce() sends.
    std::size_t num_elements() const;

    /// One bucket of the plan: which parameters' elements it holds.
    struct Piece {
        std::size_t param = 0;   ///< /< index into the parameters given to the constructor
        std::size_t offset = 0;  ///< /< first element of that parameter's gradient in this piece
        std::size_t count = 0;   ///< /< number of elements in this piece
    };
    /// A bucket: consecutive pieces of parameters of one dtype, at most bucket_bytes in all.
    struct Bucket {
        DType dtype = DType::f32;   ///< /< the dtype of every parameter in the bucket
        std::size_t elements = 0;   ///< /< the sum of the pieces' counts
        std::vector<Piece> pieces;  ///< /< in parameter order
    };
    /// The bucket plan, the same on every rank for the same parameters.
    const std::vector<Bucket>& buckets() const { return buckets_; }

private:
    std::vector<Tensor> params_;
    GradientReducerOptions options_;
    std::vector<Bucket> buckets_;
    std::vector<float> buffer_f32_;   ///< one bucket's worth, reused
    std::vector<double> buffer_f64_;  ///< one bucket's worth, reused
    std::vector<std::uint8_t> has_grad_;  ///< [params], this step's "has a gradient somewhere"
};

/// A half-open range [begin, end) of indices.
struct Range {
    std::size_t begin = 0;  ///< /< first index
    std::size_t end = 0;    ///< /< one past the last index
    /// end - begin.
    std::size_t size() const { return end - begin; }
};

/// Rank `rank`'s contiguous share of n items split over `size` ranks: the first n % size ranks
/// get one item more. For a language model's B parallel streams, rank r trains streams
/// shard_range(B, r, size). size 0 or rank outside [0, size) is a ValueError.
Range shard_range(std::size_t n, int rank, int size);
/// shard_range(n, dist::rank(), dist::size()).
Range shard_range(std::size_t n);

/// Rank `rank`'s share of the example indices 0..n-1 for one epoch: the indices are shuffled with
/// a generator seeded from (seed, epoch), the same permutation on every rank, and cut into size
/// equal consecutive shards, so every rank takes the same number of steps. The last n % size
/// indices of the permutation are dropped in that epoch (a different few each epoch). n < size,
/// size 0 or rank outside [0, size) is a ValueError.
std::vector<std::size_t> epoch_shard(std::size_t n, std::uint64_t epoch, std::uint64_t seed, int rank, int size);
/// epoch_shard(n, epoch, seed, dist::rank(), dist::size()).
std::vector<std::size_t> epoch_shard(std::size_t n, std::uint64_t epoch, std::uint64_t seed);

/// Runs `body` and turns a failure on any rank into the end of the whole job rather than a hang
/// of the others in their next collective. An exception escaping `body` is printed to stderr as
/// "rank N: <what>"; then, in a job of several processes, MPI_Abort ends every rank (mpirun exits
/// non-zero within seconds), and in a single process run_guarded returns 1. Otherwise it returns
/// what body returned. Checkpoints are written atomically, so the last one stays loadable.
int run_guarded(const std::function<int()>& body);

}  // namespace tapegrad::dist
