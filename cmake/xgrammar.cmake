# xgrammar's C++ core (structured output: JSON schema, regex, EBNF -> token masks), built from its
# released source package (the PyPI sdist), fetched into the build directory at configure time and
# checked against a pinned SHA-256; never committed. Only the core library: no Python bindings, no
# tests, no cpptrace. SHARDLM_XGRAMMAR_URL may point at a local copy of the same tarball (offline
# builds); the hash is checked all the same.
set(SHARDLM_XGRAMMAR_VERSION 0.1.27)
set(SHARDLM_XGRAMMAR_SHA256 40af7bb2891f1633ec7f660723c74a92a963307d283aca9e3b4e53a0feaf1d46)
set(SHARDLM_XGRAMMAR_URL
    "https://files.pythonhosted.org/packages/62/e1/b522b1e50fddd773d368c2945ef5ed628aa90c0c972027f9aa5a51d6d4f9/xgrammar-${SHARDLM_XGRAMMAR_VERSION}.tar.gz"
    CACHE STRING "Where to fetch xgrammar's source package (URL or local path)")

include(FetchContent)
FetchContent_Declare(xgrammar_src
  URL ${SHARDLM_XGRAMMAR_URL}
  URL_HASH SHA256=${SHARDLM_XGRAMMAR_SHA256}
  DOWNLOAD_EXTRACT_TIMESTAMP TRUE)
FetchContent_GetProperties(xgrammar_src)
if(NOT xgrammar_src_POPULATED)
  FetchContent_Populate(xgrammar_src)
endif()

# cpp/*.cc without cpp/nanobind/ (the Python bindings); their own CMakeLists adds -Werror and
# -flto, which a static library linked by a non-LTO program cannot use, hence our own target.
file(GLOB_RECURSE SHARDLM_XGRAMMAR_SOURCES ${xgrammar_src_SOURCE_DIR}/cpp/*.cc)
list(FILTER SHARDLM_XGRAMMAR_SOURCES EXCLUDE REGEX "/cpp/nanobind/")
add_library(xgrammar_core STATIC ${SHARDLM_XGRAMMAR_SOURCES})
set_target_properties(xgrammar_core PROPERTIES CXX_STANDARD 17 POSITION_INDEPENDENT_CODE ON)
target_include_directories(xgrammar_core SYSTEM PUBLIC
  ${xgrammar_src_SOURCE_DIR}/include
  ${xgrammar_src_SOURCE_DIR}/3rdparty/picojson
  ${xgrammar_src_SOURCE_DIR}/3rdparty/dlpack/include)
target_compile_definitions(xgrammar_core PUBLIC XGRAMMAR_ENABLE_CPPTRACE=0
                                                XGRAMMAR_ENABLE_INTERNAL_CHECK=0)
target_compile_options(xgrammar_core PRIVATE -O2 -w)
