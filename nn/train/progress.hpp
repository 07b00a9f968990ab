/// \file
/// \brief Progress reports for long training runs.
/// \ingroup training
///
/// Progress reports for long training runs. On a terminal, one line redrawn in place
/// with a carriage return (a bar, step/total, loss, steps/s, ETA); elsewhere (CI logs, files) plain lines every
/// log_every steps or every log_seconds, which read well in a log and never fill it with redraws.
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace tapegrad::nn {

/// \addtogroup training
/// @{

/// Options of Progress.
struct ProgressOptions {
    /// Where to write; nullptr means std::cerr, which keeps standard output for the program's results
    /// (a piped `train > results.txt` still shows progress on the terminal).
    std::ostream* out = nullptr;
    /// automatic: terminal when `out` is std::cerr or std::cout and that descriptor is a tty.
    enum class Mode {
        automatic,  ///< terminal on a tty, lines elsewhere
        terminal,   ///< one line redrawn in place
        lines       ///< plain lines, every log_every steps or log_seconds
    } mode = Mode::automatic;  ///< how progress is shown
    std::size_t log_every = 0;      ///< lines mode: a line every this many steps; 0 = about 10 lines per run
    double log_seconds = 0.0;       ///< lines mode: also a line when this long has passed since the last; 0 = off
    double redraw_seconds = 0.1;    ///< terminal mode: redraw at most this often (the last step always)
    std::size_t bar_width = 24;     ///< terminal mode: characters inside the bar
    std::string label{};            ///< printed first, e.g. "epoch 3"
    std::function<double()> clock{};  ///< seconds on a monotonic clock; defaults to std::chrono::steady_clock
};

/// Extra values shown after the loss, e.g. {{"acc", 0.91}, {"lr", 1e-3}}.
using Metrics = std::vector<std::pair<std::string, double>>;

/// A progress report for a training run of known length: a bar redrawn in place on a terminal,
/// plain lines in a log. Construct it, call update() after every step and finish() at the end.
class Progress {
public:
    /// total_steps >= 1 (ValueError otherwise). The clock starts now.
    explicit Progress(std::size_t total_steps, ProgressOptions options = {});
    ~Progress();  ///< finishes, if finish() was not called
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    /// `step` is the number of steps completed, 1..total, never decreasing (ValueError otherwise).
    void update(std::size_t step, double loss, const Metrics& metrics = {});
    /// Ends the report: the terminal line is completed with a newline; in lines mode the last step is
    /// logged if it was not, then "done N steps in <time> (<rate> steps/s)". Called once; later calls do nothing.
    void finish();

    bool is_terminal() const { return terminal_; }  ///< whether it redraws one line (terminal mode)

private:
    double now() const;
    std::string status(std::size_t step, double loss, const Metrics& metrics, double elapsed) const;

    std::size_t total_;
    ProgressOptions options_;
    std::ostream* out_;
    bool terminal_;
    double start_;
    double last_draw_ = -1e300;
    std::size_t last_step_ = 0;
    std::size_t last_logged_ = 0;
    double last_loss_ = 0.0;
    Metrics last_metrics_{};
    std::size_t drawn_width_ = 0;  ///< length of the terminal line now shown, to blank leftovers
    bool finished_ = false;
};

/// A duration as a person reads it: "7s", "1m05s", "2h03m" ("?" when not finite or negative).
std::string format_duration(double seconds);

/// @}
}  // namespace tapegrad::nn
