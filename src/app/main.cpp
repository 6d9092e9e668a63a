// shardlm entry point: parses the subcommand and turns any shardlm::Error into a one-line message
// and exit status 1.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "app/commands.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/shutdown_signals.h"

int main(int argc, char** argv) {
  shardlm::shutdown_signals::install();  // before any thread: see shutdown_signals.h
  spdlog::set_default_logger(spdlog::stderr_color_mt("shardlm"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  CLI::App app{"shardlm: LLM inference across GPUs and machines"};
  app.set_version_flag("--version", "shardlm " + shardlm::build_id());
  app.require_subcommand(1);
  shardlm::app::add_generate_command(app);
  shardlm::app::add_tokenize_commands(app);
  shardlm::app::add_info_command(app);
  shardlm::app::add_render_template_command(app);
  shardlm::app::add_bench_command(app);
  shardlm::app::add_serve_command(app);
  shardlm::app::add_doctor_command(app);
  shardlm::app::add_frontend_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a bad flag prints CLI11's message and exits 1 like any error.
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const shardlm::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
