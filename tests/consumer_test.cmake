# SPDX-License-Identifier: MIT
# Installs the build tree into a staging prefix, then builds and runs examples/consumer against it twice:
# with find_package(attn) and with pkg-config. Run by ctest: cmake -DBUILD_DIR=... -DSOURCE_DIR=... -P this.
set(stage ${BUILD_DIR}/consumer-test/stage)
set(work ${BUILD_DIR}/consumer-test)
file(REMOVE_RECURSE ${work})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${stage} --component Unspecified)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/consumer -B ${work}/cmake -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_PREFIX_PATH=${stage})
run(${CMAKE_COMMAND} --build ${work}/cmake)
run(${work}/cmake/consumer)
# pkg-config: the documented link line.
set(ENV{PKG_CONFIG_PATH} ${stage}/lib/pkgconfig:${stage}/lib/x86_64-linux-gnu/pkgconfig)
execute_process(COMMAND pkg-config --cflags --libs --static attn OUTPUT_VARIABLE flags RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --libs attn failed")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
run(c++ -std=c++20 -O2 ${SOURCE_DIR}/examples/consumer/main.cc -o ${work}/consumer_pc ${flags})
run(${work}/consumer_pc)
