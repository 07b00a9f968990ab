// Saving is atomic even when the process dies mid-save: a child process saves checkpoints to one
// path over and over and is killed with SIGKILL at random moments, inside saves and between them,
// a hundred times. After every kill the file at that path must load, must be one complete save
// (every tensor bitwise what the child saved at that step, no mix of two saves) and must be no
// older than the last save the child reported finished. The temporary files a killed save leaves
// behind are counted too: at most one per kill, none from a save that finished, and none at all
// once a later save has run (it removes those of processes that no longer exist).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace fs = std::filesystem;

namespace {

constexpr int kKills = 100;

// 92 736 float32 parameters (371 KB) and Adam's two slots per parameter: a checkpoint of about
// 1.1 MB, big enough that writing it takes a few milliseconds, so random kills land inside saves.
struct Net : nn::Module {
    nn::Embedding emb{64, 32};
    nn::RNN rnn{{.input_size = 32, .hidden_size = 256}};
    nn::Linear head{256, 64};
    Net() {
        register_module("emb", emb);
        register_module("rnn", rnn);
        register_module("head", head);
    }
};

// splitmix64: every value saved is a hash of (step, tensor, element), so the parent can rebuild
// exactly what any step saved, and two different saves differ almost everywhere.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
double value_at(std::size_t step, std::size_t tensor, std::size_t i) {
    const std::uint64_t h = mix(mix(mix(step) + tensor) + i);
    return static_cast<double>(static_cast<std::int64_t>(h >> 40) - (std::int64_t{1} << 23)) * 0x1p-23;  // [-1, 1)
}
void fill(Tensor t, std::size_t step, std::size_t tensor) {
    std::visit([&](auto& a) {
        using T = std::remove_reference_t<decltype(a.data()[0])>;
        for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<T>(value_at(step, tensor, i));
    }, t.mutable_array());
}

// Everything a checkpoint of `step` holds, as a function of the step alone: the parameters, the
// optimizer's slots and counters (loaded through its own load_state_dict, shaped like `opt_template`),
// the learning rate, the generator's state (an odd number of normals leaves a cached one in it) and
// extras whose size changes with the step, so consecutive archives differ in layout too.
struct StepState {
    nn::NamedTensors optimizer;
    nn::NamedTensors extras;
};
StepState set_step(Net& net, nn::Optimizer& opt, Generator& gen, std::size_t step, const nn::NamedTensors& opt_template) {
    std::size_t k = 0;
    for (const Tensor& p : net.parameters()) fill(p, step, k++);
    StepState s;
    for (const auto& [name, t] : opt_template) {
        const bool counter = name == "step" || name.ends_with(".step");
        // The optimizer's type and its groups' learning rates are settings, not state to scramble:
        // kept as they are (the learning rate is set below).
        const bool setting = name == "type" || name.starts_with("group.");
        Tensor v = counter ? Tensor::scalar(static_cast<double>(step), f64) : setting ? t : zeros(t.shape(), t.dtype());
        if (!counter && !setting) fill(v, step, k);
        ++k;
        s.optimizer.emplace_back(name, v);
    }
    opt.load_state_dict(s.optimizer);
    opt.set_lr(1e-3 * static_cast<double>(1 + step % 10));
    s.optimizer = opt.state_dict();  // with the learning rate just set
    gen.manual_seed(step);
    for (std::size_t i = 0; i < step % 4; ++i) gen.normal();
    Tensor marker = zeros({1 + step % 13}, f64);
    fill(marker, step, k);
    s.extras = {{"marker", marker}, {"step_copy", Tensor::scalar(static_cast<double>(step), f64)}};
    return s;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (!a.defined() || !b.defined() || a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
    return std::visit([&](const auto& x) {
        const auto& y = std::get<std::decay_t<decltype(x)>>(b.array());
        return std::memcmp(x.data(), y.data(), x.size() * sizeof(x.data()[0])) == 0;
    }, a.array());
}
// The first difference between two lists of named tensors, or "" when they are bitwise equal.
std::string first_difference(const nn::NamedTensors& got, const nn::NamedTensors& want) {
    if (got.size() != want.size()) return fmt::format("{} entries, expected {}", got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i].first != want[i].first) return fmt::format("entry {} is '{}', expected '{}'", i, got[i].first, want[i].first);
        if (!same_bits(got[i].second, want[i].second)) return fmt::format("'{}' differs", got[i].first);
    }
    return "";
}

// What the child reports through the pipe: a save begins, a save has returned.
struct Report {
    std::uint64_t kind;  // kBegin or kEnd
    std::uint64_t step;
};
constexpr std::uint64_t kBegin = 1, kEnd = 2;

// The child: saves steps base+1, base+2, ... to path until it is killed. Never returns: leaving by
// return or exit() would run the rest of the test program (or its exit handlers) a second time.
[[noreturn]] void child_loop(const std::string& path, std::size_t base, int fd, const nn::NamedTensors& opt_template) {
    try {
        Net net;
        nn::Adam opt(net.parameters());
        Generator gen;
        for (std::size_t step = base + 1;; ++step) {
            const StepState s = set_step(net, opt, gen, step, opt_template);
            const Report begin{kBegin, step};
            if (::write(fd, &begin, sizeof begin) != sizeof begin) ::_exit(3);
            nn::save_checkpoint(path, net, opt, step, gen, s.extras);
            const Report end{kEnd, step};
            if (::write(fd, &end, sizeof end) != sizeof end) ::_exit(3);
            // The training steps between two saves of a real run: time for kills between saves.
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kill_save child: %s\n", e.what());
    }
    ::_exit(2);
}

// Files in dir other than the checkpoint itself: temporary files of saves that did not finish.
std::size_t strays(const fs::path& dir) {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename() != "ckpt.npz";
    return n;
}

struct RemoveOnExit {
    fs::path dir;
    ~RemoveOnExit() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

}  // namespace

TEST_CASE("a checkpoint killed mid-save leaves the last complete checkpoint loadable", "[nn][checkpoint][kill]") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("tapegrad_test_kill_save_{}", ::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
    const RemoveOnExit cleanup{dir};
    const std::string path = (dir / "ckpt.npz").string();

    // Adam's state layout (slot names, counters), taken from one real update. The gradient comes from
    // elementwise ops only: this test never calls BLAS (see the fork comment below).
    Net net, expect;
    nn::Adam opt(net.parameters()), expect_opt(expect.parameters());
    Generator gen, expect_gen;
    {
        Tape tape;
        Tensor loss = Tensor::scalar(0.0);
        for (const Tensor& p : net.parameters()) loss = loss + sum(p * p);
        tape.backward(loss);
        opt.step();
    }
    const nn::NamedTensors opt_template = opt.state_dict();
    REQUIRE(opt_template.size() > net.parameters().size());  // slots exist for every parameter

    // Step 0, written here, so the path always holds a checkpoint from the first kill on.
    std::size_t on_disk = 0;
    nn::save_checkpoint(path, expect, expect_opt, 0, expect_gen,
                        set_step(expect, expect_opt, expect_gen, 0, opt_template).extras);

    Generator delays(2024);
    double max_delay_ms = 0, cycle_ms = 0;  // set from the first child's measured save cycle
    std::size_t next_base = 0;
    int inside = 0, between = 0, before_first = 0;
    std::size_t left_behind = 0;  // stray files in the folder after the last kill
    for (int round = 0; round < kKills; ++round) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const std::size_t base = next_base;
        const auto start = std::chrono::steady_clock::now();
        // fork(), not a new process image: the child reuses the state built above and calls only
        // malloc, file I/O and libzip, never BLAS, and it starts no thread. Only the forking thread
        // lives on in the child, so the child must not need a lock some other thread held at the
        // fork. This program runs no BLAS and starts no thread, so the only other threads it can
        // have are OpenBLAS's idle workers (started when the library loads unless
        // OPENBLAS_NUM_THREADS=1, and stopped around fork() by OpenBLAS's own pthread_atfork handler)
        // and, in a sanitizer build, the runtime's; glibc keeps malloc and stdio usable across fork.
        // That holds with or without OPENBLAS_NUM_THREADS set. Spawning the test binary afresh would
        // also work, but it would pay the program's start-up (large under a sanitizer) a hundred times.
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(fds[0]);
            child_loop(path, base, fds[1], opt_template);
        }
        ::close(fds[1]);

        // The first child runs until it has finished four saves: that measures how long a save
        // cycle takes here (under a sanitizer, on a loaded machine). Every later child is killed
        // after a random delay spread from 0 (before its first save) to one cycle past the end of
        // its first save, so kills land before, inside and between saves.
        std::vector<Report> reports;
        auto read_reports = [&] {  // to the end of the pipe: the child is dead
            for (;;) {
                Report r;
                const ssize_t n = ::read(fds[0], &r, sizeof r);
                if (n == sizeof r) reports.push_back(r);
                else if (!(n < 0 && errno == EINTR)) return;
            }
        };
        if (round == 0) {
            std::optional<std::chrono::steady_clock::time_point> first_end;
            int ends = 0;
            while (ends < 4) {
                Report r;
                const ssize_t n = ::read(fds[0], &r, sizeof r);
                if (n < 0 && errno == EINTR) continue;
                if (n != sizeof r) break;  // the child died: reported below
                reports.push_back(r);
                if (r.kind == kEnd && ++ends == 1) first_end = std::chrono::steady_clock::now();
            }
            if (ends == 4) {
                const auto now = std::chrono::steady_clock::now();
                cycle_ms = std::chrono::duration<double, std::milli>(now - *first_end).count() / 3;
                const double to_first = std::chrono::duration<double, std::milli>(*first_end - start).count();
                max_delay_ms = to_first + cycle_ms;
            }
        } else {
            std::this_thread::sleep_until(start + std::chrono::duration<double, std::milli>(delays.uniform() *
                                                                                           max_delay_ms));
        }
        ::kill(pid, SIGKILL);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        INFO("kill " << round << ", child steps from " << base + 1);
        REQUIRE(WIFSIGNALED(status));  // otherwise the child failed: its message is on stderr
        REQUIRE(WTERMSIG(status) == SIGKILL);
        read_reports();
        ::close(fds[0]);
        REQUIRE(max_delay_ms > 0);

        // What the child reported: the last save begun, the last save finished.
        std::optional<std::size_t> begun, finished;
        for (const Report& r : reports) (r.kind == kBegin ? begun : finished) = r.step;
        const bool in_save = begun && (!finished || *finished < *begun);
        if (in_save) ++inside;
        else if (finished) ++between;
        else ++before_first;
        if (begun) next_base = *begun;

        // The checkpoint loads, and it is the last finished save, or the one that was in progress
        // (killed after its rename but before its report), or, if this child finished none, the
        // previous one.
        std::optional<nn::CheckpointInfo> info;
        REQUIRE_NOTHROW(info = nn::load_checkpoint(path, net, opt, gen));
        const std::size_t step = info->step;
        INFO("loaded step " << step << ", last begun " << (begun ? fmt::format("{}", *begun) : "none")
                            << ", last finished " << (finished ? fmt::format("{}", *finished) : "none"));
        const std::size_t oldest = finished ? *finished : on_disk;
        CHECK((step == oldest || (in_save && step == *begun)));
        on_disk = step;

        // Bitwise the content of that step: parameters, optimizer state, learning rate, generator, extras.
        const StepState want = set_step(expect, expect_opt, expect_gen, step, opt_template);
        CHECK(first_difference(net.named_parameters(), expect.named_parameters()) == "");
        CHECK(first_difference(opt.state_dict(), want.optimizer) == "");
        CHECK(opt.lr() == expect_opt.lr());
        CHECK(gen.state() == expect_gen.state());
        CHECK(first_difference(info->extras, want.extras) == "");

        // A finished save renames its temporary file away; a killed one may leave at most its own
        // (whatever the temporary file is called, and whether or not a later save cleans it up).
        const std::size_t now = strays(dir);
        CHECK(now <= left_behind + (in_save ? 1u : 0u));
        left_behind = now;
    }
    // Random delays are no guarantee, but with a hundred of them spread over two save cycles, kills
    // both inside a save and outside one are all but certain; if not, the test proved little.
    CHECK(inside > 0);
    CHECK(between + before_first > 0);

    // A save after all that leaves no temporary file of its own, removes those the killed
    // processes left (they no longer exist), and the file is that save.
    set_step(expect, expect_opt, expect_gen, next_base + 1, opt_template);
    nn::save_checkpoint(path, expect, expect_opt, next_base + 1, expect_gen);
    CHECK(nn::load_checkpoint(path, net, opt, gen).step == next_base + 1);
    const std::size_t after_save = strays(dir);
    CHECK(after_save == 0);
    std::printf("kill_save: a save cycle takes %.1f ms; %d kills: %d inside a save, %d between saves, %d before "
                "the first; %zu temporary files left behind, %zu still there after a later save\n",
                cycle_ms, kKills, inside, between, before_first, left_behind, after_save);
}
