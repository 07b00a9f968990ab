// tapegrad::dist tests, run by CTest through `mpiexec -np 2` and as a single process without it.
// Every test case is collective: every rank runs the same cases in the same order, and checks what
// it sees. The main creates the dist::Environment before Catch runs anything.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <set>

#include <tapegrad/nn/dist/distributed.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

// Whether every rank holds the same bits in t (max and min over ranks agree element by element).
bool same_on_every_rank(const Tensor& t) {
    xt::xarray<double> v = t.dtype() == f32 ? xt::xarray<double>(t.value<float>()) : t.value<double>();
    std::vector<double> hi(v.begin(), v.end()), lo = hi;
    dist::all_reduce(std::span<double>(hi), dist::ReduceOp::max);
    dist::all_reduce(std::span<double>(lo), dist::ReduceOp::min);
    return hi == lo;
}

// A small language model like examples/char_rnn's: ids [T, B] -> logits [T, B, V].
struct TinyLM : nn::Module {
    nn::Embedding embed;
    std::unique_ptr<nn::RecurrentLayer> rnn;
    nn::Linear head;
    TinyLM(std::size_t vocab, std::size_t hidden)
        : embed(vocab, 6), rnn(nn::make_recurrent(nn::RecurrentKind::gru, {.input_size = 6, .hidden_size = hidden})),
          head(hidden, vocab) {
        register_module("embed", embed);
        register_module("gru", *rnn);
        register_module("head", head);
    }
    Tensor loss(const xt::xarray<std::int64_t>& x, const xt::xarray<std::int64_t>& y) const {
        auto [out, next] = rnn->forward(embed(x), rnn->unpack_state(Tensor()));
        return cross_entropy(head(out), y);
    }
};

// Columns [r.begin, r.end) of a [T, B] block of ids: one rank's streams.
xt::xarray<std::int64_t> columns(const xt::xarray<std::int64_t>& ids, dist::Range r) {
    const std::size_t T = ids.shape()[0], B = ids.shape()[1];
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({T, r.size()});
    for (std::size_t t = 0; t < T; ++t)
        for (std::size_t b = r.begin; b < r.end; ++b) out(t, b - r.begin) = ids(t, b);
    (void)B;
    return out;
}

// Rows [begin, end) of a [N, B] block of ids: inputs, or shifted by one, targets.
xt::xarray<std::int64_t> time_rows(const xt::xarray<std::int64_t>& ids, std::size_t begin, std::size_t end) {
    const std::size_t B = ids.shape()[1];
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({end - begin, B});
    std::copy(ids.data() + begin * B, ids.data() + end * B, out.data());
    return out;
}

xt::xarray<std::int64_t> random_ids(std::size_t T, std::size_t B, std::size_t V, Generator& gen) {
    xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape({T, B});
    for (auto& v : ids) v = static_cast<std::int64_t>(gen.randint(V));
    return ids;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    if (a.dtype() == f32) return xt::amax(xt::abs(a.value<float>() - b.value<float>()))();
    return xt::amax(xt::abs(a.value<double>() - b.value<double>()))();
}

}  // namespace

TEST_CASE("dist: rank, size and is_main describe the job", "[dist][collectives]") {
    REQUIRE(dist::initialized());
    REQUIRE(dist::size() >= 1);
    REQUIRE(dist::rank() >= 0);
    REQUIRE(dist::rank() < dist::size());
    REQUIRE(dist::is_main() == (dist::rank() == 0));
    dist::barrier();
}

TEST_CASE("dist: sum, mean, max and min of known values", "[dist][collectives]") {
    const int r = dist::rank(), s = dist::size();
    // Rank r holds r + 1 in every place: the sum is s (s + 1) / 2.
    std::vector<float> a(5, static_cast<float>(r + 1));
    dist::all_reduce(std::span<float>(a), dist::ReduceOp::sum);
    for (float v : a) REQUIRE(v == static_cast<float>(s * (s + 1) / 2));
    std::vector<double> m(3, r + 1.0);
    dist::all_reduce(std::span<double>(m), dist::ReduceOp::mean);
    for (double v : m) REQUIRE(v == Approx((s + 1) / 2.0));
    REQUIRE(dist::all_reduce(double(r), dist::ReduceOp::max) == s - 1);
    REQUIRE(dist::all_reduce(double(r), dist::ReduceOp::min) == 0);
    REQUIRE(dist::all_reduce(2.5, dist::ReduceOp::sum) == 2.5 * s);
    REQUIRE(dist::all_reduce(2.5, dist::ReduceOp::mean) == 2.5);
    // The non-deterministic (MPI_SUM) path gives the same on these exact values.
    std::vector<float> b(4, static_cast<float>(r + 1));
    dist::all_reduce(std::span<float>(b), dist::ReduceOp::sum, {.deterministic = false});
    for (float v : b) REQUIRE(v == static_cast<float>(s * (s + 1) / 2));
}

TEST_CASE("dist: a buffer longer than one MPI call's count is reduced in pieces", "[dist][collectives]") {
    const int r = dist::rank(), s = dist::size();
    // max_count 3 stands for INT_MAX: 10 elements go as 3 + 3 + 3 + 1, every piece at its place.
    for (std::size_t limit : {std::size_t(1), std::size_t(3), std::size_t(10), std::size_t(64)}) {
        std::vector<double> x(10), expect(10);
        for (std::size_t i = 0; i < 10; ++i) {
            x[i] = static_cast<double>(i) * 100 + r;
            expect[i] = static_cast<double>(i) * 100 * s + s * (s - 1) / 2.0;
        }
        dist::all_reduce(std::span<double>(x), dist::ReduceOp::sum, {.max_count = limit});
        REQUIRE(x == expect);
    }
    std::vector<float> y(5, 1.0f);
    REQUIRE_THROWS_AS(dist::all_reduce(std::span<float>(y), dist::ReduceOp::sum,
                                       {.max_count = static_cast<std::size_t>(INT_MAX) + 1}),
                      ValueError);
}

TEST_CASE("dist: broadcast of buffers and strings", "[dist][collectives]") {
    std::vector<float> x(7, static_cast<float>(dist::rank() + 10));
    dist::broadcast(std::span<float>(x));
    for (float v : x) REQUIRE(v == 10.0f);
    std::string text = dist::is_main() ? std::string("configuration from rank 0") : std::string(3, 'x');
    dist::broadcast(text);
    REQUIRE(text == "configuration from rank 0");
}

TEST_CASE("dist: broadcast_parameters makes the ranks equal when their seeds differ", "[dist][broadcast]") {
    manual_seed(100 + static_cast<std::uint64_t>(dist::rank()));  // a different model on every rank
    TinyLM model(7, 5);
    TinyLM reference(7, 5);
    if (dist::size() > 1) {
        bool all_same = true;
        for (const Tensor& p : model.parameters()) all_same = all_same && same_on_every_rank(p);
        REQUIRE_FALSE(all_same);
    }
    // What rank 0 holds, kept for comparison (rank 0's own seed, 100).
    manual_seed(100);
    TinyLM rank0(7, 5);
    dist::broadcast_parameters(model);
    const auto ps = model.parameters(), qs = rank0.parameters();
    for (std::size_t i = 0; i < ps.size(); ++i) {
        REQUIRE(same_on_every_rank(ps[i]));
        REQUIRE(max_abs_diff(ps[i], qs[i]) == 0.0);
    }
    (void)reference;
}

TEST_CASE("dist: broadcast_parameters refuses models that differ, on every rank", "[dist][broadcast]") {
    // Rank 1 builds a larger head: every rank must throw, none may wait forever.
    TinyLM model(7, dist::rank() == 1 ? 6 : 5);
    if (dist::size() > 1) REQUIRE_THROWS_AS(dist::broadcast_parameters(model), ValueError);
    else REQUIRE_NOTHROW(dist::broadcast_parameters(model));
}

TEST_CASE("dist: gradient buckets split a tensor and average over the ranks", "[dist][buckets]") {
    const int r = dist::rank(), s = dist::size();
    // Parameters of 7, 13 and 3 float32 elements and 4 float64 ones; buckets of 10 floats (40
    // bytes) cut the first into 7 + (3 of the second), the second's rest into 10, then 3.
    std::vector<Tensor> params = {zeros({7}, f32, true), zeros({13}, f32, true), zeros({3}, f32, true),
                                  zeros({2, 2}, f64, true), zeros({2}, f32, true)};
    // max_count 3 also sends every bucket in MPI calls of at most 3 elements (INT_MAX in real use).
    dist::GradientReducer reducer(params, {.bucket_bytes = 40, .reduce = {.max_count = 3}});
    const auto& plan = reducer.buckets();
    REQUIRE(plan.size() == 4);  // float32: 10 + 10 + 5 of the 25 elements; float64: 4
    REQUIRE(plan[0].pieces.size() == 2);
    REQUIRE(plan[0].pieces[1].param == 1);
    REQUIRE(plan[0].pieces[1].count == 3);
    REQUIRE(plan[1].pieces[0].param == 1);
    REQUIRE(plan[1].pieces[0].offset == 3);
    REQUIRE(plan[1].pieces[0].count == 10);
    REQUIRE(plan[2].elements == 5);  // the 3 of param 2 and the 2 of param 4
    REQUIRE(plan[3].dtype == f64);
    REQUIRE(reducer.num_elements() == 7 + 13 + 3 + 4 + 2);

    // Gradient element k of parameter i on rank r: 1000 i + k + r. Parameter 4 has a gradient on
    // rank 0 only; parameter 2 on no rank.
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (i == 2 || (i == 4 && r != 0)) continue;
        Tensor g = zeros(params[i].shape(), params[i].dtype());
        for (std::size_t k = 0; k < g.numel(); ++k) {
            const double v = 1000.0 * static_cast<double>(i) + static_cast<double>(k) + r;
            if (g.dtype() == f32) g.mutable_value<float>().data()[k] = static_cast<float>(v);
            else g.mutable_value<double>().data()[k] = v;
        }
        params[i].backward(g);
    }
    reducer.all_reduce();
    const double mean_r = (s - 1) / 2.0;
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (i == 2) {
            REQUIRE_FALSE(params[i].has_grad());
            continue;
        }
        REQUIRE(params[i].has_grad());
        const Tensor g = params[i].grad();
        for (std::size_t k = 0; k < g.numel(); ++k) {
            const double expect = i == 4 ? (4000.0 + static_cast<double>(k)) / s
                                         : 1000.0 * static_cast<double>(i) + static_cast<double>(k) + mean_r;
            REQUIRE(g.at(k) == Approx(expect).epsilon(1e-6));
        }
        REQUIRE(same_on_every_rank(g));
    }
    REQUIRE_THROWS_AS(dist::GradientReducer(params, {.bucket_bytes = 4}), ValueError);
}

TEMPLATE_TEST_CASE("dist: 2 ranks with B/2 streams each train like 1 rank with B", "[dist][equivalence]", float,
                   double) {
    const DType dt = dtype_of<TestType>;
    const std::size_t V = 9, H = 8, T = 5, B = 4;
    manual_seed(7);
    TinyLM single(V, H);
    manual_seed(7);
    TinyLM multi(V, H);
    single.to(dt);
    multi.to(dt);
    dist::broadcast_parameters(multi);  // already equal (same seed); as a real program does
    // The same initial weights for both.
    {
        const auto a = single.parameters(), b = multi.parameters();
        for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(max_abs_diff(a[i], b[i]) == 0.0);
    }
    nn::Adam opt1(single.parameters(), {.lr = 0.01}), optN(multi.parameters(), {.lr = 0.01});
    dist::GradientReducer reducer(multi.parameters(), {.bucket_bytes = 256});  // several buckets
    const dist::Range mine = dist::shard_range(B);
    Generator data(11);
    const double tol = dt == f32 ? 2e-5 : 1e-12;
    for (int step = 0; step < 6; ++step) {
        const auto ids = random_ids(T + 1, B, V, data);
        const auto x = time_rows(ids, 0, T), y = time_rows(ids, 1, T + 1);
        {  // one process, the whole batch
            Tape tape;
            tape.backward(single.loss(x, y));
        }
        nn::clip_grad_norm(single.parameters(), 1.0);
        opt1.step();
        opt1.zero_grad();
        {  // every rank its own streams, gradients averaged
            Tape tape;
            tape.backward(multi.loss(columns(x, mine), columns(y, mine)));
        }
        reducer.all_reduce();
        nn::clip_grad_norm(multi.parameters(), 1.0);
        optN.step();
        optN.zero_grad();
        const auto a = single.parameters(), b = multi.parameters();
        for (std::size_t i = 0; i < a.size(); ++i) {
            INFO("step " << step << ", parameter " << i);
            REQUIRE(max_abs_diff(a[i], b[i]) <= tol);
            REQUIRE(same_on_every_rank(b[i]));
        }
    }
}

TEST_CASE("dist: a checkpoint written by rank 0 resumes the run exactly on every rank", "[dist][checkpoint]") {
    const std::size_t V = 9, H = 8, T = 5, B = 4;
    std::string path;
    if (dist::is_main())
        path = (std::filesystem::temp_directory_path() / ("tapegrad_dist_ckpt_" + std::to_string(::getpid()) + ".npz"))
                   .string();
    dist::broadcast(path);
    auto train = [&](TinyLM& model, nn::Adam& opt, dist::GradientReducer& reducer, int from, int to, bool save_at_3) {
        const dist::Range mine = dist::shard_range(B);
        for (int step = from; step < to; ++step) {
            Generator data(1000 + static_cast<std::uint64_t>(step));  // batch `step`, whoever trains it
            const auto ids = random_ids(T + 1, B, V, data);
            const auto x = time_rows(ids, 0, T), y = time_rows(ids, 1, T + 1);
            {
                Tape tape;
                tape.backward(model.loss(columns(x, mine), columns(y, mine)));
            }
            reducer.all_reduce();
            opt.step();
            opt.zero_grad();
            if (save_at_3 && step + 1 == 3) {
                Generator g(5);
                if (dist::is_main()) nn::save_checkpoint(path, model, opt, 3, g);
                dist::barrier();  // the file exists before any rank reads it
            }
        }
    };
    manual_seed(21);
    TinyLM whole(V, H);
    nn::Adam opt_whole(whole.parameters(), {.lr = 0.01});
    dist::GradientReducer red_whole(whole.parameters());
    train(whole, opt_whole, red_whole, 0, 6, true);

    manual_seed(99 + static_cast<std::uint64_t>(dist::rank()));  // different weights: the checkpoint must win
    TinyLM resumed(V, H);
    nn::Adam opt_resumed(resumed.parameters(), {.lr = 0.01});
    dist::GradientReducer red_resumed(resumed.parameters());
    Generator g(0);
    const auto info = nn::load_checkpoint(path, resumed, opt_resumed, g);
    REQUIRE(info.step == 3);
    train(resumed, opt_resumed, red_resumed, 3, 6, false);
    const auto a = whole.parameters(), b = resumed.parameters();
    for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(max_abs_diff(a[i], b[i]) == 0.0);
    dist::barrier();
    if (dist::is_main()) std::filesystem::remove(path);
}

TEST_CASE("dist: shard_range splits items into contiguous, balanced shares", "[dist][shard]") {
    for (int size : {1, 2, 3, 5}) {
        std::size_t next = 0;
        for (int r = 0; r < size; ++r) {
            const dist::Range range = dist::shard_range(17, r, size);
            REQUIRE(range.begin == next);
            const auto share = static_cast<std::size_t>(17 / size);
            REQUIRE((range.size() == share || range.size() == share + 1));
            next = range.end;
        }
        REQUIRE(next == 17);
    }
    REQUIRE_THROWS_AS(dist::shard_range(4, 2, 2), ValueError);
    REQUIRE_THROWS_AS(dist::shard_range(4, 0, 0), ValueError);
}

TEST_CASE("dist: epoch_shard gives disjoint equal shares, reshuffled every epoch", "[dist][shard]") {
    const int size = 3;
    std::vector<std::size_t> first_epoch;
    for (std::uint64_t epoch : {0u, 1u}) {
        std::set<std::size_t> seen;
        std::vector<std::size_t> all;
        for (int r = 0; r < size; ++r) {
            const auto shard = dist::epoch_shard(20, epoch, 42, r, size);
            REQUIRE(shard.size() == static_cast<std::size_t>(20 / size));
            REQUIRE(shard == dist::epoch_shard(20, epoch, 42, r, size));  // every rank computes the same
            for (std::size_t i : shard) {
                REQUIRE(i < 20);
                REQUIRE(seen.insert(i).second);  // no index in two shards
            }
            all.insert(all.end(), shard.begin(), shard.end());
        }
        if (epoch == 0) first_epoch = all;
        else REQUIRE(all != first_epoch);
    }
    REQUIRE(dist::epoch_shard(20, 0, 42, 0, size) != dist::epoch_shard(20, 0, 43, 0, size));
    REQUIRE_THROWS_AS(dist::epoch_shard(2, 0, 1, 0, 3), ValueError);
}

int main(int argc, char** argv) {
    dist::Environment env(&argc, &argv);
    // Every rank runs every case and prints its own report; a failure on any rank fails the job
    // through that rank's exit status.
    return Catch::Session().run(argc, argv);
}
