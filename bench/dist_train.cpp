// bench_dist_train: data-parallel training throughput of the main job's model (examples/char_rnn's
// defaults: GRU, embed 64, hidden 256, 64-step chunks, 32 streams, a 100-symbol vocabulary) and
// the cost of the gradient all-reduce, as a function of the number of processes. Run it under
// mpirun with 1, 2, ... processes (bench/dist_bench.sh does, one BLAS thread each): the global
// batch stays 32 streams, split over the ranks, so "updates/s" compares like with like.
//
//   mpirun -np 2 bench_dist_train [--rounds 7] [--steps 10] [--batch 32] [--hidden 256]
//
// Prints, from rank 0, the median over rounds of updates per second (and characters per second),
// then the median time of one GradientReducer::all_reduce at the model's size, 10^6 and 10^7 floats.
#include <algorithm>
#include <chrono>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/nn/dist/distributed.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

struct CharModel : nn::Module {
    nn::Embedding embed;
    std::unique_ptr<nn::RecurrentLayer> rnn;
    nn::Linear head;
    CharModel(std::size_t vocab, std::size_t embed_dim, std::size_t hidden)
        : embed(vocab, embed_dim),
          rnn(nn::make_recurrent(nn::RecurrentKind::gru, {.input_size = embed_dim, .hidden_size = hidden})),
          head(hidden, vocab) {
        register_module("embed", embed);
        register_module("gru", *rnn);
        register_module("head", head);
    }
    std::pair<Tensor, Tensor> forward(const xt::xarray<std::int64_t>& ids, const Tensor& state) const {
        auto [out, next] = rnn->forward(embed(ids), rnn->unpack_state(state));
        return {head(out), rnn->pack_state(next)};
    }
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Median seconds of one all_reduce of `n` float32 gradients, in `bucket_bytes` buckets.
double time_all_reduce(std::size_t n, int reps, bool deterministic) {
    Tensor p = zeros({n}, f32, true);
    p.backward(ones({n}, f32));
    dist::GradientReducer reducer({p}, {.reduce = {.deterministic = deterministic}});
    reducer.all_reduce();  // warm-up
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) {
        dist::barrier();
        const double t0 = now();
        reducer.all_reduce();
        times.push_back(dist::all_reduce(now() - t0, dist::ReduceOp::max));
    }
    return median(times);
}

}  // namespace

int main(int argc, char** argv) {
    dist::Environment env(&argc, &argv);
    return dist::run_guarded([&] {
        CLI::App app{"data-parallel training throughput and all-reduce cost"};
        int rounds = 7, steps = 10, reps = 9;
        std::size_t batch = 32, hidden = 256, embed = 64, seq = 64, vocab = 100;
        app.add_option("--rounds", rounds, "timed rounds (the median is printed)")->capture_default_str();
        app.add_option("--steps", steps, "updates per round")->capture_default_str();
        app.add_option("--batch", batch, "global batch (streams), split over the ranks")->capture_default_str();
        app.add_option("--hidden", hidden, "GRU hidden size")->capture_default_str();
        app.add_option("--reps", reps, "all-reduce repetitions per size")->capture_default_str();
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            return app.exit(e);
        }
        const int P = dist::size();
        if (batch % static_cast<std::size_t>(P) != 0) throw ValueError("--batch must be a multiple of the processes");
        const std::size_t local = batch / static_cast<std::size_t>(P);

        manual_seed(1);
        CharModel model(vocab, embed, hidden);
        dist::broadcast_parameters(model);
        dist::GradientReducer reducer(model.parameters());
        nn::Adam opt(model.parameters(), {.lr = 1e-3});
        Generator data(100 + static_cast<std::uint64_t>(dist::rank()));
        auto batch_ids = [&] {
            xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape({seq + 1, local});
            for (auto& v : ids) v = static_cast<std::int64_t>(data.randint(vocab));
            return ids;
        };
        const auto ids = batch_ids();
        xt::xarray<std::int64_t> x = xt::xarray<std::int64_t>::from_shape({seq, local}), y = x;
        std::copy(ids.data(), ids.data() + seq * local, x.data());
        std::copy(ids.data() + local, ids.data() + (seq + 1) * local, y.data());
        double reduce_seconds = 0;
        auto step = [&] {
            {
                Tape tape;
                auto [logits, h] = model.forward(x, Tensor());
                tape.backward(cross_entropy(logits, y));
            }
            const double t0 = now();
            reducer.all_reduce();
            reduce_seconds += now() - t0;
            nn::clip_grad_norm(model.parameters(), 5.0);
            opt.step();
            opt.zero_grad();
        };
        for (int i = 0; i < 3; ++i) step();  // warm-up
        std::vector<double> rates, reduce_share;
        for (int r = 0; r < rounds; ++r) {
            dist::barrier();
            reduce_seconds = 0;
            const double t0 = now();
            for (int i = 0; i < steps; ++i) step();
            const double dt = dist::all_reduce(now() - t0, dist::ReduceOp::max);
            rates.push_back(steps / dt);
            reduce_share.push_back(dist::all_reduce(reduce_seconds, dist::ReduceOp::mean) / dt);
        }
        const double rate = median(rates);
        if (dist::is_main()) {
            fmt::print("processes {}  model GRU embed {} hidden {}  parameters {}  global batch {} x {} steps ({} per rank)\n",
                       P, embed, hidden, model.num_parameters(), batch, seq, local);
            fmt::print("train: {:.2f} updates/s  {:.0f} chars/s  (median of {} rounds of {} updates; all-reduce incl. "
                       "waiting {:.1f}% of the time)\n",
                       rate, rate * static_cast<double>(batch * seq), rounds, steps, 100 * median(reduce_share));
        }
        for (std::size_t n : {model.num_parameters(), std::size_t(1000000), std::size_t(10000000)}) {
            const double det = time_all_reduce(n, reps, true), fast = time_all_reduce(n, reps, false);
            if (dist::is_main())
                fmt::print("all_reduce {:>9} floats: {:8.3f} ms deterministic, {:8.3f} ms MPI_SUM  ({:.2f} GB/s of "
                           "gradients)\n",
                           n, det * 1e3, fast * 1e3, static_cast<double>(n) * 4 / det / 1e9);
        }
        return 0;
    });
}
