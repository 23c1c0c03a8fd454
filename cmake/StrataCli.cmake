# The strata command (src/cli/, docs/cli.md), the helpers it shares with the benchmark runner
# (src/harness/), the tracer library `strata trace` preloads (src/trace/) and their install
# rules, with the man pages strata(1) and strata(3).

# Where Debian installs the peer allocators (libjemalloc2, ...).
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(STRATA_PEER_LIBDIR /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
else()
  set(STRATA_PEER_LIBDIR /usr/lib/x86_64-linux-gnu)
endif()

add_library(strata_harness STATIC ${PROJECT_SOURCE_DIR}/src/harness/harness.c)
target_include_directories(strata_harness PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_compile_options(strata_harness PRIVATE ${STRATA_WARNINGS})
target_compile_definitions(strata_harness PUBLIC _GNU_SOURCE
                           PRIVATE HARNESS_LIBDIR="${STRATA_PEER_LIBDIR}")

# libstrata-trace.so: libstrata with the libc names recording every call (trace/tracer.c).
strata_add_objects(strata_trace_objs "" ON SOURCES ${PROJECT_SOURCE_DIR}/src/trace/tracer.c)
add_library(strata_trace SHARED $<TARGET_OBJECTS:strata_objs> $<TARGET_OBJECTS:strata_trace_objs>)
set_target_properties(strata_trace PROPERTIES OUTPUT_NAME strata-trace
                      LINK_DEPENDS ${PROJECT_SOURCE_DIR}/src/api/exports.map)
target_link_libraries(strata_trace PRIVATE Threads::Threads)
if(STRATA_LIBUNWIND)
  target_link_libraries(strata_trace PRIVATE -Wl,--push-state,--no-as-needed ${STRATA_LIBUNWIND}
                        -Wl,--pop-state)
endif()
target_link_options(strata_trace PRIVATE -Wl,-z,now
                    -Wl,--version-script=${PROJECT_SOURCE_DIR}/src/api/exports.map)

# The command sits beside libstrata.so in the build tree, as it finds it in ../lib when
# installed.
file(GLOB STRATA_CLI_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cli/*.c)
add_executable(strata_cli ${STRATA_CLI_SOURCES})
set_target_properties(strata_cli PROPERTIES OUTPUT_NAME strata
                      RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
file(RELATIVE_PATH STRATA_CLI_LIBDIR_FROM_BINDIR ${CMAKE_INSTALL_FULL_BINDIR}
     ${CMAKE_INSTALL_FULL_LIBDIR})
target_compile_options(strata_cli PRIVATE ${STRATA_WARNINGS})
target_compile_definitions(strata_cli PRIVATE CLI_LIBDIR_FROM_BINDIR="${STRATA_CLI_LIBDIR_FROM_BINDIR}")
target_link_libraries(strata_cli PRIVATE strata_harness strata_prefixed Threads::Threads m)
add_dependencies(strata_cli strata strata_trace)
# The heap picture program, beside the command as installed.
configure_file(${PROJECT_SOURCE_DIR}/tools/strata-heap-svg ${PROJECT_BINARY_DIR}/strata-heap-svg
               COPYONLY)

install(TARGETS strata_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS strata_trace LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(PROGRAMS ${PROJECT_SOURCE_DIR}/tools/strata-heap-svg DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/strata.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/strata.3
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
