// The template syntax tree: expressions and statements, with source locations for error messages.
// Built once by the parser and only read afterwards, so rendering can share it across threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "template/template_error.h"
#include "template/value.h"

namespace shardlm::tmpl {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  Literal,  // value
  Name,     // name
  List,     // items
  Tuple,    // items
  Dict,     // items as key, value pairs (even, odd)
  Attr,     // object.name
  Item,     // object[index]
  Slice,    // object[start:stop:step]; absent parts are null
  Call,     // callee(args, kwargs)
  Filter,   // object | name(args, kwargs); object is null for block filters
  Test,     // object is [not] name(args)
  Unary,    // op ("-", "+", "not") operand
  Binary,   // lhs op rhs: arithmetic, "~", "and", "or"
  Compare,  // object (op operand)...: kwargs holds each operator with its right operand
  Cond,     // then if cond else otherwise
};

struct Expr {
  ExprKind kind;
  SourceLoc loc;
  std::string name;  // Name, Attr, Filter, Test, and the operator of Unary/Binary
  Value value;       // Literal
  ExprPtr object;    // Attr, Item, Slice, Filter, Test; Unary operand; Binary lhs; Call callee
  ExprPtr index;     // Item index; Binary rhs; Cond condition
  ExprPtr start, stop, step;  // Slice; Cond uses start = then, stop = otherwise
  std::vector<ExprPtr> args;  // List/Tuple/Dict items; Call/Filter/Test positional arguments
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // Test: "is not"

  Expr(ExprKind k, SourceLoc l) : kind(k), loc(l) {}
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  Text,         // text
  Print,        // {{ expr }}
  If,           // if expr: body else otherwise
  For,          // for targets in expr [if filter]: body else otherwise
  Set,          // set targets = expr, or set ns.attr = expr (attr non-empty)
  SetBlock,     // set target [| filters]: body
  Macro,        // macro name(params): body
  CallBlock,    // call[(params)] expr: body
  FilterBlock,  // filter filters: body
  With,         // with assignments: body
  Break,
  Continue,
  Generation,  // transformers' {% generation %}: renders body
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Stmt {
  StmtKind kind;
  SourceLoc loc;
  std::string text;                  // Text; Macro name; SetBlock target
  std::vector<std::string> targets;  // For/Set targets; With names
  std::string attr;                  // Set on a namespace attribute
  ExprPtr expr;                      // Print/If/For/Set/CallBlock expression
  ExprPtr filter;                    // For's "if" filter
  std::vector<ExprPtr> filters;      // SetBlock/FilterBlock filter chain (object null)
  std::vector<ExprPtr> values;       // With values
  std::vector<MacroParam> params;    // Macro / CallBlock caller parameters
  Body body;
  Body otherwise;
  bool recursive = false;  // For ... recursive
  // Macro / CallBlock: which of jinja2's special names the body reads (see macro_scan.h).
  bool catch_varargs = false;    // reads `varargs`: extra positional arguments are accepted
  bool catch_kwargs = false;     // reads `kwargs`: extra keyword arguments are accepted
  bool accesses_caller = false;  // reads `caller`: a caller= keyword argument is accepted

  Stmt(StmtKind k, SourceLoc l) : kind(k), loc(l) {}
};

}  // namespace shardlm::tmpl
