"""Ray's wrappers: the error a Ray task or actor failed with is the root cause, never the wrapper that carried it.

The message forms are Ray's own (python/ray/exceptions.py, printed by Ray 2.60 for these tests): a task's exception
reaches the caller as `RayTaskError(<cause class>)`, whose message is the task's traceback under a
"ray::Class.method() (pid=N, ip=A, ...)" title; `ActorDiedError` for an actor whose process died (its context on
tab-indented lines, then the exit detail) or whose __init__ raised; Ray's memory monitor (the raylet) killing a
worker for the node's host memory: "Task was killed due to the node running low on memory." (Ray 2.2-2.55) and
"N worker(s) were killed due to the node running low on memory." (Ray 2.56 and later), raised to the caller as
ray.exceptions.OutOfMemoryError and reported by an actor's death as worker exit type NODE_OUT_OF_MEMORY.
"""

from __future__ import annotations

from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.logclean import clean_lines
from vllm_bug.analyzer.tracebacks import parse_tracebacks, pick_root_cause

DRIVER_FRAMES = (
    "Traceback (most recent call last):\n"
    '  File "/usr/local/lib/python3.10/dist-packages/vllm/executor/ray_gpu_executor.py", line 310, in _run_workers\n'
    "    ray_worker_outputs = ray.get(ray_worker_outputs)\n"
)
RAY_TITLE = (
    "\x1b[36mray::RayWorkerWrapper.execute_method()\x1b[39m (pid=3133, ip=10.0.0.2, actor_id=a1b2c3, "
    "repr=<vllm.executor.ray_utils.RayWorkerWrapper object at 0x7f2c>)\n"
)
WORKER_FRAMES = (
    '  File "/usr/local/lib/python3.10/dist-packages/vllm/worker/worker_base.py", line 481, in execute_method\n'
    "    raise e\n"
    '  File "/usr/local/lib/python3.10/dist-packages/vllm/worker/worker.py", line 179, in '
    "determine_num_available_blocks\n"
    "    self.model_runner.profile_run()\n"
)
TORCH_OOM = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.95 GiB. GPU 1 has a total capacity of "
    "79.15 GiB of which 1.04 GiB is free.\n"
)
RAY_TASK_OOM = DRIVER_FRAMES + "ray.exceptions.RayTaskError(OutOfMemoryError): " + RAY_TITLE + WORKER_FRAMES + TORCH_OOM

ACTOR_CONTEXT = (
    "\tclass_name: RayWorkerWrapper\n"
    "\tactor_id: 4f48435abed4c32e8891fa7f0d000000\n"
    "\tpid: 3133\n"
    "\tname: worker-3\n"
    "\tnamespace: 6d2a1c\n"
    "\tip: 10.0.0.2\n"
)
ACTOR_DIED_SYSTEM = (
    DRIVER_FRAMES
    + "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n"
    + ACTOR_CONTEXT
    + "The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit detail: "
    "Worker unexpectedly exits with a connection error code 2. End of file.\n"
)
ACTOR_DIED_HOST_OOM = (
    DRIVER_FRAMES
    + "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n"
    + ACTOR_CONTEXT
    + "The actor is dead because its worker process has died. Worker exit type: NODE_OUT_OF_MEMORY Worker exit "
    "detail: Task was killed due to the node running low on memory.\n"
    "Memory on the node (IP: 10.0.0.2, ID: 3a4b6075) where the task (actor ID: 4f48435a, "
    "name=RayWorkerWrapper.__init__, pid=3133, memory used=23.49GB) was running was 121.35GB / 125.53GB "
    "(0.966714), which exceeds the memory usage threshold of 0.95.\n"
)
TASK_HOST_OOM = (
    DRIVER_FRAMES + '  File "/usr/local/lib/python3.10/dist-packages/ray/_private/worker.py", line 2661, in get\n'
    "    raise value\n"
    "ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.\n"
    "Memory on the node (IP: 10.0.0.2, ID: 3a4b6075) where the task (actor ID: 4f48435a, "
    "name=RayWorkerWrapper.__init__, pid=3133, memory used=23.49GB) was running was 121.35GB / 125.53GB "
    "(0.966714), which exceeds the memory usage threshold of 0.95. Ray killed this worker (ID: 58a9081c) because "
    "it was the most recently scheduled task.\n"
)
TASK_HOST_OOM_2_56 = (
    DRIVER_FRAMES + "ray.exceptions.OutOfMemoryError: 1 worker(s) were killed due to the node running low on memory. "
    "Memory on the node (IP: 10.0.0.2, ID: 3a4b6075) was 121.35GB used / 125.53GB limit (0.966714)\n"
)
WORKER_LOGGED_ILLEGAL = (
    "(RayWorkerWrapper pid=3133) ERROR 07-11 10:00:01 worker_base.py:467] Error executing method 'load_model'. "
    "This might cause deadlock in distributed execution.\n"
    "(RayWorkerWrapper pid=3133) Traceback (most recent call last):\n"
    '(RayWorkerWrapper pid=3133)   File "/usr/local/lib/python3.10/dist-packages/vllm/worker/worker_base.py", '
    "line 459, in execute_method\n"
    "(RayWorkerWrapper pid=3133)     return executor(*args, **kwargs)\n"
    "(RayWorkerWrapper pid=3133) RuntimeError: CUDA error: an illegal memory access was encountered\n"
)


def _root(text: str):
    lines = clean_lines(text)
    return pick_root_cause(lines, parse_tracebacks(lines))


def test_the_task_exception_under_the_ray_title_is_the_root_cause():
    root = _root(RAY_TASK_OOM)
    assert root.exc_type == "torch.OutOfMemoryError" and root.message.startswith("CUDA out of memory")
    assert [frame.function for frame in root.frames][-1] == "determine_num_available_blocks"
    analysis = analyze_text(RAY_TASK_OOM)
    assert analysis.diagnoses[0].category == "cuda_oom"
    assert analysis.signature.startswith("vllm-sig/1:oom:OutOfMemoryError:CUDA out of memory:worker.")


def test_a_cut_task_traceback_leaves_the_class_ray_named():
    # the reporter's excerpt stops before the task's own exception line: RayTaskError(OutOfMemoryError) names it
    cut = DRIVER_FRAMES + "ray.exceptions.RayTaskError(OutOfMemoryError): " + RAY_TITLE + WORKER_FRAMES
    root = _root(cut)
    assert root.exc_type == "OutOfMemoryError"
    assert root.carried_by is not None and root.carried_by.exc_type.endswith("RayTaskError(OutOfMemoryError)")
    assert root.frames[-1].function == "determine_num_available_blocks"
    analysis = analyze_text(cut)
    assert analysis.diagnoses[0].category == "cuda_oom"
    assert analysis.diagnoses[0].rule != "ROOT_CAUSE_NOT_CAPTURED"
    assert ":oom:OutOfMemoryError:" in analysis.signature


def test_a_cut_generic_task_error_stays_a_missing_cause():
    cut = "ray.exceptions.RayTaskError(RuntimeError): " + RAY_TITLE
    assert _root(cut) is None
    assert analyze_text(cut).diagnoses[0].rule == "ROOT_CAUSE_NOT_CAPTURED"


def test_an_indented_task_traceback_is_read_too():
    indented = (
        DRIVER_FRAMES
        + "ray.exceptions.RayTaskError(RuntimeError): "
        + RAY_TITLE
        + "".join("    " + line + "\n" for line in WORKER_FRAMES.splitlines())
        + "    RuntimeError: CUDA error: an illegal memory access was encountered\n"
    )
    root = _root(indented)
    assert root.exc_type == "RuntimeError" and "illegal memory access" in root.message
    assert analyze_text(indented).diagnoses[0].category == "illegal_memory_access"


def test_ray_host_memory_kill_is_not_a_gpu_out_of_memory():
    for text in (TASK_HOST_OOM, TASK_HOST_OOM_2_56):
        analysis = analyze_text(text)
        top = analysis.diagnoses[0]
        assert top.rule == "RAY_HOST_MEMORY_KILL" and top.category == "other", text
        assert "host memory" in top.title
        assert all(d.category != "cuda_oom" for d in analysis.diagnoses)
        assert ":host-oom:OutOfMemoryError:node running low on memory:" in analysis.signature


def test_an_actor_killed_for_host_memory_is_diagnosed_as_that():
    root = _root(ACTOR_DIED_HOST_OOM)
    assert root.exc_type == "ray.exceptions.OutOfMemoryError"
    assert root.message == "Task was killed due to the node running low on memory."
    assert root.carried_by is not None and root.carried_by.exc_type == "ray.exceptions.ActorDiedError"
    analysis = analyze_text(ACTOR_DIED_HOST_OOM)
    assert analysis.diagnoses[0].rule == "RAY_HOST_MEMORY_KILL"
    assert all(d.category != "cuda_oom" for d in analysis.diagnoses)


def test_an_actor_death_after_a_real_error_is_its_consequence():
    for text in (WORKER_LOGGED_ILLEGAL + ACTOR_DIED_SYSTEM, ACTOR_DIED_SYSTEM + WORKER_LOGGED_ILLEGAL):
        root = _root(text)
        assert root.exc_type == "RuntimeError" and "illegal memory access" in root.message
        assert analyze_text(text).diagnoses[0].category == "illegal_memory_access"


def test_an_actor_death_alone_says_the_cause_is_missing():
    assert _root(ACTOR_DIED_SYSTEM) is None
    assert analyze_text(ACTOR_DIED_SYSTEM).diagnoses[0].rule == "ROOT_CAUSE_NOT_CAPTURED"


def test_an_actor_whose_init_raised_has_that_error_as_root_cause():
    text = (
        DRIVER_FRAMES + "ray.exceptions.ActorDiedError: The actor died because of an error raised in its creation "
        "task, " + RAY_TITLE + WORKER_FRAMES + TORCH_OOM
    )
    assert _root(text).exc_type == "torch.OutOfMemoryError"


def test_an_unhandled_task_error_logged_by_ray_has_the_task_error_as_root_cause():
    text = (
        "(_AsyncLLMEngine pid=10245) Unhandled error (suppress with 'RAY_IGNORE_UNHANDLED_ERRORS=1'): "
        + "".join(f"(_AsyncLLMEngine pid=10245) {line}\n" for line in (RAY_TITLE + WORKER_FRAMES).splitlines())
        + "(_AsyncLLMEngine pid=10245) RuntimeError: CUDA error: no kernel image is available for execution on the "
        "device\n"
    )
    root = _root(text)
    assert root.exc_type == "RuntimeError" and "no kernel image" in root.message


def test_a_compiled_graph_channel_closed_after_a_worker_error_is_a_consequence():
    # Ray's compiled graphs (vLLM's Ray executor) raise RayChannelError once a peer is gone; str() is RaySystemError's
    text = WORKER_LOGGED_ILLEGAL + "ray.exceptions.RayChannelError: System error: NCCL group has been destroyed.\n"
    assert "illegal memory access" in _root(text).message
    text = (
        "ray.exceptions.RayChannelError: System error: NCCL group has been destroyed.\nValueError: bad rope scaling\n"
    )
    assert _root(text).exc_type == "ValueError"


def test_the_raylets_kill_summary_is_host_memory_too():
    # the raylet's periodic summary (node_manager.cc), forwarded to the driver with a "(raylet)" tag
    text = (
        "(raylet) [2024-03-02 07:23:59,445 E 395 395] (raylet) node_manager.cc:3049: 1 Workers (tasks / actors) "
        "killed due to memory pressure (OOM), 0 Workers crashed due to other reasons at node (ID: e5d953ef, "
        "IP: 10.0.0.2) over the last time period.\n"
    )
    analysis = analyze_text(text)
    assert analysis.diagnoses[0].rule == "RAY_HOST_MEMORY_KILL"
    assert all(d.category != "cuda_oom" for d in analysis.diagnoses)


def test_the_exit_detail_is_found_after_a_long_driver_traceback_and_every_context_line():
    frames = "".join(
        f'  File "/usr/local/lib/python3.10/dist-packages/vllm/engine/llm_engine.py", line {n}, in step_{n}\n'
        f"    step_{n + 1}()\n"
        for n in range(12)
    )
    text = "Traceback (most recent call last):\n" + frames + ACTOR_DIED_HOST_OOM.split("\n", 3)[3]
    root = _root(text)
    assert root is not None and root.exc_type == "ray.exceptions.OutOfMemoryError"
    assert analyze_text(text).diagnoses[0].rule == "RAY_HOST_MEMORY_KILL"
