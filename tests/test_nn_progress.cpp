// Progress reports: with an injected clock, log mode prints exactly the expected lines at the
// expected steps; terminal mode redraws one line with '\r' and respects its redraw limit; durations
// read as seconds, minutes or hours; bad steps are refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

TEST_CASE("log mode prints a line every log_every steps, the last step, then a summary", "[nn][progress]") {
    std::ostringstream os;
    double now = 100.0;
    {
        nn::Progress p(10, {.out = &os, .log_every = 4, .clock = [&] { return now; }});
        CHECK(!p.is_terminal());  // a string stream is never a terminal
        for (std::size_t s = 1; s <= 10; ++s) {
            now = 100.0 + 0.5 * static_cast<double>(s);  // 2 steps/s
            p.update(s, 1.0 / static_cast<double>(s));
        }
        p.finish();
        p.finish();  // a second finish prints nothing
    }
    CHECK(os.str() ==
          "step 4/10  loss 0.25  2.00 steps/s  eta 3s\n"
          "step 8/10  loss 0.125  2.00 steps/s  eta 1s\n"
          "step 10/10  loss 0.1  2.00 steps/s  eta 0s\n"
          "done 10 steps in 5s (2.00 steps/s)\n");
}

TEST_CASE("log mode: a label, metrics, time-based lines and an early finish", "[nn][progress]") {
    std::ostringstream os;
    double now = 0.0;
    nn::Progress p(1000, {.out = &os, .mode = nn::ProgressOptions::Mode::lines, .log_every = 500,
                          .log_seconds = 60.0, .label = "epoch 2", .clock = [&] { return now; }});
    for (std::size_t s = 1; s <= 150; ++s) {
        now = static_cast<double>(s);  // 1 step/s: a line every 60 s
        p.update(s, 2.0, {{"acc", 0.5}});
    }
    p.finish();  // stopped early at 150: that step is logged, then the summary
    CHECK(os.str() ==
          "epoch 2  step 60/1000  loss 2  acc 0.5  1.00 steps/s  eta 15m40s\n"
          "epoch 2  step 120/1000  loss 2  acc 0.5  1.00 steps/s  eta 14m40s\n"
          "epoch 2  step 150/1000  loss 2  acc 0.5  1.00 steps/s  eta 14m10s\n"
          "done 150 steps in 2m30s (1.00 steps/s)\n");
}

TEST_CASE("terminal mode redraws one line with carriage returns", "[nn][progress]") {
    std::ostringstream os;
    double now = 0.0;
    {
        nn::Progress p(10, {.out = &os, .mode = nn::ProgressOptions::Mode::terminal, .redraw_seconds = 1.0,
                            .bar_width = 10, .clock = [&] { return now; }});
        CHECK(p.is_terminal());
        for (std::size_t s = 1; s <= 10; ++s) {
            now = 0.25 * static_cast<double>(s);  // redraws at most once a second
            p.update(s, 0.5);
        }
    }  // the destructor finishes the line
    const std::string out = os.str();
    CHECK(std::count(out.begin(), out.end(), '\r') == 4);  // steps 1, 5, 9 and the last
    CHECK(out.find('\n') == out.size() - 1);
    CHECK_THAT(out, Contains("\r 1/10 [#---------]  10%  loss 0.5  4.00 steps/s  eta 2s"));
    CHECK_THAT(out, Contains("\r 5/10 [#####-----]  50%"));
    CHECK_THAT(out, Contains("\r10/10 [##########] 100%  loss 0.5  4.00 steps/s  eta 0s"));

    // A finish after a skipped redraw shows the last step before ending the line.
    std::ostringstream os2;
    now = 0.0;
    nn::Progress q(10, {.out = &os2, .mode = nn::ProgressOptions::Mode::terminal, .redraw_seconds = 100.0,
                        .clock = [&] { return now; }});
    q.update(1, 1.0);
    q.update(2, 1.0);
    q.finish();
    CHECK_THAT(os2.str(), Contains("\r 2/10"));
}

TEST_CASE("durations read as seconds, minutes or hours", "[nn][progress]") {
    CHECK(nn::format_duration(0.0) == "0s");
    CHECK(nn::format_duration(59.4) == "59s");
    CHECK(nn::format_duration(65.0) == "1m05s");
    CHECK(nn::format_duration(3599.0) == "59m59s");
    CHECK(nn::format_duration(3600.0 + 3 * 60 + 20) == "1h03m");
    CHECK(nn::format_duration(100 * 3600.0) == "100h00m");
    CHECK(nn::format_duration(-1.0) == "?");
    CHECK(nn::format_duration(NAN) == "?");
}

TEST_CASE("Progress refuses bad totals and steps", "[nn][progress]") {
    std::ostringstream os;
    REQUIRE_THROWS_WITH(nn::Progress(0, {.out = &os}), Contains("total_steps must be at least 1"));
    nn::Progress p(5, {.out = &os});
    REQUIRE_THROWS_WITH(p.update(0, 1.0), Contains("step 0 is outside 1..5"));
    REQUIRE_THROWS_WITH(p.update(6, 1.0), Contains("step 6 is outside 1..5"));
    p.update(3, 1.0);
    REQUIRE_THROWS_WITH(p.update(2, 1.0), Contains("step 2 comes after step 3"));
    p.finish();
    REQUIRE_THROWS_AS(p.update(4, 1.0), UsageError);
}
