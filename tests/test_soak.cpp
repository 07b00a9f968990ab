// Soak: 20 000 training steps of a small RNN language model hold steady memory. Every step records
// a tape, runs backward, clips and updates, so a leak anywhere in that path (a tape entry, a saved
// array, a gradient, an optimizer slot) grows the process's resident memory with the step count.
// The model also has to learn, so the steps are real training, not a loop that does nothing.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

// Under AddressSanitizer freed memory sits in a quarantine (256 MB by default) before it is reused,
// so resident memory climbs for a long time however well the program behaves: the tight bounds
// below would measure the quarantine, not the library, and that build checks a loose one instead.
// It still runs every step; its leak check at exit reports anything never freed, and the
// sanitizers check every access on the way.
#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_TEST_ASAN 1
#endif
#endif

namespace {

constexpr std::size_t kSteps = 20000, kWarmup = 2000, kEvery = 1000;
constexpr std::size_t V = 16, E = 16, H = 32, T = 8, B = 4;

struct LM : nn::Module {
    nn::Embedding emb{V, E};
    nn::RNN rnn{{.input_size = E, .hidden_size = H}};
    nn::Linear head{H, V};
    LM() {
        register_module("emb", emb);
        register_module("rnn", rnn);
        register_module("head", head);
    }
};

// Resident memory of this process in KiB, from /proc/self/status.
std::size_t rss_kib() {
    std::ifstream f("/proc/self/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
    FAIL("no VmRSS line in /proc/self/status");
    return 0;
}

}  // namespace

TEST_CASE("20 000 training steps of an RNN hold steady resident memory", "[soak]") {
    manual_seed(7);
    LM lm;
    nn::Adam opt(lm.parameters(), {.lr = 1e-2});
    // A stream that repeats a random 13-token phrase: predictable only from context, so the loss
    // falls well below chance (ln 16 = 2.77) only if the recurrence learns.
    Generator data(8);
    std::vector<std::int64_t> phrase(13);
    for (auto& v : phrase) v = static_cast<std::int64_t>(data.randint(V));

    xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape({T, B});
    xt::xarray<std::int64_t> targets = xt::xarray<std::int64_t>::from_shape({T, B});
    std::vector<double> losses(kSteps);  // written now: touching new pages later would look like growth
    std::vector<std::size_t> rss;  // KiB, at the warm-up step and every kEvery steps after it
    rss.reserve(kSteps / kEvery);
    for (std::size_t step = 1; step <= kSteps; ++step) {
        for (std::size_t b = 0; b < B; ++b) {
            const std::size_t start = data.randint(phrase.size());
            for (std::size_t t = 0; t < T; ++t) {
                ids.data()[t * B + b] = phrase[(start + t) % phrase.size()];
                targets.data()[t * B + b] = phrase[(start + t + 1) % phrase.size()];
            }
        }
        Tape tape;
        Tensor loss = cross_entropy(lm.head(lm.rnn(lm.emb(ids)).output), targets);  // logits [T, B, V]
        tape.backward(loss);
        nn::clip_grad_norm(lm.parameters(), 1.0);
        opt.step();
        opt.zero_grad();
        losses[step - 1] = loss.item();
        if (step >= kWarmup && step % kEvery == 0) rss.push_back(rss_kib());
    }

    double last = 0;
    for (std::size_t i = kSteps - 1000; i < kSteps; ++i) last += losses[i] / 1000;
    std::size_t nonfinite = 0;
    for (double l : losses) nonfinite += !std::isfinite(l);
    REQUIRE(nonfinite == 0);
    INFO("loss at the first step " << losses[0] << ", mean over the last 1000 steps " << last);
    CHECK(losses[0] > 2.0);
    CHECK(last < 0.5);

    REQUIRE(rss.size() == (kSteps - kWarmup) / kEvery + 1);
    std::string trace;
    std::size_t rises = 0;
    for (std::size_t i = 0; i < rss.size(); ++i) {
        trace += fmt::format("{}{}", i ? " " : "", rss[i]);
        if (i > 0 && rss[i] > rss[i - 1]) ++rises;
    }
    INFO("resident KiB every " << kEvery << " steps from step " << kWarmup << ": " << trace);
#if defined(TAPEGRAD_TEST_ASAN)
    // Only a loose bound: the quarantine (256 MiB by default) and its shadow fill up over the first
    // few thousand steps, then memory goes flat. 512 MiB still catches a reachable leak of every
    // step's tape, which the leak check at exit would not report while something still points to it.
    CHECK(rss.back() < rss.front() + 512 * 1024);
#else
    // One step's tape holds a few dozen small arrays (tens of KiB in all), freed when the step ends. In steady state the allocator reuses those same blocks, so
    // resident memory stays flat; 2 MiB leaves room for the allocator's own bookkeeping and page
    // granularity, yet a leak of just 120 bytes a step would exceed it over the 18 000 measured steps.
    CHECK(rss.back() < rss.front() + 2048);
    // A slower leak still shows as a trend: memory that grows by a page or more every 1000 steps
    // rises in nearly every interval. Flat memory rises in few (noise moves it both ways).
    CHECK(rises <= (rss.size() - 1) / 2);
#endif
}
