// A GPU kernel's name as a trace table shows it: CUPTI gives the mangled symbol
// (_ZN7shardlm4cuda12_GLOBAL__N_111gemv_kernelILi8E13__nv_bfloat16EEvPKfPKT0_i); the table wants
// "gemv_kernel<8, __nv_bfloat16>": demangled, without the return type, the parameter list and
// this project's namespaces, and cut to a width.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace shardlm {

// `name` demangled when it is a mangled C++ name (else as given), shortened as above; longer than
// `max_chars`, it is cut and ends in "...".
std::string short_kernel_name(std::string_view name, size_t max_chars = 90);

}  // namespace shardlm
