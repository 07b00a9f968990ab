// Compiled, never run, by the discarded_guards test (tests/CMakeLists.txt). A guard written as a
// temporary ends at its semicolon and guards nothing; the guards' constructors are [[nodiscard]],
// so each line marked DISCARDED below must draw a nodiscard diagnostic, an error under -Werror.
// Built with TAPEGRAD_GUARDS_NAMED, the same guards as named variables must compile cleanly: that
// proves the failure comes from the discarded temporaries, not from the flags or the includes.
#include <tapegrad/autograd/tape.hpp>

using namespace tapegrad;

void guards() {
#ifdef TAPEGRAD_GUARDS_NAMED
    Tape tape;
    NoGrad no_grad;
    NoGrad braced{};
    DetectAnomaly anomaly;
    OpScope scope({.name = "step"});
    OpScope braced_scope{{.name = "step"}};
#else
    Tape();                     // DISCARDED
    NoGrad();                   // DISCARDED
    NoGrad{};                   // DISCARDED
    DetectAnomaly();            // DISCARDED
    OpScope{{.name = "step"}};  // DISCARDED
    // clang 14 gives no diagnostic for a parenthesised braced argument (GCC 12 does).
    OpScope({.name = "step"});  // DISCARDED (not clang)
#endif
}
