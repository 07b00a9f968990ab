// Per-op overhead of the tape: a chain of tiny (1x1) adds, recorded and backpropagated, so the
// time is the engine's bookkeeping (node, entry, closure, gradient buffer) rather than arithmetic.
// Prints the median, min and max time per op over repeated runs, recording and backward apart.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Clock = std::chrono::steady_clock;

namespace {
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
    const int ops = argc > 1 ? std::atoi(argv[1]) : 100;  // chain length
    const int runs = argc > 2 ? std::atoi(argv[2]) : 2001;
    if (ops < 1 || runs < 1) {
        std::fprintf(stderr, "usage: %s [ops >= 1] [runs >= 1]\n", argv[0]);
        return 2;
    }
    Tensor x = full({1, 1}, 0.5, f32, true);
    Tensor one = ones({1, 1});
    std::vector<double> record_us, backward_us;
    for (int r = 0; r < runs; ++r) {
        Tape tape;
        const auto t0 = Clock::now();
        Tensor y = x;
        for (int i = 0; i < ops; ++i) y = y + one;
        const auto t1 = Clock::now();
        tape.backward(sum(y));
        const auto t2 = Clock::now();
        x.zero_grad();
        if (r < runs / 10) continue;  // warm-up
        record_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / ops);
        backward_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count() / ops);
    }
    auto row = [](const char* what, const std::vector<double>& v) {
        std::printf("%-10s median %.3f us/op   min %.3f   max %.3f\n", what, median(v),
                    *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
    };
    std::printf("chain of %d tiny adds, %zu timed runs\n", ops, record_us.size());
    row("record", record_us);
    row("backward", backward_us);
    std::vector<double> total(record_us.size());
    for (std::size_t i = 0; i < total.size(); ++i) total[i] = record_us[i] + backward_us[i];
    row("total", total);
}
