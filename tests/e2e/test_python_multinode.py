"""FastDeploy-style multi-node from Python: the same script runs on two hosts (two network
namespaces joined by a veth pair, as in test_two_hosts) with LLM(..., tensor_parallel_size=3,
pipeline_parallel_size=2, ips="A,B"). The first address is the master: it generates (and its
greedy text equals one process); on the other host _check_master() is False, generate returns []
and the script's end waits until the master's LLM ends the group; both exit 0 and no rank
process is left."""
import json
import subprocess
import sys

from conftest import MODEL
from python_api import python_env, run_script
from test_two_hosts import ADDR, NS, two_hosts  # noqa: F401 (the fixture)

PROMPTS = ["The capital of France is", "1, 2, 3, 4,"]

SCRIPT = r"""
import json, os, sys, time
from shardlm import LLM, SamplingParams
model, ips, prompts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
llm = LLM(model=model, tensor_parallel_size=3, pipeline_parallel_size=2, ips=ips, threads=1,
          device="cpu", dist_timeout=90)
outputs = llm.generate(prompts, SamplingParams(temperature=0, max_tokens=24, ignore_eos=True),
                       use_tqdm=False)
ranks = [p.pid for p in llm._group.procs]
print(json.dumps({"master": llm._check_master(), "is_master": llm.is_master, "ranks": ranks,
                  "text": [o.outputs[0].text for o in outputs], "printed": time.time()}))
"""

SINGLE = r"""
import json, sys
from shardlm import LLM, SamplingParams
llm = LLM(model=sys.argv[1], threads=1, device="cpu")
print(json.dumps([o.outputs[0].text for o in llm.generate(json.loads(sys.argv[2]),
      SamplingParams(temperature=0, max_tokens=24, ignore_eos=True), use_tqdm=False)]))
"""


def test_same_script_on_two_hosts(two_hosts):  # noqa: F811
    rc, expected, err = run_script(SINGLE, MODEL, json.dumps(PROMPTS))
    assert rc == 0, err[-3000:]
    env = python_env(SHARDLM_CLUSTER_TOKEN="python-two-hosts")
    procs = [subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SCRIPT, MODEL,
                               ",".join(ADDR), json.dumps(PROMPTS)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for ns in (NS[1], NS[0])]  # the worker host first: it waits for the master
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    worker, master = [json.loads(o.splitlines()[-1]) if o.strip() else None for o, _ in outs]
    assert procs[1].returncode == 0 and master, outs[1][1][-3000:]
    assert procs[0].returncode == 0 and worker, outs[0][1][-3000:]
    assert master["master"] is True and master["is_master"] is True
    assert master["text"] == expected
    assert worker["master"] is False and worker["text"] == []
    assert len(worker["ranks"]) == 3 and len(master["ranks"]) == 2
    assert "this node (1 of 2) runs worker ranks" in outs[0][1]
    gone = subprocess.run(["ps", "-o", "pid=", "-p", ",".join(
        str(p) for p in worker["ranks"] + master["ranks"])], capture_output=True, text=True)
    assert gone.stdout.strip() == ""
