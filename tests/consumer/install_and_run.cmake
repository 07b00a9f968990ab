# Driver of the install_consumer test (cmake -P): installs the build tree into a fresh prefix under
# WORK_DIR, configures and builds tests/consumer against it alone (CMAKE_PREFIX_PATH), and runs it.
# Inputs (-D): BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, MAKE_PROGRAM, CXX_COMPILER, CONFIG.
cmake_minimum_required(VERSION 3.22)

foreach(var BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_consumer: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

# Every run starts from nothing, so a header dropped from the install rules cannot hide behind a
# copy left by an earlier run.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc})")
  endif()
endfunction()

run_step("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --config ${CONFIG})
# The internals (autograd/detail/, nn/detail/) are not installed, so a public header that includes
# them would break every user; say which one rather than leave a compiler error to find it.
foreach(dir autograd nn)
  if(EXISTS ${prefix}/include/tapegrad/${dir}/detail)
    message(FATAL_ERROR "install_consumer: the internal headers ${dir}/detail/ were installed")
  endif()
endforeach()
file(GLOB_RECURSE installed_headers ${prefix}/include/tapegrad/*.hpp)
if(NOT installed_headers)
  message(FATAL_ERROR "install_consumer: no headers installed under ${prefix}/include/tapegrad")
endif()
foreach(h ${installed_headers})
  file(STRINGS ${h} internal REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<].*detail/")
  if(internal)
    message(FATAL_ERROR "install_consumer: installed header ${h} includes an internal header: ${internal}")
  endif()
endforeach()

set(configure_args -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=${CONFIG})
if(MAKE_PROGRAM)
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
run_step("configuring the consumer project" ${CMAKE_COMMAND} ${configure_args})
run_step("building the consumer project" ${CMAKE_COMMAND} --build ${WORK_DIR}/build --config ${CONFIG})

find_program(consumer tapegrad_consumer PATHS ${WORK_DIR}/build ${WORK_DIR}/build/${CONFIG} NO_DEFAULT_PATH)
if(NOT consumer)
  message(FATAL_ERROR "install_consumer: the consumer executable was not built")
endif()
run_step("running the consumer" ${consumer})
