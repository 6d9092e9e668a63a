// The pieces of the shardlm._core module, each bound in its own file.
#pragma once

#include <nanobind/nanobind.h>

namespace shardlm::python {

void bind_engine(nanobind::module_& m);  // py_engine.cpp

}  // namespace shardlm::python
