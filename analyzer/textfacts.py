"""Facts from pasted text: a log, a GitHub issue body, collect_env / nvidia-smi / pip output.

`facts_from_text` cleans the text into lines, then each extractor below reads one kind of fact.
`fill_from_lines` only fills what is still unknown, so a bundle's measured facts always win over
what its log text says. Regexes run over the joined text (not line by line) wherever they can, and
none of them can backtrack badly: every repetition is bounded or anchored.
"""

from __future__ import annotations

import ast
import re
import shlex
from typing import Any

from vllm_bug.analyzer.collect_env_parse import CollectEnv, parse_bool, parse_collect_env
from vllm_bug.analyzer.facts import Facts, Gpu, normalise_package_name
from vllm_bug.analyzer.gpus import lookup_gpu
from vllm_bug.analyzer.logclean import clean_lines
from vllm_bug.analyzer.tracebacks import parse_tracebacks, pick_root_cause
from vllm_bug.analyzer.lazyre import lazy_compile

MAX_TEXT_CHARS = 8 << 20  # beyond this, only the head and the tail are read
_HEAD_CHARS = 1 << 20
MAX_LITERAL_CHARS = 64 << 10  # `non-default args: {...}` longer than this is not parsed
MAX_GPUS_FROM_COUNT = 64
MAX_NUMBER_DIGITS = 18  # a logged count longer than this is garbage, not a fact (and int() refuses > 4300 digits)

GIB = 1 << 30
MIB = 1 << 20
_UNIT = {"gib": GIB, "gb": GIB, "g": GIB, "mib": MIB, "mb": MIB, "m": MIB, "kib": 1 << 10, "kb": 1 << 10, "tib": 1 << 40}


def facts_from_text(text: str) -> Facts:
    facts = Facts(input_kind="text")
    if len(text) > MAX_TEXT_CHARS:
        text = text[:_HEAD_CHARS] + "\n[... cut by vllm-bug ...]\n" + text[-(MAX_TEXT_CHARS - _HEAD_CHARS):]
    lines = clean_lines(text)
    facts.lines = lines
    title_index = _title_index(lines)
    if title_index is not None:
        facts.title = lines[title_index].strip()
    fill_from_lines(facts, lines, title_index)
    return facts


def fill_from_lines(facts: Facts, lines: list[str], title_index: int | None = None) -> Facts:
    """Fill every still-unknown fact that the lines state."""
    blob = "\n".join(lines)
    env_out = parse_collect_env(lines)
    _apply_collect_env(facts, env_out)
    _packages_from_text(facts, blob)
    _nvidia_smi(facts, blob)
    _versions(facts, blob)
    _driver(facts, blob)
    _gpus_from_free_text(facts, _gpu_window(lines) if len(lines) > 600 else blob)
    _memory_totals(facts, blob)
    _compute_capability(facts, blob)
    _fill_gpu_specs(facts)
    _env_assignments(facts, blob)
    _engine_args(facts, lines, blob)
    _kv_cache_numbers(facts, blob)
    _xid(facts, blob)
    _host_hints(facts, blob)
    skip = frozenset([title_index]) if title_index is not None else frozenset()
    if not facts.tracebacks:
        facts.tracebacks = parse_tracebacks(lines, skip)
    if facts.root_cause is None:
        facts.root_cause = pick_root_cause(lines, facts.tracebacks, facts.title, title_index)
    return facts


# -- title -----------------------------------------------------------------------------------
_ISSUE_TITLE = lazy_compile(r"^\s*(?:\[(?:Bug|Usage|Installation|Performance|Feature|Doc|Misc|RFC|New Model|Hardware)[^\]]{0,20}\]|#\s)", re.IGNORECASE)


def _title_index(lines: list[str]) -> int | None:
    for i, line in enumerate(lines[:5]):
        if not line.strip():
            continue
        return i if _ISSUE_TITLE.match(line) and len(line) < 400 else None
    return None


# -- collect_env -----------------------------------------------------------------------------
def _set(facts: Facts, name: str, value: Any) -> None:
    if value in (None, "", [], {}):
        return
    if getattr(facts, name) in (None, "", [], {}):
        setattr(facts, name, value)


def _fill(facts: Facts, name: str, rx: Any, blob: str, group: int = 1) -> None:
    """facts.NAME from GROUP of RX's first match in BLOB, unless NAME is already known."""
    if getattr(facts, name) is None and (m := rx.search(blob)):
        setattr(facts, name, m.group(group))


def _apply_collect_env(facts: Facts, env: CollectEnv) -> None:
    if not env.found:
        return
    _set(facts, "torch_version", env.get("torch_version"))
    _set(facts, "torch_cuda", env.get("torch_cuda"))
    if facts.torch_cuda_available is None:
        facts.torch_cuda_available = parse_bool(env.get("torch_cuda_available"))
    _set(facts, "nvcc_version", _first_version(env.get("nvcc_version")))
    _set(facts, "driver_version", _first_version(env.get("driver_version")))
    vllm = env.get("vllm_version")
    if vllm:
        m = re.match(r"v?(\d+\.\d+[\w.+-]*)", vllm.split("@")[0].strip())
        _set(facts, "vllm_version", m.group(1) if m else None)
    _set(facts, "os", env.get("os"))
    glibc = env.get("glibc")
    if glibc:
        m = re.search(r"(\d+\.\d+)", glibc)
        _set(facts, "glibc", m.group(1) if m else None)
    python = env.get("python_version")
    if python:
        m = re.match(r"(\d+\.\d+(?:\.\d+)?)", python)
        _set(facts, "python_version", m.group(1) if m else None)
    platform = env.get("python_platform")
    if platform:
        m = re.match(r"Linux-(.+?)-(?:x86_64|aarch64|ppc64le|arm64)", platform)
        _set(facts, "kernel", m.group(1) if m else None)
    if not facts.gpus and env.gpus:
        facts.gpus = [Gpu(name=name, index=index) for index, name in env.gpus]
    for name, version in env.packages.items():
        facts.packages.setdefault(normalise_package_name(name), version)
    for key, value in env.env.items():
        facts.env.setdefault(key, _mask_secret(key, value))


def _first_version(value: str | None) -> str | None:
    if not value:
        return None
    m = re.search(r"\d+\.\d+(?:\.\d+)*", value)
    return m.group(0) if m else None


# -- packages --------------------------------------------------------------------------------
_FREEZE_LINE = lazy_compile(r"^[ \t]*(?:[-*][ \t]+)?`?([A-Za-z][A-Za-z0-9._-]{0,80})==([0-9][\w.+!-]{0,60})`?[ \t]*$", re.MULTILINE)
_PIP_LIST_HEADER = lazy_compile(r"^Package[ \t]+Version[^\n]*\n-{3,}[ \t]+-{3,}[^\n]*\n", re.MULTILINE)
_PIP_LIST_ROW = lazy_compile(r"([A-Za-z0-9][A-Za-z0-9._-]{0,80})[ \t]+(\d[\w.+!-]{0,60})(?:[ \t]+\S.*)?")


def _packages_from_text(facts: Facts, blob: str) -> None:
    if "==" in blob:
        for m in _FREEZE_LINE.finditer(blob):
            facts.packages.setdefault(normalise_package_name(m.group(1)), m.group(2))
    for header in _PIP_LIST_HEADER.finditer(blob):
        pos = header.end()
        for _ in range(5000):
            end = blob.find("\n", pos)
            row = blob[pos : end if end != -1 else len(blob)]
            m = _PIP_LIST_ROW.fullmatch(row.strip())
            if not m:
                break
            facts.packages.setdefault(normalise_package_name(m.group(1)), m.group(2))
            if end == -1:
                break
            pos = end + 1


# -- nvidia-smi ------------------------------------------------------------------------------
_SMI_HEADER = lazy_compile(r"Driver Version:\s*(\d{3}\.\d+(?:\.\d+)?)(?:\s+CUDA Version:\s*(\d+\.\d+))?")
_SMI_CUDA = lazy_compile(r"CUDA Version:\s*(\d+\.\d+)")
_SMI_GPU_ROW = lazy_compile(
    r"^\|\s{0,6}(?P<index>\d{1,3})\s{1,6}(?P<name>\S[^|\n]{0,80}?)\s+(?:On|Off|WDDM|TCC)\s*\|"
    r"[^|\n]{0,40}\|[^|\n]{0,40}\|[ \t]*\n"
    r"\|[^|\n]{0,80}\|\s*(?P<used>\d{1,9})MiB\s*/\s*(?P<total>\d{1,9})MiB\s*\|",
    re.MULTILINE,
)
_SMI_PROCESS_ROW = lazy_compile(
    r"^\|\s{0,6}(?P<gpu>\d{1,3})\s+(?:N/A|\d+)\s+(?:N/A|\d+)\s+(?P<pid>\d{1,10})\s+(?P<type>[CGM+]{1,3})\s+"
    r"(?P<name>\S[^|\n]{0,120}?)\s+(?P<mem>\d{1,9}|N/A)(?:MiB)?\s*\|",
    re.MULTILINE,
)


def _nvidia_smi(facts: Facts, blob: str) -> None:
    if "Driver Version" in blob:
        m = _SMI_HEADER.search(blob)
        if m:
            _set(facts, "driver_version", m.group(1))
            _set(facts, "driver_cuda", m.group(2))
    if facts.driver_cuda is None and "CUDA Version:" in blob:
        m = _SMI_CUDA.search(blob)
        if m:
            _set(facts, "driver_cuda", m.group(1))
    if "MiB" not in blob or "|" not in blob:
        return
    smi_gpus = [
        Gpu(
            name=m.group("name").strip(),
            index=int(m.group("index")),
            memory_used_bytes=int(m.group("used")) * MIB,
            memory_total_bytes=int(m.group("total")) * MIB,
        )
        for m in _SMI_GPU_ROW.finditer(blob)
    ]
    if smi_gpus:
        if not facts.gpus:
            facts.gpus = smi_gpus
        else:
            by_index = {g.index: g for g in smi_gpus}
            for gpu in facts.gpus:
                smi = by_index.get(gpu.index)
                if smi:
                    gpu.memory_total_bytes = gpu.memory_total_bytes or smi.memory_total_bytes
                    gpu.memory_used_bytes = gpu.memory_used_bytes or smi.memory_used_bytes
    if "Processes" in blob:
        by_index = {g.index: g for g in facts.gpus}
        for m in _SMI_PROCESS_ROW.finditer(blob):
            gpu = by_index.get(int(m.group("gpu")))
            if gpu is None:
                continue
            mem = m.group("mem")
            gpu.processes.append(
                {"pid": int(m.group("pid")), "name": m.group("name").strip(), "type": m.group("type"),
                 "used_memory_bytes": int(mem) * MIB if mem.isdigit() else None}
            )


# -- versions --------------------------------------------------------------------------------
_TORCH_FREE = lazy_compile(r"(?<![\w.])(?:py)?torch(?:==|-(?=\d)|[ \t]*[:=]?[ \t]*`?v?)(\d+\.\d+(?:\.\d+)?(?:\+[a-z]{2,5}\d*)?)", re.IGNORECASE)
_TORCH_CU_SUFFIX = lazy_compile(r"\+cu(?:da)?(\d{2,3})$")
_VLLM_LOG = lazy_compile(
    r"(?:vLLM API server version|Initializing an? (?:V1 )?LLM engine \(v|vLLM version|Starting vLLM API server [^\n]{0,40}?version)\s*v?(\d+\.\d+(?:\.\d+)?(?:[.+-]?(?:post|rc|dev)\d*)*(?:\+[\w.]+)?)",
    re.IGNORECASE,
)
_VLLM_IMAGE = lazy_compile(r"vllm/vllm-openai:v?(\d+\.\d+(?:\.\d+)?(?:\.post\d+)?)")
_VLLM_FREE = lazy_compile(r"(?<![\w])vllm(?:==|[ \t]*[:=]?[ \t]*`?v?|-)(\d+\.\d+(?:\.\d+)?(?:[.+]?(?:post|rc|dev)\d+)*(?:\+[\w.]+)?)", re.IGNORECASE)
_NVCC = lazy_compile(r"Cuda compilation tools, release (\d+\.\d+), V(\d+\.\d+\.\d+)")
_PY_PATH = lazy_compile(r"/python(3\.\d{1,2})/(?:site|dist)-packages/")


def _versions(facts: Facts, blob: str) -> None:
    _set(facts, "torch_version", facts.package("torch"))
    _fill(facts, "torch_version", _TORCH_FREE, blob)
    if facts.torch_cuda is None and facts.torch_version:
        m = _TORCH_CU_SUFFIX.search(facts.torch_version)
        if m:
            digits = m.group(1)
            facts.torch_cuda = f"{digits[:-1]}.{digits[-1]}"
    _set(facts, "vllm_version", facts.package("vllm"))
    for rx in (_VLLM_LOG, _VLLM_IMAGE, _VLLM_FREE):
        _fill(facts, "vllm_version", rx, blob)
    if "compilation tools" in blob:
        _fill(facts, "nvcc_version", _NVCC, blob, group=2)
    _fill(facts, "python_version", _PY_PATH, blob)


_DRIVER_FREE = lazy_compile(r"(?:driver(?:[ \t]+version)?|驱动)[ \t]*[:=：]?[ \t]*`?(\d{3}\.\d{1,3}(?:\.\d{1,3})?)\b", re.IGNORECASE)
_DEVICE_QUERY = lazy_compile(r"CUDA Driver Version / Runtime Version\s+(\d+\.\d+)\s*/\s*(\d+\.\d+)")


def _driver(facts: Facts, blob: str) -> None:
    _fill(facts, "driver_version", _DRIVER_FREE, blob)
    if "Runtime Version" in blob:
        _fill(facts, "driver_cuda", _DEVICE_QUERY, blob)


# -- GPUs ------------------------------------------------------------------------------------
_GPU_WORDS = (
    r"(?:NVIDIA[ \t]+)?(?:GeForce[ \t]+|Tesla[ \t]+|Quadro[ \t]+)?"
    r"(?:(?:RTX|GTX)[ \t]*(?:PRO[ \t]*)?[A]?\d{3,4}(?:[ \t]*(?:Ti|SUPER|Super|Ada|D|Laptop(?: GPU)?|Blackwell))*"
    r"|TITAN[ \t]+(?:RTX|V|Xp?)"
    r"|(?:GB|GH)\d{2,3}|[ABHL]\d{2,3}[A-Z]?(?:[- ](?:SXM\d?|PCIe|PCIE|NVL|\d{2,3}GB?))*|[HBL]\d{1,2}0?S?|[TPVK]\d{1,3}S?(?:-(?:SXM\d|PCIE|PCIe)-?\d{0,3}GB?)*)"
)
_GPU_MENTION = lazy_compile(r"(?<![\w./-])(" + _GPU_WORDS + r")(?![\w/])")
# '4090', '4060Ti Super * 2', "4090's": a consumer card named by its number alone
_RTX_NUMBER = r"(?:20[6-8]|30[5-9]|40[6-9]|50[6-9])0(?:[ \t]?Ti)?(?:[ \t]?Super)?"
_BARE_RTX = lazy_compile(
    r"(?:(?<=NVIDIA )|(?<=GeForce ))(" + _RTX_NUMBER + r")\b"
    r"|(?<![\w./:$#-])(" + _RTX_NUMBER + r")(?='s|[ \t]*(?:GPUs?|gpus?|显卡|[x×*][ \t]*\d))",
    re.IGNORECASE,
)
_GPU_COUNT = lazy_compile(
    r"(?<![\w.])(?:(\d{1,2})[ \t]*[x×*][ \t]*(" + _GPU_WORDS + r")|(" + _GPU_WORDS + r")[ \t]*(?:GPUs?[ \t]*)?[x×*][ \t]*(\d{1,2}))(?![\w.])"
)


def _gpu_window(lines: list[str]) -> str:
    """Where a pasted report names its GPU: the head, the tail, and lines that talk about GPUs."""
    middle = [line for line in lines[300:-300] if "GPU" in line or "gpu" in line or "NVIDIA" in line or "显卡" in line]
    return "\n".join(lines[:300] + middle + lines[-300:])


def _gpus_from_free_text(facts: Facts, blob: str) -> None:
    if facts.gpus:
        return
    count_match = _GPU_COUNT.search(blob)
    if count_match:
        count = int(count_match.group(1) or count_match.group(4))
        name = (count_match.group(2) or count_match.group(3)).strip()
        if lookup_gpu(name) and 1 <= count <= MAX_GPUS_FROM_COUNT:
            facts.gpus = [Gpu(name=name, index=i) for i in range(count)]
            return
    for m in _GPU_MENTION.finditer(blob):
        name = m.group(1).strip()
        if lookup_gpu(name) is not None and not _is_false_gpu(name, blob, m.start()):
            facts.gpus = [Gpu(name=name, index=0)]
            return
    m = _BARE_RTX.search(blob)
    if m:
        name = "RTX " + (m.group(1) or m.group(2)).strip()
        count = re.match(r"[ \t]*[x×*][ \t]*(\d{1,2})", blob[m.end() : m.end() + 12])
        n = int(count.group(1)) if count and 1 <= int(count.group(1)) <= MAX_GPUS_FROM_COUNT else 1
        facts.gpus = [Gpu(name=name, index=i) for i in range(n)]


def _is_false_gpu(name: str, blob: str, start: int) -> bool:
    """Short names like 'A2', 'L4' or 'T4' also occur in model names and prose."""
    if re.fullmatch(r"[ABHLTPVK]\d{1,2}", name):
        before = blob[max(0, start - 12) : start]
        return not re.search(r"(?:NVIDIA|Tesla|GPU|on|with|x|\d)\s*$", before, re.IGNORECASE)
    return False


_OOM_CAPACITY = lazy_compile(r"GPU (\d{1,3}) has a total capac\w{0,4} of (\d+(?:\.\d+)?) ?(GiB|MiB)")
_TOTAL_GPU_MEMORY = lazy_compile(r"total_gpu_memory\W{1,3}(\d+(?:\.\d+)?) ?(GiB|GB)")


def _memory_totals(facts: Facts, blob: str) -> None:
    totals: dict[int, int] = {}
    if "total capac" in blob:
        for m in _OOM_CAPACITY.finditer(blob):
            total = _bytes(m.group(2), _UNIT[m.group(3).lower()])
            if total is not None:
                totals.setdefault(int(m.group(1)), total)
    if not totals and "total_gpu_memory" in blob:
        m = _TOTAL_GPU_MEMORY.search(blob)
        if m and (total := _bytes(m.group(1), GIB)) is not None:
            totals[0] = total
    if not totals:
        return
    if not facts.gpus:
        facts.gpus = [Gpu(index=i) for i in sorted(totals)] if len(totals) > 1 else [Gpu(index=next(iter(totals)))]
    for gpu in facts.gpus:
        total = totals.get(gpu.index if gpu.index is not None else 0)
        if total is None and len(totals) == 1:
            total = next(iter(totals.values()))
        if total and gpu.memory_total_bytes is None:
            gpu.memory_total_bytes = total


_CC_STATED = lazy_compile(
    r"(?:(?:has|with|current|device|gpu'?s?)[ \t]+(?:cuda[ \t]+)?compute[ \t]+capability(?:[ \t]+of|[ \t]+is|:)?|^[ \t]*compute[ \t]+capability[ \t]*[:=])[ \t]*(\d{1,2})\.(\d)"
    r"|Current capability:[ \t]*(\d{1,2})(\d)\b|with CUDA capability sm_(\d{1,2})(\d)\b|\(Compute (\d{1,2})\.(\d)\)"
    r"|--gpu-name[= ]sm_(\d{1,2})(\d)a?\b|Value 'sm_(\d{1,2})(\d)a?' is not defined for option 'gpu-name'",
    re.IGNORECASE | re.MULTILINE,
)
_TORCH_ARCHES = lazy_compile(r"supports CUDA capabilities((?:[ \t]+sm_\d{2,3}a?)+)")
_ARCH_LIST_REPR = lazy_compile(r"\[\s*'sm_\d{2,3}a?'(?:\s*,\s*'(?:sm|compute)_\d{2,3}a?')*\s*\]")


def _compute_capability(facts: Facts, blob: str) -> None:
    if "apabilit" in blob or "Compute " in blob or "gpu-name" in blob:
        m = _CC_STATED.search(blob)
        if m:
            digits = [g for g in m.groups() if g is not None]
            cc = (int(digits[0]), int(digits[1]))
            if not facts.gpus:
                facts.gpus = [Gpu(index=0)]
            for gpu in facts.gpus:
                if gpu.compute_capability is None:
                    gpu.compute_capability = cc
        if facts.torch_arch_list is None:
            m = _TORCH_ARCHES.search(blob)
            if m:
                facts.torch_arch_list = m.group(1).split()
    if facts.torch_arch_list is None and "'sm_" in blob:
        m = _ARCH_LIST_REPR.search(blob)
        if m:
            facts.torch_arch_list = re.findall(r"(?:sm|compute)_\d{2,3}a?", m.group(0))


def _fill_gpu_specs(facts: Facts) -> None:
    for gpu in facts.gpus:
        spec = lookup_gpu(gpu.name)
        if spec is None:
            continue
        if gpu.compute_capability is None:
            gpu.compute_capability = spec.compute_capability
        if gpu.memory_total_bytes is None and spec.memory_gib:
            gpu.memory_total_bytes = int(spec.memory_gib * GIB)


# -- environment variables -------------------------------------------------------------------
_ENV_NAMES = r"(?:VLLM|CUDA|NCCL|TORCH|PYTORCH|NVIDIA|HF|HUGGING_FACE|TRANSFORMERS|TRITON|OMP|LD|RAY|GLOO|UCX|TOKENIZERS|FLASHINFER|MAX_JOBS|CC|CXX|NVCC)"
_ENV_ASSIGN = lazy_compile(
    r"(?<![\w-])(" + _ENV_NAMES + r"(?:_[A-Z0-9]+)*)=(\"[^\"\n]{0,1000}\"|'[^'\n]{0,1000}'|[^\s\"'`]{0,1000})"
)
_SECRET_NAME = lazy_compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE|CREDENTIAL|AUTH", re.IGNORECASE)


def _mask_secret(key: str, value: str) -> str:
    return "<redacted>" if _SECRET_NAME.search(key) and value and value != "<redacted>" else value


_ASSIGNMENT_LEAD = lazy_compile(
    r"^[\s>$#!:*`-]*(?:[\w@~:/.-]{1,80}[$#][ \t]*)?(?:(?:export|set|ENV|env|-e|--env|sudo|RUN)[ \t]+|[A-Z_][A-Z0-9_]*=\S*[ \t]+)*[\"']?$"
)


def _assignment_context(blob: str, start: int) -> bool:
    """Whether KEY=value at start is a setting (shell, docker -e, env listing), not advice in a message."""
    line_start = blob.rfind("\n", 0, start) + 1
    lead = blob[max(line_start, start - 300) : start]
    if _ASSIGNMENT_LEAD.match(lead):
        return True
    return bool(re.search(r"(?:\s-e|--env)[ \t=]+[\"']?$", lead))


def _env_assignments(facts: Facts, blob: str) -> None:
    if "=" not in blob:
        return
    for m in _ENV_ASSIGN.finditer(blob):
        if not _assignment_context(blob, m.start()):
            continue
        key, value = m.group(1), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        value = value.rstrip("\\,;")
        facts.env.setdefault(key, _mask_secret(key, value))


# -- engine args and the launch command ------------------------------------------------------
_NON_DEFAULT = lazy_compile(r"non-default args:\s*(\{)")
_NAMESPACE = lazy_compile(r"\bargs: Namespace\(")
_ENGINE_CONFIG = lazy_compile(r"Initializing an? (?:V1 )?LLM engine(?: \(v[^)]{1,40}\))? with config:\s*")
_LAUNCH = lazy_compile(
    r"(?:^|(?<=[\s;&|!$#>`:：]))(?:[A-Z_][A-Z0-9_]*=\S*[ \t]+)*"
    r"(?:vllm[ \t]+serve\b|python[\d.]*[ \t]+(?:-u[ \t]+)?(?:-m[ \t]+vllm\.entrypoints\.[\w.]+|\S*api_server\.py)|docker[ \t]+run\b|podman[ \t]+run\b)",
    re.MULTILINE,
)
_LLM_CALL = lazy_compile(r"(?<![\w.])(?:LLM|AsyncEngineArgs|EngineArgs)\(")
_SHORT_FLAGS = {
    "tp": "tensor_parallel_size",
    "pp": "pipeline_parallel_size",
    "dp": "data_parallel_size",
    "q": "quantization",
    "O": "optimization_level",
    "cc": "compilation_config",
    "ep": "enable_expert_parallel",
}
_CONFIG_KEYS = {
    "model": "model",
    "dtype": "dtype",
    "max_seq_len": "max_model_len",
    "tensor_parallel_size": "tensor_parallel_size",
    "pipeline_parallel_size": "pipeline_parallel_size",
    "quantization": "quantization",
    "enforce_eager": "enforce_eager",
    "kv_cache_dtype": "kv_cache_dtype",
    "trust_remote_code": "trust_remote_code",
    "enable_prefix_caching": "enable_prefix_caching",
    "served_model_name": "served_model_name",
}
_BOOLEAN_FLAGS = {
    "trust_remote_code", "enforce_eager", "enable_prefix_caching", "disable_log_requests", "disable_log_stats",
    "enable_chunked_prefill", "disable_custom_all_reduce", "enable_lora", "enable_auto_tool_choice",
    "enable_expert_parallel", "disable_frontend_multiprocessing", "enable_sleep_mode", "skip_tokenizer_init",
    "disable_sliding_window", "use_v2_block_manager", "worker_use_ray", "enable_reasoning", "headless",
    "no_enable_prefix_caching", "no_enable_chunked_prefill", "async_scheduling", "enable_eplb", "uvicorn_log_level_debug",
}
_DOCKER_OPTIONS_WITH_VALUE = {
    "-e", "--env", "-v", "--volume", "-p", "--publish", "--name", "--gpus", "--runtime", "--shm-size", "--ipc",
    "--network", "--entrypoint", "-u", "--user", "-w", "--workdir", "--mount", "--device", "--env-file", "--ulimit",
    "--cpus", "--memory", "-m", "--platform", "--pull", "--label", "--log-driver", "--restart", "--cap-add",
    "--security-opt", "--hostname", "--add-host",
}


def _engine_args(facts: Facts, lines: list[str], blob: str) -> None:
    explicit: dict[str, Any] = {}
    if "non-default args" in blob:
        m = _NON_DEFAULT.search(blob)
        if m:
            explicit.update(_parse_dict_repr(blob, m.start(1)))
    if not explicit and "Namespace(" in blob:
        m = _NAMESPACE.search(blob)
        if m:
            explicit.update({k: v for k, v in _parse_kwargs_repr(blob, m.end()).items() if v is not None and v is not False})
    launch = _find_launch_command(lines)
    if launch is not None:
        _set(facts, "launch_command", launch[0])
        for key, value in launch[1].items():
            explicit.setdefault(key, value)
    if "LLM(" in blob or "EngineArgs(" in blob:
        m = _LLM_CALL.search(blob)
        if m:
            for key, value in _parse_call_kwargs(blob, m.end() - 1).items():
                explicit.setdefault(key, value)
            if facts.launch_command is None:
                end = blob.find(")", m.end())
                facts.launch_command = blob[m.start() : (end + 1 if 0 < end < m.start() + 2000 else m.start() + 200)].strip()
    if "with config:" in blob:
        m = _ENGINE_CONFIG.search(blob)
        if m:
            config = _parse_kwargs_repr(blob, m.end(), stop_at_newline=True)
            for key, target in _CONFIG_KEYS.items():
                value = config.get(key)
                if value is not None and value != "None":
                    if key == "dtype" and isinstance(value, str):
                        value = value.replace("torch.", "")
                    explicit.setdefault(target, value)
    for key, value in explicit.items():
        facts.engine_args.setdefault(key, value)


def _balanced_span(blob: str, open_pos: int, limit: int = MAX_LITERAL_CHARS) -> str | None:
    """The text from an opening bracket at open_pos to its match, quotes respected; None if too long."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    depth = 0
    quote = ""
    end = min(len(blob), open_pos + limit)
    i = open_pos
    while i < end:
        ch = blob[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in pairs:
            depth += 1
        elif ch in "})]":
            depth -= 1
            if depth == 0:
                return blob[open_pos : i + 1]
        elif ch == "\n" and depth > 0 and i + 1 < end and blob[i + 1] == "\n":
            return None
        i += 1
    return None


_REPR_PAIR = lazy_compile(r"'(\w{1,80})':\s*('(?:[^'\\\n]|\\.){0,2000}'|\"(?:[^\"\\\n]|\\.){0,2000}\"|-?\d+(?:\.\d+)?(?:e-?\d+)?|True|False|None)")


def _parse_dict_repr(blob: str, open_pos: int) -> dict[str, Any]:
    span = _balanced_span(blob, open_pos)
    text = span if span is not None else blob[open_pos : open_pos + 8192].split("\n", 1)[0]
    if span is not None:
        try:
            value = ast.literal_eval(span)
            if isinstance(value, dict):
                return {str(k): v for k, v in value.items()}
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    out: dict[str, Any] = {}
    for m in _REPR_PAIR.finditer(text):
        out[m.group(1)] = _literal(m.group(2))
    return out


_KWARG_PAIR = lazy_compile(r"(?:^|[\s,(])(\w{1,80})=('(?:[^'\\\n]|\\.){0,2000}'|\"(?:[^\"\\\n]|\\.){0,2000}\"|[^,\s)]{1,200})")


def _parse_kwargs_repr(blob: str, start: int, stop_at_newline: bool = False) -> dict[str, Any]:
    end = blob.find("\n", start) if stop_at_newline else -1
    text = blob[start : end if end != -1 else start + MAX_LITERAL_CHARS]
    if not stop_at_newline:
        text = text.split("\n", 1)[0]
    out: dict[str, Any] = {}
    for m in _KWARG_PAIR.finditer(text):
        out.setdefault(m.group(1), _literal(m.group(2)))
    return out


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _parse_call_kwargs(blob: str, open_pos: int) -> dict[str, Any]:
    span = _balanced_span(blob, open_pos, limit=8192)
    if span is None:
        return {}
    try:
        tree = ast.parse("f" + span, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return {}
    call = tree.body
    out: dict[str, Any] = {}
    if not isinstance(call, ast.Call):
        return out
    if call.args:
        try:
            out["model"] = ast.literal_eval(call.args[0])
        except (ValueError, TypeError, SyntaxError, RecursionError):
            pass
    for kw in call.keywords:
        if kw.arg is None:
            continue
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            continue
    return out


def _find_launch_command(lines: list[str]) -> tuple[str, dict[str, Any]] | None:
    for i, line in enumerate(lines):
        if len(line) > 8192 or not ("vllm" in line or "api_server" in line or " run" in line):
            continue
        m = _LAUNCH.search(line)
        if not m:
            continue
        if "File \"" in line:
            continue
        parts = [line[m.start() :].rstrip()]
        j = i + 1
        while j < len(lines) and j < i + 60:
            nxt = lines[j].strip()
            continues = (
                parts[-1].endswith("\\")
                or (nxt.startswith("-") and not nxt.startswith("---"))
                or (parts[0].lstrip().startswith(("docker", "podman")) and re.fullmatch(r"[\w.:/@-]+", nxt) is not None)
            )
            if not nxt or not continues:
                break
            parts.append(nxt)
            j += 1
        command = " ".join(p.rstrip("\\").strip() for p in parts)
        return command[:4096], parse_command_args(command)
    return None


def parse_command_args(command: str) -> dict[str, Any]:
    """Engine flags of a launch command as snake_case keys ('--max-model-len 4096' -> max_model_len=4096)."""
    try:
        tokens = shlex.split(command, comments=False, posix=True)
    except ValueError:
        tokens = command.split()
    tokens = [t for t in tokens if t not in ("\\", "")]
    args: dict[str, Any] = {}
    i = _engine_args_start(tokens)
    if i is None:
        return args
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-") and len(token) > 1 and not _is_number(token):
            name, eq, value = token.lstrip("-").partition("=")
            key = _SHORT_FLAGS.get(name) if not token.startswith("--") else None
            key = key or name.replace("-", "_")
            if not key or key.startswith("_"):
                i += 1
                continue
            if eq:
                args[key] = _coerce(value)
            elif key in _BOOLEAN_FLAGS and not (i + 1 < len(tokens) and tokens[i + 1].lower() in ("true", "false")):
                if key.startswith("no_"):
                    args[key[3:]] = False
                else:
                    args[key] = True
            elif i + 1 < len(tokens) and (not tokens[i + 1].startswith("-") or _is_number(tokens[i + 1])):
                args[key] = _coerce(tokens[i + 1])
                i += 1
            elif key.startswith("no_"):
                args[key[3:]] = False
            else:
                args[key] = True
        elif "model" not in args and re.match(r"^[\w./@:~-]+$", token) and not token.startswith(("<", "$")):
            args["model"] = token
        elif "model" not in args and token == "<model>":
            pass
        i += 1
    return args


def _engine_args_start(tokens: list[str]) -> int | None:
    """Index of the first engine argument, after 'vllm serve', 'python -m ...', or the docker image."""
    for i, token in enumerate(tokens):
        if token == "serve" and i and tokens[i - 1].endswith("vllm"):
            return i + 1
        if token.startswith("vllm.entrypoints.") or token.endswith("api_server.py"):
            return i + 1
    if tokens and tokens[0] in ("docker", "podman") or "run" in tokens[:3]:
        i = tokens.index("run") + 1 if "run" in tokens else 0
        while i < len(tokens):
            token = tokens[i]
            if token.startswith("-"):
                name = token.split("=", 1)[0]
                i += 2 if ("=" not in token and name in _DOCKER_OPTIONS_WITH_VALUE) else 1
                continue
            image = token
            rest = i + 1
            if rest < len(tokens) and tokens[rest] in ("vllm", "python", "python3") or (rest < len(tokens) and tokens[rest] == "-m"):
                return _engine_args_start(tokens[rest:]) and rest + (_engine_args_start(tokens[rest:]) or 0)
            return rest if "vllm" in image or rest < len(tokens) else None
    return None


def _is_number(token: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", token))


def _coerce(value: str) -> Any:
    lower = value.lower()
    if lower in ("true", "false"):
        return lower == "true"
    if re.fullmatch(r"-?\d{1,%d}" % MAX_NUMBER_DIGITS, value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*(?:e-?\d+)?|-?\d+e-?\d+", value):
        return float(value)
    return value


# -- KV-cache and memory numbers the engine logged --------------------------------------------
_KV_TOKENS = lazy_compile(r"GPU KV cache size:\s*([\d,]+)\s*tokens")
_MAX_CONCURRENCY = lazy_compile(r"Maximum concurrency for ([\d,]+) tokens per request:\s*(\d+(?:\.\d+)?)x")
_ESTIMATED_MAX_LEN = lazy_compile(r"estimated maximum model length is\s*([\d,]+)")
_V0_KV_TOO_SMALL = lazy_compile(r"max seq len \(([\d,]+)\) is larger than the maximum number of tokens that can be stored in KV cache \(([\d,]+)\)")
_KV_NEEDED = lazy_compile(r"max seq len \(([\d,]+)\),? \(?(\d+(?:\.\d+)?) GiB KV cache is needed, which is larger than the available KV cache memory \((\-?\d+(?:\.\d+)?) GiB\)")
_AVAILABLE_KV = lazy_compile(r"Available KV cache memory:\s*(-?\d+(?:\.\d+)?)\s*(GiB|GB|MiB)")
_KV_REST = lazy_compile(r"the rest of the memory reserved for KV Cache is\s*(-?\d+(?:\.\d+)?)\s*(GiB|GB)|kv_cache_size=(-?\d+(?:\.\d+)?)(GiB|GB)")
_GPU_BLOCKS = lazy_compile(r"# GPU blocks:\s*(\d+)")
_WEIGHTS = lazy_compile(r"(?:Loading model weights took|Model loading took|model weights take)\s*(\d+(?:\.\d+)?)\s*(GiB|GB)")


def _num(text: str) -> int | None:
    """'12,345' -> 12345; None for a bare comma or more than MAX_NUMBER_DIGITS digits."""
    digits = text.replace(",", "")
    return int(digits) if 0 < len(digits) <= MAX_NUMBER_DIGITS else None


def _bytes(number: str, unit: int) -> int | None:
    """'1.5', GIB -> bytes; None when the number is too large to be a real size."""
    value = float(number) * unit
    return int(value) if abs(value) < 2**63 else None


def _set_max_model_len(facts: Facts, text: str) -> None:
    value = _num(text)
    if value is not None:
        facts.engine_args.setdefault("max_model_len", value)


def _kv_cache_numbers(facts: Facts, blob: str) -> None:
    if "KV cache" not in blob and "KV Cache" not in blob and "blocks" not in blob and "model weights" not in blob and "Model loading" not in blob and "max seq len" not in blob:
        return
    if (m := _KV_TOKENS.search(blob)) and facts.kv_cache_tokens is None:
        facts.kv_cache_tokens = _num(m.group(1))
    if (m := _MAX_CONCURRENCY.search(blob)) and facts.max_concurrency is None:
        facts.max_concurrency = float(m.group(2))
        _set_max_model_len(facts, m.group(1))
    if (m := _ESTIMATED_MAX_LEN.search(blob)) and facts.estimated_max_model_len is None:
        facts.estimated_max_model_len = _num(m.group(1))
    if m := _V0_KV_TOO_SMALL.search(blob):
        _set_max_model_len(facts, m.group(1))
        if facts.kv_cache_tokens is None:
            facts.kv_cache_tokens = _num(m.group(2))
    if m := _KV_NEEDED.search(blob):
        _set_max_model_len(facts, m.group(1))
        if facts.kv_cache_memory_bytes is None:
            facts.kv_cache_memory_bytes = _bytes(m.group(3), GIB)
    if facts.kv_cache_memory_bytes is None:
        m = _AVAILABLE_KV.search(blob)
        if m:
            facts.kv_cache_memory_bytes = _bytes(m.group(1), _UNIT[m.group(2).lower()])
        else:
            m = _KV_REST.search(blob)
            if m:
                facts.kv_cache_memory_bytes = _bytes(m.group(1) or m.group(3), GIB)
    if (m := _GPU_BLOCKS.search(blob)) and facts.gpu_blocks is None:
        facts.gpu_blocks = _num(m.group(1))
    if (m := _WEIGHTS.search(blob)) and facts.model_weights_bytes is None:
        facts.model_weights_bytes = _bytes(m.group(1), GIB)


# -- Xid, host hints ------------------------------------------------------------------------
_XID = lazy_compile(r"^.{0,200}?NVRM: Xid \([^)\n]{0,80}\):[^\n]{0,500}", re.MULTILINE)
_SHM = lazy_compile(r"--shm-size[= ](\d*\.?\d+)\s*([kmgt]i?b?)?\b", re.IGNORECASE)


def _xid(facts: Facts, blob: str) -> None:
    if "Xid" not in blob or facts.xid:
        return
    facts.xid = [m.group(0).strip() for m in _XID.finditer(blob)][:100]


def _host_hints(facts: Facts, blob: str) -> None:
    lower_hits = blob.lower() if len(blob) < (4 << 20) else blob[: 4 << 20].lower()
    if "docker" in lower_hits or "vllm/vllm-openai" in lower_hits:
        if re.search(r"\bdocker (?:run|compose|exec)|vllm/vllm-openai|docker-compose|/\.dockerenv", lower_hits):
            facts.container.setdefault("docker", True)
    if "wsl" in lower_hits and re.search(r"microsoft-standard-wsl|\bwsl2?\b", lower_hits):
        facts.container.setdefault("wsl", True)
    if "kubectl" in lower_hits or "kubernetes" in lower_hits or "kind: deployment" in lower_hits:
        facts.container.setdefault("kubernetes", True)
    if facts.shm_total_bytes is None and "shm-size" in lower_hits:
        m = _SHM.search(blob)
        if m:
            unit = (m.group(2) or "b").lower().rstrip("b").rstrip("i")
            scale = {"": 1, "k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}.get(unit, 1)
            facts.shm_total_bytes = _bytes(m.group(1), scale)
