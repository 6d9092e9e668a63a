# One static library per module (src/<module>/), with the layer order as link edges, so that the
# build itself holds the layers (docs/architecture.md, "Layers"; scripts/check_layers.py states the
# same order as a test).
#
# A module's headers are reachable only through its include root, build/layers/<module>, which
# holds one link, <module> -> src/<module>; the module's target publishes that root, and a target
# sees the roots of the modules it links (transitively). An include of a module that is not below
# is then "No such file or directory" at compile time, not a test failure later.
#
# shardlm_module(<name> DEPS <modules below it> [SOURCES <files>] [EXCLUDE <regex>...])
#   SOURCES: the module's sources when not every .cpp under src/<name>/ (the default).
#   EXCLUDE: regexes of sources left to another target.

set(SHARDLM_LAYER_ROOTS ${CMAKE_BINARY_DIR}/layers)
set(SHARDLM_MODULE_TARGETS "")

# Third-party libraries and project-wide definitions every module may use.
add_library(shardlm_common INTERFACE)
target_compile_definitions(shardlm_common INTERFACE SHARDLM_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                                                    SHARDLM_VERSION="${PROJECT_VERSION}")
target_link_libraries(shardlm_common INTERFACE nlohmann_json::nlohmann_json CLI11::CLI11
                      spdlog::spdlog fmt::fmt PkgConfig::PCRE2 PkgConfig::OPENBLAS
                      PkgConfig::XXHASH PkgConfig::HTTPLIB PkgConfig::NATS prometheus-cpp::core
                      gloo Threads::Threads)

function(shardlm_module_root name)
  set(root ${SHARDLM_LAYER_ROOTS}/${name})
  if(NOT EXISTS ${root}/${name})
    file(MAKE_DIRECTORY ${root})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${name} ${root}/${name} SYMBOLIC)
  endif()
endfunction()

function(shardlm_module name)
  cmake_parse_arguments(M "" "ROOT" "DEPS;SOURCES;EXCLUDE" ${ARGN})
  if(NOT M_ROOT)
    set(M_ROOT ${name})
  endif()
  if(M_SOURCES)
    set(sources ${M_SOURCES})
  else()
    file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  endif()
  foreach(pattern ${M_EXCLUDE})
    list(FILTER sources EXCLUDE REGEX "${pattern}")
  endforeach()
  shardlm_module_root(${M_ROOT})
  set(target shardlm_${name})
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} PUBLIC ${SHARDLM_LAYER_ROOTS}/${M_ROOT})
  target_compile_options(${target} PRIVATE
                         $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -fopenmp-simd>)
  set(deps "")
  foreach(dep ${M_DEPS})
    list(APPEND deps shardlm_${dep})
  endforeach()
  target_link_libraries(${target} PUBLIC shardlm_common ${deps})
  set(SHARDLM_MODULE_TARGETS ${SHARDLM_MODULE_TARGETS} ${target} PARENT_SCOPE)
endfunction()

# Every directory under src/ must be a module: a new one fails here until it is given its place.
function(shardlm_check_modules)
  file(GLOB entries RELATIVE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/src/*)
  foreach(entry ${entries})
    if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/src/${entry} AND NOT TARGET shardlm_${entry})
      message(FATAL_ERROR "src/${entry}/ is in no module: add it to CMakeLists.txt (shardlm_module, "
                          "with the modules below it) and to scripts/check_layers.py")
    endif()
  endforeach()
endfunction()
