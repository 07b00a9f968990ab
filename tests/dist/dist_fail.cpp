// What a failing rank does to a distributed job (tests/dist/dist_fail_test.sh runs it):
//   dist_fail throw CKPT   rank 0 saves a checkpoint, then rank 1 throws while rank 0 waits in a
//                          collective: the guard prints "rank 1: ..." and MPI_Abort ends the job
//   dist_fail kill CKPT    the same, but rank 1 dies from SIGKILL without a word
//   dist_fail load CKPT    one process: the checkpoint left behind still loads
#include <csignal>
#include <cstdio>
#include <string>

#include <tapegrad/nn/dist/distributed.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

int main(int argc, char** argv) {
    dist::Environment env(&argc, &argv);
    return dist::run_guarded([&] {
        if (argc != 3) throw ValueError("usage: dist_fail throw|kill|load CHECKPOINT");
        const std::string mode = argv[1], path = argv[2];
        manual_seed(3);
        nn::Linear model(4, 3);
        nn::Adam opt(model.parameters());
        Generator gen(1);
        if (mode == "load") {
            const auto info = nn::load_checkpoint(path, model, opt, gen);
            std::printf("loaded step %zu\n", info.step);
            return 0;
        }
        dist::broadcast_parameters(model);
        dist::GradientReducer reducer(model.parameters());
        for (std::size_t step = 1; step <= 3; ++step) {
            {
                Tape tape;
                tape.backward(sum(model(randn({2, 4}))));
            }
            reducer.all_reduce();
            opt.step();
            opt.zero_grad();
            if (dist::is_main()) nn::save_checkpoint(path, model, opt, step, gen);
            dist::barrier();
        }
        if (dist::rank() == 1) {
            if (mode == "kill") std::raise(SIGKILL);
            throw ValueError("the data loader of rank 1 found a corrupt record (a test of the failure guard)");
        }
        // The others wait for rank 1 in the next all-reduce, which never comes: the abort ends them.
        for (;;) reducer.all_reduce();
    });
}
