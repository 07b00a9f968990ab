// tapegrad: two pieces of work at once, sharing the BLAS's threads (parallel.cpp).
#pragma once

#include <cstdint>
#include <functional>

namespace tapegrad::detail {

// Runs a and b. When `together` and the BLAS may use two or more threads, they run at once, a on
// the caller and b on one more thread, and the BLAS runs with half its threads until both end, so
// the two never ask for more cores than the BLAS was given. Otherwise (one BLAS thread: the user
// asked for one core) a runs, then b, so a must never wait for b. a and b must not touch the same
// memory except to read it, or under their own synchronisation (GradSink in recurrent.cpp: b reads
// what a publishes through an atomic). Run at once, an exception from either is rethrown once both
// have ended (a's first); one after the other, an exception from a is rethrown at once, and b does
// not run.
void run_two(const std::function<void()>& a, const std::function<void()>& b, bool together = true);

// Whether a run_two called now would run its pieces at once: the BLAS has two or more threads and
// no run_two is running its pieces at once already (inside one, a second split would ask for more
// cores than the BLAS was given).
bool can_run_two();

// How many run_two calls in this process have run their two pieces at once (for tests).
std::uint64_t runs_together();

}  // namespace tapegrad::detail
