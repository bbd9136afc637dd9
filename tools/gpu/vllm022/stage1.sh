# call 1: first half of the payload to /tmp/st, tiny models, what the machine has
set -x
pwd; git rev-parse --show-toplevel; git log -1 --oneline; git status --short | head -5
mkdir -p /tmp/st && cp .devcarry/c1/part.aa /tmp/st/ && ls -la /tmp/st
which python3 vllm xz zstd; python3 -m pip --version
python3 .devcarry/s/make_tiny.py /tmp/models 2>&1 | tail -25
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv
python3 -c 'import torch,triton,transformers,setuptools;print(torch.__version__,triton.__version__,transformers.__version__,setuptools.__version__)'
df -h /tmp | tail -1
