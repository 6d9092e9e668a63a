// Python bindings of the engine: EngineArgs, SamplingParams, the launch place of a group and
// OfflineEngine, with the GIL released while the engine runs and Ctrl-C checked after every step.
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include "offline_engine.h"
#include "py_bindings.h"

namespace nb = nanobind;

namespace shardlm::python {

namespace {

void bind_engine_args(nb::module_& m) {
  nb::class_<EngineArgs>(m, "EngineArgs")
      .def(nb::init<>())
      .def_rw("model", &EngineArgs::model)
      .def_rw("load_format", &EngineArgs::load_format)
      .def_rw("threads", &EngineArgs::threads)
      .def_rw("block_size", &EngineArgs::block_size)
      .def_rw("num_kv_blocks", &EngineArgs::num_kv_blocks)
      .def_rw("kv_cache_memory", &EngineArgs::kv_cache_memory)
      .def_rw("gpu_memory_utilization", &EngineArgs::gpu_memory_utilization)
      .def_rw("enforce_eager", &EngineArgs::enforce_eager)
      .def_rw("max_num_seqs", &EngineArgs::max_num_seqs)
      .def_rw("max_num_batched_tokens", &EngineArgs::max_num_batched_tokens)
      .def_rw("max_model_len", &EngineArgs::max_model_len)
      .def_rw("enable_prefix_caching", &EngineArgs::enable_prefix_caching)
      .def_rw("device", &EngineArgs::device)
      .def_rw("quantization", &EngineArgs::quantization)
      .def_rw("kv_cache_dtype", &EngineArgs::kv_cache_dtype);
}

void bind_sampling_params(nb::module_& m) {
  nb::class_<SamplingParams>(m, "CoreSamplingParams")
      .def(nb::init<>())
      .def_rw("temperature", &SamplingParams::temperature)
      .def_rw("top_k", &SamplingParams::top_k)
      .def_rw("top_p", &SamplingParams::top_p)
      .def_rw("min_p", &SamplingParams::min_p)
      .def_rw("repetition_penalty", &SamplingParams::repetition_penalty)
      .def_rw("presence_penalty", &SamplingParams::presence_penalty)
      .def_rw("frequency_penalty", &SamplingParams::frequency_penalty)
      .def_rw("seed", &SamplingParams::seed)
      .def_rw("max_tokens", &SamplingParams::max_tokens)
      .def_rw("ignore_eos", &SamplingParams::ignore_eos)
      .def_rw("stop_token_ids", &SamplingParams::stop_token_ids)
      .def_rw("stop", &SamplingParams::stop)
      .def_rw("include_stop_str_in_output", &SamplingParams::include_stop_str_in_output)
      .def_rw("skip_special_tokens", &SamplingParams::skip_special_tokens)
      .def_rw("logprobs", &SamplingParams::logprobs)
      .def("validate", &SamplingParams::validate);
}

void bind_launch(nb::module_& m) {
  using parallel::LaunchFlags;
  using parallel::LaunchInfo;
  nb::class_<LaunchFlags>(m, "LaunchFlags")
      .def(nb::init<>())
      .def_rw("tp", &LaunchFlags::tp)
      .def_rw("pp", &LaunchFlags::pp)
      .def_rw("tp_exact", &LaunchFlags::tp_exact)
      .def_rw("nnodes", &LaunchFlags::nnodes)
      .def_rw("node_rank", &LaunchFlags::node_rank)
      .def_rw("nproc_per_node", &LaunchFlags::nproc_per_node)
      .def_rw("ips", &LaunchFlags::ips)
      .def_rw("dist_init_addr", &LaunchFlags::dist_init_addr)
      .def_rw("dist_timeout", &LaunchFlags::dist_timeout)
      .def_rw("step_timeout", &LaunchFlags::step_timeout)
      .def_rw("cluster_token", &LaunchFlags::cluster_token)
      .def_rw("dist_backend", &LaunchFlags::dist_backend);
  nb::class_<LaunchInfo>(m, "LaunchInfo")
      .def_ro("world_size", &LaunchInfo::world_size)
      .def_ro("rank", &LaunchInfo::rank)
      .def_ro("local_rank", &LaunchInfo::local_rank)
      .def_ro("local_world_size", &LaunchInfo::local_world_size)
      .def_ro("node_rank", &LaunchInfo::node_rank)
      .def_ro("nnodes", &LaunchInfo::nnodes)
      .def_ro("master_host", &LaunchInfo::master_host)
      .def_ro("master_port", &LaunchInfo::master_port)
      .def_ro("mode", &LaunchInfo::mode);
  nb::class_<LaunchPlace>(m, "LaunchPlace")
      .def_ro("info", &LaunchPlace::info)
      .def_ro("flags", &LaunchPlace::flags);
  m.def("resolve_place", &resolve_place, nb::arg("flags"), nb::arg("env"),
        "Where this process sits in the group the flags and environment describe.");
}

void bind_outputs(nb::module_& m) {
  nb::class_<TokenLogprobs>(m, "TokenLogprobs")
      .def_ro("token", &TokenLogprobs::token)
      .def_ro("logprob", &TokenLogprobs::logprob)
      .def_ro("top", &TokenLogprobs::top);
  nb::class_<BatchOutput>(m, "BatchOutput")
      .def_ro("prompt_token_ids", &BatchOutput::prompt_token_ids)
      .def_ro("token_ids", &BatchOutput::token_ids)
      .def_ro("text", &BatchOutput::text)
      .def_ro("finish_reason", &BatchOutput::finish_reason)
      .def_ro("logprobs", &BatchOutput::logprobs);
}

// generate with the GIL released; after every step the hook takes the GIL to run Python's signal
// handlers (Ctrl-C raises KeyboardInterrupt here: the batch is aborted, the engine left clean, and
// the exception re-raised) and to report finished prompts to `progress` (a callable taking the
// number newly finished, or None).
std::vector<BatchOutput> generate(OfflineEngine& engine,
                                  const std::vector<std::vector<int32_t>>& prompts,
                                  const std::vector<SamplingParams>& params,
                                  nb::object progress) {
  bool interrupted = false;
  size_t reported = 0;
  const StepHook hook = [&](size_t finished) {
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      interrupted = true;  // the exception stays set for the caller
      return false;
    }
    if (finished == reported || progress.is_none()) return true;
    try {
      progress(finished - reported);
    } catch (nb::python_error& e) {
      e.restore();
      interrupted = true;
      return false;
    }
    reported = finished;
    return true;
  };
  std::vector<BatchOutput> out;
  {
    nb::gil_scoped_release release;
    out = engine.generate(prompts, params, hook);
  }
  if (interrupted) throw nb::python_error();
  return out;
}

std::unique_ptr<OfflineEngine> make_engine(const EngineArgs& args,
                                           const std::optional<LaunchPlace>& group) {
  nb::gil_scoped_release release;  // loading (and a group's start-up) takes a while
  return std::make_unique<OfflineEngine>(args, group);
}

}  // namespace

void bind_engine(nb::module_& m) {
  bind_engine_args(m);
  bind_sampling_params(m);
  bind_launch(m);
  bind_outputs(m);
  nb::class_<OfflineEngine>(m, "OfflineEngine")
      .def_static("create", &make_engine, nb::arg("args"), nb::arg("group").none(),
                  "Loads the model (as rank 0 of `group` when given).")
      .def("generate", &generate, nb::arg("prompts"), nb::arg("params"),
           nb::arg("progress").none())
      .def("encode", &OfflineEngine::encode, nb::arg("text"), nb::arg("add_special"))
      .def("decode", &OfflineEngine::decode, nb::arg("ids"), nb::arg("skip_special"))
      .def("apply_chat_template", &OfflineEngine::apply_chat_template, nb::arg("messages_json"),
           nb::arg("add_generation_prompt"), nb::arg("extra_json"))
      .def("token_text", &OfflineEngine::token_text, nb::arg("id"))
      .def("vocab_size", &OfflineEngine::vocab_size)
      .def("max_model_len", &OfflineEngine::max_model_len)
      .def("eos_token_id", &OfflineEngine::eos_token_id);
}

}  // namespace shardlm::python
