// tapegrad: the tape. Constructing a Tape makes it the calling thread's active tape; while it is
// active, every op whose inputs require gradients appends an entry (inputs, output, backward
// closure). backward() walks the entries in reverse creation order in one flat loop: creation
// order is already a topological order, so there is no recursion and no sort.
#pragma once

#include <cstddef>
#include <memory>

#include "tensor.hpp"

namespace tapegrad {

struct BackwardOptions {
    // Keep the entries (and the arrays they saved) so backward can run again over the same record.
    bool retain_graph = false;
};

class Tape {
public:
    Tape();
    ~Tape();
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;
    Tape(Tape&&) = delete;
    Tape& operator=(Tape&&) = delete;

    // Seeds d root / d root = 1 (root must hold one element) and propagates to every value recorded
    // on this tape; leaves accumulate their gradients until zeroed. Afterwards the record is released
    // unless options.retain_graph; a second backward over a released record is a UsageError.
    void backward(const Tensor& root, BackwardOptions options = {});
    // The same with an explicit gradient of the root (any shape equal to the root's).
    void backward(const Tensor& root, const Tensor& grad_output, BackwardOptions options = {});

    std::size_t size() const;   // entries recorded (0 once released)
    bool consumed() const;      // backward has released the record
    void clear();               // drop the record without backward (start afresh)

    // The innermost active tape of this thread, or nullptr.
    static Tape* active();
    const std::shared_ptr<detail::TapeState>& state() const { return state_; }

private:
    std::shared_ptr<detail::TapeState> state_;
};

// While alive, nothing is recorded on this thread and op outputs do not require gradients.
class NoGrad {
public:
    NoGrad();
    ~NoGrad();
    NoGrad(const NoGrad&) = delete;
    NoGrad& operator=(const NoGrad&) = delete;
};

// True when an op run now on this thread would be recorded (a tape is active, no NoGrad guard).
bool is_recording();

}  // namespace tapegrad
