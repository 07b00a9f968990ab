// tapegrad::nn: the progress reporter. Rates and ETAs are averages since the start, which are
// steadier than per-step rates for the uneven steps of sequence models (variable lengths, evals).
#include "progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

namespace {
std::string format_rate(double r) {
    if (!std::isfinite(r) || r <= 0.0) return "-- steps/s";
    if (r >= 100.0) return fmt::format("{:.0f} steps/s", r);
    if (r >= 10.0) return fmt::format("{:.1f} steps/s", r);
    return fmt::format("{:.2f} steps/s", r);
}
}  // namespace

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0.0) return "?";
    const auto s = static_cast<unsigned long long>(std::llround(seconds));
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
    return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

Progress::Progress(std::size_t total_steps, ProgressOptions options)
    : total_(total_steps), options_(std::move(options)) {
    if (total_ == 0) throw ValueError("Progress: total_steps must be at least 1, got 0");
    if (!(options_.log_seconds >= 0.0) || !(options_.redraw_seconds >= 0.0))
        throw ValueError(fmt::format("Progress: log_seconds ({}) and redraw_seconds ({}) must be >= 0",
                                     options_.log_seconds, options_.redraw_seconds));
    out_ = options_.out ? options_.out : &std::cerr;
    using Mode = ProgressOptions::Mode;
    if (options_.mode == Mode::automatic) {
        int fd = -1;
        if (out_ == &std::cerr || out_ == &std::clog) fd = STDERR_FILENO;
        else if (out_ == &std::cout) fd = STDOUT_FILENO;
        terminal_ = fd >= 0 && ::isatty(fd) == 1;
    } else {
        terminal_ = options_.mode == Mode::terminal;
    }
    if (options_.log_every == 0) options_.log_every = std::max<std::size_t>(1, (total_ + 9) / 10);
    start_ = now();
    if (!terminal_) last_draw_ = start_;  // log_seconds counts from the start
}

Progress::~Progress() {
    try {
        finish();
    } catch (...) {
        // A destructor must not throw; a failing stream only loses the last report.
    }
}

double Progress::now() const {
    if (options_.clock) return options_.clock();
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Progress::status(std::size_t step, double loss, const Metrics& metrics, double elapsed) const {
    const double rate = elapsed > 0.0 ? static_cast<double>(step) / elapsed : 0.0;
    const double eta = rate > 0.0 ? static_cast<double>(total_ - step) / rate : -1.0;
    std::string s = fmt::format("loss {:.4g}", loss);
    for (const auto& [name, v] : metrics) s += fmt::format("  {} {:.4g}", name, v);
    s += fmt::format("  {}  eta {}", format_rate(rate), format_duration(eta));
    return s;
}

void Progress::update(std::size_t step, double loss, const Metrics& metrics) {
    if (finished_) throw UsageError(fmt::format("Progress: update({}) after finish()", step));
    if (step == 0 || step > total_)
        throw ValueError(fmt::format("Progress: step {} is outside 1..{}", step, total_));
    if (step < last_step_)
        throw ValueError(fmt::format("Progress: step {} comes after step {}; steps never go back", step, last_step_));
    last_step_ = step;
    last_loss_ = loss;
    last_metrics_ = metrics;
    const double t = now();
    const double elapsed = t - start_;
    const std::string prefix = options_.label.empty() ? "" : options_.label + "  ";
    if (terminal_) {
        if (step != total_ && t - last_draw_ < options_.redraw_seconds) return;
        last_draw_ = t;
        last_logged_ = step;
        const std::size_t w = options_.bar_width;
        const std::size_t filled = w * step / total_;
        std::string line = fmt::format("{}{:>{}}/{} [{}{}] {:3}%  {}", prefix, step, fmt::format("{}", total_).size(),
                                       total_, std::string(filled, '#'), std::string(w - filled, '-'),
                                       100 * step / total_, status(step, loss, metrics, elapsed));
        const std::size_t width = line.size();
        if (width < drawn_width_) line.append(drawn_width_ - width, ' ');
        drawn_width_ = width;
        *out_ << '\r' << line << std::flush;
        return;
    }
    const bool every = step % options_.log_every == 0 || step == total_;
    const bool timed = options_.log_seconds > 0.0 && t - last_draw_ >= options_.log_seconds;
    if (!every && !timed) return;
    last_draw_ = t;
    last_logged_ = step;
    *out_ << fmt::format("{}step {}/{}  {}\n", prefix, step, total_, status(step, loss, metrics, elapsed)) << std::flush;
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    const double elapsed = now() - start_;
    if (terminal_) {
        if (last_logged_ != last_step_) {  // the last update was skipped by the redraw limit
            options_.redraw_seconds = 0.0;
            finished_ = false;
            update(last_step_, last_loss_, last_metrics_);
            finished_ = true;
        }
        if (drawn_width_ > 0) *out_ << '\n' << std::flush;
        return;
    }
    if (last_step_ == 0) return;
    if (last_logged_ != last_step_) {
        const std::string prefix = options_.label.empty() ? "" : options_.label + "  ";
        *out_ << fmt::format("{}step {}/{}  {}\n", prefix, last_step_, total_,
                             status(last_step_, last_loss_, last_metrics_, elapsed));
    }
    const double rate = elapsed > 0.0 ? static_cast<double>(last_step_) / elapsed : 0.0;
    *out_ << fmt::format("done {} steps in {} ({})\n", last_step_, format_duration(elapsed), format_rate(rate))
          << std::flush;
}

}  // namespace tapegrad::nn
