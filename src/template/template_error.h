// TemplateError: a chat-template problem (syntax, runtime, limits) with the template line and
// column.
#pragma once

#include <string>

#include "core/error.h"

namespace shardlm {

struct SourceLoc {
  int line = 0;  // 1-based; 0 when unknown
  int col = 0;   // 1-based
};

class TemplateError : public Error {
 public:
  TemplateError(const std::string& message, SourceLoc loc)
      : Error(loc.line > 0 ? "chat template error at line " + std::to_string(loc.line) +
                                 ", column " + std::to_string(loc.col) + ": " + message
                           : "chat template error: " + message),
        loc_(loc),
        detail_(message) {}
  SourceLoc loc() const { return loc_; }
  const std::string& detail() const { return detail_; }  // the message without the location

 private:
  SourceLoc loc_;
  std::string detail_;
};

}  // namespace shardlm

namespace shardlm::tmpl {

// Thrown by value operations, filters and methods that do not know where in the template they run;
// the evaluator rethrows it as TemplateError with the line and column of the expression.
class EvalFailure : public std::runtime_error {
 public:
  explicit EvalFailure(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void eval_fail(fmt::format_string<Args...> format, Args&&... args) {
  throw EvalFailure(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace shardlm::tmpl
