// shardlm._core: the C++ engine for the Python package (python/shardlm). Input problems become
// ValueError (InvalidRequest: a request or argument out of range, naming it), every other
// shardlm::Error becomes shardlm.ShardlmError (a RuntimeError).
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/default_model.h"
#include "core/build_info.h"
#include "core/error.h"
#include "engine/request_validation.h"
#include "py_bindings.h"

namespace nb = nanobind;

NB_MODULE(_core, m) {
  m.doc() = "shardlm's C++ engine (use the shardlm package, not this module)";
  // The engine's log lines go to stderr, as the binary's do; stdout stays the script's.
  spdlog::set_default_logger(spdlog::stderr_color_mt("shardlm"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  nb::exception<shardlm::Error>(m, "ShardlmError", PyExc_RuntimeError);
  // Registered last, tried first: a bad request or setting is the caller's ValueError.
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const shardlm::InvalidRequest& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("build_id", &shardlm::build_id, "The shardlm build (version and git commit).");
  m.def("resolve_model", nb::overload_cast<const std::string&, const std::string&>(
                             &shardlm::app::resolve_model),
        nb::arg("model"), nb::arg("load_format"),
        "The model path: `model`, or the default model (fetched on first use) when it is empty.");
  shardlm::python::bind_engine(m);
}
