// `shardlm bench serve`, registered on the `bench` subcommand by add_bench_command.
#pragma once

#include <CLI/CLI.hpp>

namespace shardlm::app {

void add_bench_serve_command(CLI::App& bench);

}  // namespace shardlm::app
