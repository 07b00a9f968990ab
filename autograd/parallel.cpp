// tapegrad: detail::run_two (detail/parallel.hpp) and the BLAS thread count (blas_info.hpp).
// The bidirectional sequence ops run their two directions through run_two, and a one-direction
// op's backward its recurrence beside its products over all steps. OpenBLAS's thread count is one
// number for the process, so the halving is counted: the first run_two to start halves it and the
// last to end restores it.
//
// OpenBLAS's worker threads do not sleep when a product ends: they spin, yielding, for about 2^28
// cycles (OPENBLAS_THREAD_TIMEOUT) waiting for the next one. A step that ran any product on two
// threads leaves one spinning through the whole of the next run_two, a third thread on two cores:
// bidirectional config (d) at two threads took either 21 or 30 ms per step, depending on the run.
// So the first run_two to start, when each piece gets one thread, also stops OpenBLAS's workers
// (blas_thread_shutdown_, exported for its own fork handler), and OpenBLAS starts them again at
// its next product on several threads; that made (d) a steady 22 ms. Declared weak: a BLAS
// without it runs as before. The stop is safe only while no product uses a worker; tapegrad's own
// products are counted (gemms_in_flight), and a program that calls the BLAS itself from other
// threads at the same time should give it one thread (it would oversubscribe the cores otherwise).
#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

#include "blas_info.hpp"
#include "detail/kernels.hpp"
#include "detail/parallel.hpp"

extern "C" {
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);
int blas_thread_shutdown_(void) __attribute__((weak));
}

namespace tapegrad {

namespace {
std::mutex split_mutex;
int splits_active = 0;  // run_two calls running their pieces at once now
int threads_before = 1;  // the BLAS's thread count when the first of them started
std::atomic<std::uint64_t> together_count{0};

// The count the user set (halved in OpenBLAS while pieces run at once); split_mutex held.
int threads_set() { return splits_active > 0 ? threads_before : std::max(1, openblas_get_num_threads()); }
}  // namespace

int blas_threads() {
    std::lock_guard<std::mutex> lock(split_mutex);
    return threads_set();
}

void set_blas_threads(int n) {
    if (n < 1) n = 1;
    std::lock_guard<std::mutex> lock(split_mutex);
    if (splits_active > 0) threads_before = n;  // applies once the pieces running now end
    else openblas_set_num_threads(n);
}

namespace detail {

void run_two(const std::function<void()>& a, const std::function<void()>& b, bool together) {
    {
        std::lock_guard<std::mutex> lock(split_mutex);
        const int threads = threads_set();
        together = together && threads >= 2;
        if (together && splits_active++ == 0) {
            threads_before = threads;
            openblas_set_num_threads(std::max(1, threads / 2));
            // Only when each piece runs on one thread (with more, they use the workers), and only
            // when no product is running (one on another thread may be using a worker). A product
            // that starts after this check reads the count of one set above and uses no worker.
            std::atomic_thread_fence(std::memory_order_seq_cst);  // the count's store before the load
            if (threads / 2 == 1 && blas_thread_shutdown_ && gemms_in_flight.load() == 0) blas_thread_shutdown_();
        }
    }
    if (!together) {
        a();
        b();
        return;
    }
    // Restores the BLAS's threads when the last piece running at once has ended, whatever happens.
    struct Restore {
        ~Restore() {
            std::lock_guard<std::mutex> lock(split_mutex);
            if (--splits_active == 0) openblas_set_num_threads(threads_before);
        }
    } restore;
    std::exception_ptr ea, eb;
    {
        std::jthread worker;
        try {
            worker = std::jthread([&] {
                try {
                    b();
                } catch (...) {
                    eb = std::current_exception();
                }
            });
        } catch (const std::system_error&) {  // no thread to be had: b runs after a, on the caller
        }
        try {
            a();
        } catch (...) {
            ea = std::current_exception();
        }
        if (!worker.joinable()) {
            if (ea) std::rethrow_exception(ea);
            b();
            return;
        }
    }  // joins the worker
    together_count.fetch_add(1, std::memory_order_relaxed);
    if (ea) std::rethrow_exception(ea);
    if (eb) std::rethrow_exception(eb);
}

bool can_run_two() {
    std::lock_guard<std::mutex> lock(split_mutex);
    return splits_active == 0 && threads_set() >= 2;
}

std::uint64_t runs_together() { return together_count.load(std::memory_order_relaxed); }

}  // namespace detail
}  // namespace tapegrad
