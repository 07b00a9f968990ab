/// \file
/// \brief The tape that records operations and runs backward, NoGrad, and anomaly mode.
/// \ingroup tape
///
/// The tape. Constructing a Tape makes it the calling thread's active tape; while it is
/// active, every op whose inputs require gradients appends an entry (inputs, output, backward
/// closure). backward() walks the entries in reverse creation order in one flat loop: creation
/// order is already a topological order, so there is no recursion and no sort.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup tape
/// @{

/// Options of Tape::backward().
struct BackwardOptions {
    /// Keep the entries (and the arrays they saved) so backward can run again over the same record.
    bool retain_graph = false;
};

/// The record of operations that backward walks. Constructing a Tape makes it this thread's active
/// tape (tapes nest; each thread has its own); every op on tensors that require gradients appends
/// an entry, and backward() walks the entries in reverse creation order in one loop, with no
/// recursion. Tensor's example shows a tape at work.
///
/// The guards of this header (Tape, NoGrad, DetectAnomaly, OpScope) act for as long as they are
/// alive, so each must be a named variable: `NoGrad();` would be a temporary that ends at the
/// semicolon and guards nothing. Their constructors are `[[nodiscard]]`, so the compiler warns about
/// such a line (tested by the discarded_guards test).
class [[nodiscard]] Tape {
public:
    [[nodiscard]] Tape();  ///< makes this tape the thread's active one until it is destroyed
    ~Tape();
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;
    Tape(Tape&&) = delete;
    Tape& operator=(Tape&&) = delete;

    /// Seeds d root / d root = 1 (root must hold one element) and propagates to every value recorded
    /// on this tape; leaves accumulate their gradients until zeroed. Afterwards the record is released
    /// unless options.retain_graph; a second backward over a released record is a UsageError.
    void backward(const Tensor& root, BackwardOptions options = {});
    /// The same with an explicit gradient of the root (any shape equal to the root's).
    void backward(const Tensor& root, const Tensor& grad_output, BackwardOptions options = {});

    std::size_t size() const;   ///< entries recorded (0 once released)
    bool consumed() const;      ///< backward has released the record
    void clear();               ///< drop the record without backward (start afresh)

    /// The innermost active tape of this thread, or nullptr.
    static Tape* active();
    const std::shared_ptr<detail::TapeState>& state() const { return state_; }  ///< internal: the record

private:
    std::shared_ptr<detail::TapeState> state_;
};

/// While alive, nothing is recorded on this thread and op outputs do not require gradients.
/// The guard remembers where it was created (the defaults fill in the caller's file and line), so
/// that a backward that finds nothing recorded because of a guard still alive can say which one.
class [[nodiscard]] NoGrad {
public:
    /// Stops recording on this thread until destroyed; file and line default to the caller's.
    [[nodiscard]] explicit NoGrad(const char* file = __builtin_FILE(), int line = __builtin_LINE());
    ~NoGrad();
    NoGrad(const NoGrad&) = delete;
    NoGrad& operator=(const NoGrad&) = delete;
};

/// True when an op run now on this thread would be recorded (a tape is active, no NoGrad guard).
bool is_recording();
/// Where the NoGrad guards alive on this thread were created, as "file:line", outermost first.
std::vector<std::string> live_no_grad_guards();

/// Anomaly mode, for finding where a NaN or Inf comes from. While a DetectAnomaly guard is alive on
/// this thread, every op's result is checked as it is computed, and every gradient as backward
/// produces it. The first NaN or Inf throws an AnomalyError naming the op, its entry on the tape and
/// where it ran (the innermost OpScope: for RNN, LSTM and GRU the layer, direction and time step).
/// Each check scans a whole array, so this is for debugging a run, not for training at speed.
class [[nodiscard]] DetectAnomaly {
public:
    [[nodiscard]] DetectAnomaly();  ///< turns anomaly mode on for this thread until destroyed
    ~DetectAnomaly();
    DetectAnomaly(const DetectAnomaly&) = delete;
    DetectAnomaly& operator=(const DetectAnomaly&) = delete;
};
bool anomaly_mode();  ///< a DetectAnomaly guard is alive on this thread

/// Where an op runs, for anomaly-mode messages: "RNN layer 0 (reverse), step 7", or just
/// "my cell, step 3". The strings must outlive the scope (string literals, or a layer's own name).
struct Where {
    const char* name = nullptr;       ///< the layer or cell ("RNN", "my cell")
    long layer = -1;                  ///< -1: not shown
    const char* direction = nullptr;  ///< "forward", "reverse" or nullptr
    long step = -1;                   ///< -1: not shown
};
std::string where_str(const Where& w);  ///< w as a message shows it: "RNN layer 0 (reverse), step 7"

/// Labels the ops run on this thread while it is alive. Scopes nest; messages name the innermost.
/// Cheap when anomaly mode is off (a push and a pop), so custom cells can label every step
/// (from tests/test_anomaly.cpp):
///
/// \snippet test_anomaly.cpp opscope
class [[nodiscard]] OpScope {
public:
    [[nodiscard]] explicit OpScope(const Where& where);  ///< labels the ops until destroyed
    ~OpScope();
    OpScope(const OpScope&) = delete;
    OpScope& operator=(const OpScope&) = delete;
};

/// @}
}  // namespace tapegrad
