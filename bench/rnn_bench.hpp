// What bench_rnn_train (tapegrad) and bench_torch_rnn (LibTorch) share, so the two measure the same
// work and print the same lines: the configurations, the token ids and sequence lengths, the GEMM flop
// count, the sgemm reference rate, peak memory, the command line and the output format. Plain C++17
// without tapegrad or torch headers: the LibTorch program includes it too.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <cblas.h>  // OpenBLAS's: cblas_sgemm, openblas_set_num_threads

namespace rnn_bench {

using Clock = std::chrono::steady_clock;

// The recurrent layer of a configuration: PyTorch's Elman RNN, LSTM or GRU layer (nn::RNN, nn::LSTM,
// nn::GRU; torch::nn::RNN, LSTM, GRU), or an LSTM cell written by hand from each library's primitive
// ops (lstm_cell: matmul/linear, chunk, sigmoid, tanh, *, +, select/stack), the way a user writes one.
enum class Cell { rnn, lstm, gru, lstm_cell };

// One benchmark configuration. embed == 0 means one-hot input (input_size = vocab).
struct Config {
    char name = 'a';
    std::size_t vocab = 0, embed = 0, hidden = 0, seq = 0, batch = 0;
    bool bidirectional = false;
    bool overhead = false;  // (f): the per-op overhead chain, no RNN
    Cell cell = Cell::rnn;
    std::size_t layers = 1;
    bool variable_lengths = false;  // per-sequence lengths from sequence_lengths(), loss masked past them
    bool memory = false;            // there for its peak memory (e, l, n): few steps in compare.sh
    std::size_t input_size() const { return embed ? embed : vocab; }
    std::size_t directions() const { return bidirectional ? 2 : 1; }
    // Gate blocks of the weight matrices: W_ih is [gates*H, I], W_hh [gates*H, H].
    std::size_t gates() const { return cell == Cell::rnn ? 1 : cell == Cell::gru ? 3 : 4; }
};

// Every configuration's letter, in the order `all` runs them.
constexpr const char* config_names = "abcdefghijklmn";

inline Config config_for(char c) {
    auto like = [](char base, char name, Cell cell) {
        Config out = config_for(base);
        out.name = name;
        out.cell = cell;
        return out;
    };
    switch (c) {
        case 'a': return {'a', 65, 0, 100, 25, 1, false, false};
        case 'b': return {'b', 65, 64, 256, 64, 32, false, false};
        case 'c': return {'c', 128, 128, 512, 128, 64, false, false};
        case 'd': return {'d', 65, 64, 256, 64, 32, true, false};
        case 'e': {
            Config e{'e', 128, 128, 512, 1000, 64, false, false};
            e.memory = true;
            return e;
        }
        case 'g': return like('b', 'g', Cell::lstm);
        case 'h': return like('b', 'h', Cell::gru);
        case 'i': return like('b', 'i', Cell::lstm_cell);
        case 'j': {
            Config j = like('b', 'j', Cell::rnn);
            j.layers = 2;
            return j;
        }
        case 'k': {
            Config k = like('b', 'k', Cell::lstm);
            k.variable_lengths = true;
            return k;
        }
        case 'l': return like('e', 'l', Cell::lstm);
        case 'm': return like('d', 'm', Cell::lstm);
        case 'n': return like('e', 'n', Cell::gru);
        default: return {'f', 0, 0, 0, 0, 0, false, true};
    }
}

inline std::string describe(const Config& c) {
    if (c.overhead) return "f: chain of 100 tiny [1,1] adds, record + backward";
    const char* cell = c.cell == Cell::rnn    ? "Elman RNN"
                       : c.cell == Cell::lstm ? "LSTM"
                       : c.cell == Cell::gru  ? "GRU"
                                              : "LSTM cell from primitive ops";
    char buf[240];
    std::snprintf(buf, sizeof buf, "%c: %s, V=%zu %s H=%zu T=%zu B=%zu%s%s%s", c.name, cell, c.vocab,
                  c.embed ? ("E=" + std::to_string(c.embed)).c_str() : "one-hot", c.hidden, c.seq, c.batch,
                  c.layers > 1 ? (" " + std::to_string(c.layers) + " layers").c_str() : "",
                  c.bidirectional ? " bidirectional" : "",
                  c.variable_lengths ? " lengths uniform in [T/2, T], loss masked" : "");
    return buf;
}

// Token ids in [0, vocab) from a fixed seed (splitmix64, so both programs draw exactly the same ones):
// inputs first, then targets, each T*B in row-major [T, B] order.
inline std::vector<std::int64_t> random_ids(std::size_t n, std::size_t vocab, std::uint64_t seed) {
    std::vector<std::int64_t> out(n);
    std::uint64_t s = seed;
    for (auto& id : out) {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        id = static_cast<std::int64_t>(z % vocab);
    }
    return out;
}
constexpr std::uint64_t input_seed = 1234, target_seed = 5678, lengths_seed = 91011;

// With variable_lengths, one length per sequence (batch row), uniform in [T/2, T] from a fixed seed,
// the same in both programs; otherwise empty (every sequence is T long).
inline std::vector<std::int64_t> sequence_lengths(const Config& c) {
    if (!c.variable_lengths) return {};
    const std::size_t lo = c.seq / 2;
    std::vector<std::int64_t> out = random_ids(c.batch, c.seq - lo + 1, lengths_seed);
    for (auto& n : out) n += static_cast<std::int64_t>(lo);
    return out;
}

// Positions the recurrent layer processes: T*B, or the sum of the lengths with variable_lengths.
inline double recurrent_rows(const Config& c) {
    const auto lengths = sequence_lengths(c);
    if (lengths.empty()) return static_cast<double>(c.seq) * static_cast<double>(c.batch);
    double n = 0;
    for (auto len : lengths) n += static_cast<double>(len);
    return n;
}

// Forward GEMM flops of one step, counted as a PyTorch-style implementation runs them (2*m*n*k each),
// per layer and direction, with G gate blocks (1 for the Elman RNN, 4 for the LSTM, 3 for the GRU):
// the input projection of all steps (N x I_l @ I_l x G*H, with I_0 = I and I_l = D*H above the first
// layer; a one-hot input counts as this GEMM, an embedding lookup counts 0), the recurrent projection of
// every step (B x H @ H x G*H, T times, the first one on the zero state included; with variable lengths
// only the rows of the sequences still going) and the output
// projection (T*B x D*H @ D*H x V):
//   forward = sum over layers l of D * (2*N*I_l*G*H + 2*N*H*G*H) + 2*T*B*(D*H)*V
// N, the positions the recurrent layer runs, is T*B, or with variable lengths the sum of the lengths:
// packed sequences (PyTorch's pack_padded_sequence) run each step's GEMM on the sequences still going,
// while the output layer runs on the padded [T, B] grid (the loss masks it after). The gates' sigmoids,
// tanhs and products are elementwise and not counted. Backward computes two GEMMs per forward GEMM
// (gradients of both operands), so a whole step counts
//   flops = 3 * forward.
inline double step_flops(const Config& c) {
    if (c.overhead) return 0;
    const double T = c.seq, B = c.batch, H = c.hidden, V = c.vocab, D = c.directions(), G = c.gates();
    const double N = recurrent_rows(c);
    double forward = 2 * T * B * (D * H) * V;
    for (std::size_t l = 0; l < c.layers; ++l) {
        const double I = l == 0 ? static_cast<double>(c.input_size()) : D * H;
        forward += D * (2 * N * I * G * H + 2 * N * H * G * H);
    }
    return 3 * forward;
}

struct Stats {
    double median = 0, min = 0, max = 0;
};
inline Stats stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

inline double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Calls f() warmup + runs times and returns the milliseconds of the last `runs` calls, each divided
// by `per` (the repetitions one call makes).
template <class F>
std::vector<double> timed_runs(std::size_t warmup, std::size_t runs, double per, F&& f) {
    std::vector<double> ms;
    for (std::size_t i = 0; i < warmup + runs; ++i) {
        const auto t0 = Clock::now();
        f();
        const double t = ms_since(t0) / per;
        if (i >= warmup) ms.push_back(t);
    }
    return ms;
}

// The sgemm rate (GFLOP/s) of a GEMM m x k @ (n x k)^T, as h W_hh^T, with the
// thread count in force now: median over batches of calls, each batch long enough (>= ~2 ms) that the
// timer's resolution does not matter.
inline double sgemm_gflops(std::size_t m, std::size_t n, std::size_t k) {
    std::vector<float> a(m * k, 0.5f), w(n * k, 0.25f), c(m * n);
    const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
    auto call = [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a.data(), K, w.data(), K, 0.0f,
                    c.data(), N);
    };
    for (int i = 0; i < 10; ++i) call();
    int calls = 1;  // per batch
    for (;;) {
        const auto t0 = Clock::now();
        for (int i = 0; i < calls; ++i) call();
        if (ms_since(t0) >= 2.0 || calls >= (1 << 22)) break;
        calls *= 2;
    }
    std::vector<double> rates;
    for (int r = 0; r < 31; ++r) {
        const auto t0 = Clock::now();
        for (int i = 0; i < calls; ++i) call();
        rates.push_back(2.0 * m * n * k * calls / (ms_since(t0) * 1e6));
    }
    return stats(rates).median;
}

// A field of /proc/self/status in kB (VmRSS, VmHWM), or -1 if unreadable.
inline long status_kb(const std::string& field) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.compare(0, field.size() + 1, field + ":") == 0) return std::stol(line.substr(field.size() + 1));
    return -1;
}
// Resets VmHWM to the current RSS (Linux >= 4.0), so a configuration's peak is not an earlier one's.
// Returns false where that is not allowed; the peak then covers the whole process so far.
inline bool reset_peak_rss() {
    std::ofstream f("/proc/self/clear_refs");
    f << "5";
    f.flush();
    return static_cast<bool>(f);
}

// The command line both programs take.
struct Args {
    std::vector<std::string> configs{"all"};
    std::size_t steps = 20, warmup = 3;
    int threads = 1;
    bool csv = false, verbose = false;
};

inline void add_options(CLI::App& app, Args& a) {
    app.add_option("--config", a.configs, "configurations to run: a to n, or all (repeatable)")
        ->check(CLI::IsMember({"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "all"}))
        ->capture_default_str();
    app.add_option("--steps", a.steps, "timed training steps per configuration (repetitions for f: at least 20)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--warmup", a.warmup, "untimed steps first")->capture_default_str();
    app.add_option("--threads", a.threads, "BLAS (and intra-op) threads")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_flag("--csv", a.csv,
                 "one machine-readable line per result: "
                 "name,config,threads,median_ms,min_ms,max_ms,gflops,sgemm_gflops,fraction,peak_mb");
    app.add_flag("-v,--verbose", a.verbose, "also print the model and the loss of the first step");
}

inline std::vector<Config> selected(const Args& a) {
    std::vector<Config> out;
    std::string names;
    for (const auto& s : a.configs) names += s == "all" ? config_names : s;
    for (char c : std::string(config_names))
        if (names.find(c) != std::string::npos) out.push_back(config_for(c));
    return out;
}

// One result. For (f), the times are per chain of 100 ops (so us/op = 10 * ms) and there is no GEMM
// rate; peak_mb < 0 means not measured.
struct Result {
    Result(std::string name, const Config& config, int threads, const Stats& ms)
        : name(std::move(name)), config(config), threads(threads), ms(ms) {}
    std::string name;  // "tapegrad", "libtorch-nn", "libtorch-unrolled", "libtorch"
    Config config;
    int threads = 1;
    Stats ms;
    double gflops = 0, sgemm = 0, peak_mb = -1;
    std::string note;  // appended to the human-readable line
};

// The result of a training-step configuration: the timings, GFLOP/s against the sgemm rate measured
// now on the recurrent step's shape (B x H @ H x G*H: h W_hh^T with every gate block), and the peak memory above the baseline taken before the first
// step (baseline_kb from VmRSS, read again as VmHWM here).
inline Result step_result(std::string name, const Config& c, int threads, const std::vector<double>& ms,
                          long baseline_kb, bool peak_reset) {
    const long peak_kb = status_kb("VmHWM");
    Result r{std::move(name), c, threads, stats(ms)};
    r.gflops = step_flops(c) / (r.ms.median * 1e6);
    r.sgemm = sgemm_gflops(c.batch, c.gates() * c.hidden, c.hidden);
    if (baseline_kb >= 0 && peak_kb >= 0) r.peak_mb = (peak_kb - baseline_kb) / 1024.0;
    if (!peak_reset) r.note = "  (peak not reset: covers the configurations before)";
    return r;
}

inline void print(const Result& r, bool csv) {
    const double fraction = r.sgemm > 0 ? r.gflops / r.sgemm : 0;
    if (csv) {
        std::printf("%s,%c,%d,%.4f,%.4f,%.4f,%.3f,%.3f,%.4f,%s\n", r.name.c_str(), r.config.name, r.threads,
                    r.ms.median, r.ms.min, r.ms.max, r.gflops, r.sgemm, fraction,
                    r.peak_mb >= 0 ? std::to_string(r.peak_mb).c_str() : "");
    } else if (r.config.overhead) {
        std::printf("%-18s f  threads %d  %.3f us/op (record+backward)  min %.3f  max %.3f%s\n", r.name.c_str(),
                    r.threads, r.ms.median * 10, r.ms.min * 10, r.ms.max * 10, r.note.c_str());
    } else {
        std::printf("%-18s %c  threads %d  median %.2f ms/step  min %.2f  max %.2f  %.2f GFLOP/s = %.0f%% of "
                    "sgemm %.2f GFLOP/s",
                    r.name.c_str(), r.config.name, r.threads, r.ms.median, r.ms.min, r.ms.max, r.gflops,
                    100 * fraction, r.sgemm);
        if (r.peak_mb >= 0) std::printf("  peak +%.1f MB", r.peak_mb);
        std::printf("%s\n", r.note.c_str());
    }
    std::fflush(stdout);
}

}  // namespace rnn_bench
