"""The environment variables worth a maintainer's eyes, redacted.

An allow-list comes first: only names that can change how vLLM, PyTorch, CUDA, NCCL, Triton or
Hugging Face behave are kept, including unknown and stale VLLM_* names (a leftover VLLM_USE_V1 is
itself a finding). Everything else (AWS_*, OPENAI_API_KEY, HOME, USER, SSH_*, ...) is dropped
unseen. Kept names whose name says "secret" (HF_TOKEN, VLLM_API_KEY) stay, with a redacted value,
so the maintainer still sees that they are set; other values pass through the redactor too
(proxy URLs with passwords, home paths). GPU and MIG UUIDs in CUDA_VISIBLE_DEVICES and
NVIDIA_VISIBLE_DEVICES are hashed as the GPUs' own UUIDs are (bundler/visible_devices.py records,
before that, whether each entry names a GPU).
"""

from __future__ import annotations

from collections.abc import Mapping

from vllm_bug.bundler.visible_devices import hide_uuids
from vllm_bug.schema.redact import Redactor

# Any variable whose name starts with one of these is kept.
RELEVANT_PREFIXES: tuple[str, ...] = (
    "VLLM_",
    "CUDA_",
    "NCCL_",
    "TORCH",  # TORCH_*, TORCHINDUCTOR_*, TORCHDYNAMO_*, TORCHELASTIC_*
    "TORCHINDUCTOR_",
    "TORCHDYNAMO_",
    "PYTORCH_",
    "TRITON_",
    "CUBLAS",
    "CUDNN",
    "NVIDIA_",  # container runtime: NVIDIA_VISIBLE_DEVICES, NVIDIA_REQUIRE_CUDA (the image's driver floor), ...
    "NVCC_",
    "NVTE_",
    "NVSHMEM_",
    "HF_",
    "HUGGING_FACE_",
    "TRANSFORMERS_",
    "FLASHINFER_",
    "XFORMERS_",
    "OMP_",
    "MKL_",
    "RAY_",
    "GLOO_",
    "UCX_",
)

# The switches the debugging guides ask for (all of them are also kept by the allow-list).
DEBUG_VARIABLES: tuple[str, ...] = (
    "CUDA_LAUNCH_BLOCKING",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUDA_MODULE_LOADING",
    "CUDA_ENABLE_COREDUMP_ON_EXCEPTION",
    "CUDA_ENABLE_USER_TRIGGERED_COREDUMP",
    "CUDA_COREDUMP_SHOW_PROGRESS",
    "CUDA_COREDUMP_GENERATION_FLAGS",
    "CUDA_COREDUMP_FILE",
    "TORCH_USE_CUDA_DSA",
    "TORCH_LOGS",
    "TORCH_COMPILE_DEBUG",
    "TORCHDYNAMO_VERBOSE",
    "PYTORCH_CUDA_ALLOC_CONF",
    "PYTORCH_ALLOC_CONF",
    "NCCL_DEBUG",
    "NCCL_DEBUG_SUBSYS",
    "NCCL_P2P_DISABLE",
    "NCCL_IB_DISABLE",
    "NCCL_SOCKET_IFNAME",
    "NCCL_CUMEM_ENABLE",
    "GLOO_SOCKET_IFNAME",
    "VLLM_LOGGING_LEVEL",
    "VLLM_TRACE_FUNCTION",
    "VLLM_HOST_IP",
    "VLLM_PORT",
)

# Single names kept besides the prefixes: toolchain and library search paths, the Python
# environment, torchrun's rendezvous, and the S3 settings that vLLM itself reads.
RELEVANT_NAMES: frozenset[str] = frozenset(
    {
        "PATH",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "CC",
        "CXX",
        "CUDA_HOME",
        "CUDA_PATH",
        "MAX_JOBS",
        "PYTHONPATH",
        "PYTHONNOUSERSITE",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "VIRTUAL_ENV",
        "XDG_CACHE_HOME",  # where the Hugging Face cache lives unless HF_HOME says otherwise
        "TMPDIR",  # where VLLM_TRACE_FUNCTION writes
        "MASTER_ADDR",
        "MASTER_PORT",
        "WORLD_SIZE",
        "RANK",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
        "NODE_RANK",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_ENDPOINT_URL",
        # NVIDIA's CUDA base images pin every package in an NV_* variable (NV_LIBNPP_VERSION,
        # NV_CUDNN_PACKAGE, ... about forty of them): noise, except the one saying cuda-compat
        # (forward compatibility) is installed, which matters for errors 803/804. CUDA_VERSION
        # and NVIDIA_REQUIRE_CUDA already say which CUDA the image carries.
        "NV_CUDA_COMPAT_PACKAGE",
    }
)

# Kept in any letter case; their values often carry user:password@, which the redactor hides.
PROXY_NAMES: frozenset[str] = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"})

# Only whether these are set matters (a Kubernetes pod, say); the value is replaced by this.
PRESENCE_ONLY: frozenset[str] = frozenset({"KUBERNETES_SERVICE_HOST"})
PRESENT = "<set>"

# Device lists that may name GPUs by UUID.
DEVICE_LISTS: frozenset[str] = frozenset({"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"})

# The bundle schema's limit on one value.
MAX_VALUE_CHARS = 8192
TRUNCATED = "...<truncated>"


def is_relevant(name: str) -> bool:
    """Whether a variable called `name` belongs in a bug bundle."""
    return (
        name.startswith(RELEVANT_PREFIXES)
        or name in RELEVANT_NAMES
        or name in PRESENCE_ONLY
        or name.upper() in PROXY_NAMES
    )


def collect_env(environ: Mapping[str, str], redactor: Redactor) -> dict[str, str]:
    """The allow-listed variables of `environ`, sorted by name, with values redacted and capped."""
    kept: dict[str, str] = {}
    for name in sorted(environ):
        if not is_relevant(name):
            continue
        if name in PRESENCE_ONLY:
            kept[name] = PRESENT
            continue
        value = environ[name]
        if name in DEVICE_LISTS:
            value = hide_uuids(value)
        kept[name] = cap(redactor.value(name, value))
    return kept


def cap(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """`value` cut to `limit` characters, never inside a redaction marker (cut after redacting)."""
    if len(value) <= limit:
        return value
    cut = limit - len(TRUNCATED)
    opening = "<redacted:"
    marker_start = value.rfind(opening, 0, cut + len(opening) - 1)  # a marker that starts before the cut
    if 0 <= marker_start < cut and value.find(">", marker_start) >= cut:
        cut = marker_start
    return value[:cut] + TRUNCATED
