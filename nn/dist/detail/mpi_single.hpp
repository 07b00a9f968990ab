// tapegrad::dist without MPI: the few MPI calls distributed.cpp makes, for a job of exactly one
// process (rank 0 of 1). Every collective leaves its in-place buffer as it is, which is what MPI
// itself returns with one rank. Used where MPI is not installed, and in the sanitizer builds
// (Open MPI's start-up allocations would be reported there as leaks).
#pragma once

#include <cstdio>
#include <cstdlib>

using MPI_Comm = int;
using MPI_Datatype = int;
using MPI_Op = int;
using MPI_Errhandler = int;
using MPI_User_function = void(void*, void*, int*, MPI_Datatype*);

inline constexpr int MPI_SUCCESS = 0;
inline constexpr int MPI_MAX_ERROR_STRING = 64;
inline constexpr int MPI_THREAD_FUNNELED = 1;
inline constexpr MPI_Comm MPI_COMM_WORLD = 0;
inline constexpr MPI_Errhandler MPI_ERRORS_RETURN = 0;
inline constexpr MPI_Datatype MPI_FLOAT = 1, MPI_DOUBLE = 2, MPI_CHAR = 3, MPI_UNSIGNED_LONG_LONG = 4, MPI_UINT8_T = 5;
inline constexpr MPI_Op MPI_OP_NULL = 0, MPI_SUM = 1, MPI_MAX = 2, MPI_MIN = 3;
inline void* const MPI_IN_PLACE = nullptr;

namespace tapegrad::dist::detail {
inline bool single_initialized = false, single_finalized = false;
}

inline int MPI_Initialized(int* flag) { return *flag = tapegrad::dist::detail::single_initialized, MPI_SUCCESS; }
inline int MPI_Finalized(int* flag) { return *flag = tapegrad::dist::detail::single_finalized, MPI_SUCCESS; }
inline int MPI_Init_thread(int*, char***, int required, int* provided) {
    tapegrad::dist::detail::single_initialized = true;
    *provided = required;
    return MPI_SUCCESS;
}
inline int MPI_Finalize() {
    tapegrad::dist::detail::single_finalized = true;
    return MPI_SUCCESS;
}
inline int MPI_Comm_rank(MPI_Comm, int* rank) { return *rank = 0, MPI_SUCCESS; }
inline int MPI_Comm_size(MPI_Comm, int* size) { return *size = 1, MPI_SUCCESS; }
inline int MPI_Comm_set_errhandler(MPI_Comm, MPI_Errhandler) { return MPI_SUCCESS; }
inline int MPI_Op_create(MPI_User_function*, int, MPI_Op* op) { return *op = MPI_SUM, MPI_SUCCESS; }
inline int MPI_Op_free(MPI_Op* op) { return *op = MPI_OP_NULL, MPI_SUCCESS; }
inline int MPI_Barrier(MPI_Comm) { return MPI_SUCCESS; }
inline int MPI_Allreduce(const void*, void*, int, MPI_Datatype, MPI_Op, MPI_Comm) { return MPI_SUCCESS; }
inline int MPI_Bcast(void*, int, MPI_Datatype, int, MPI_Comm) { return MPI_SUCCESS; }
inline int MPI_Error_string(int code, char* text, int* len) {
    return *len = std::snprintf(text, MPI_MAX_ERROR_STRING, "error %d", code), MPI_SUCCESS;
}
inline int MPI_Abort(MPI_Comm, int code) { std::exit(code); }
