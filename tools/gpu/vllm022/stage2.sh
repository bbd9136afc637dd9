# call 2: join the payload, install vLLM 0.22.0 (no FlashAttention .so, no vendored DeepGEMM) + its light requirements + vllm-bug, then fail on purpose
T0=$(date +%s); mkdir -p /tmp/pl /tmp/vp
cat /tmp/st/part.aa .devcarry/c2/part.ab | tar x -C /tmp/pl || exit 3
for p in vA vB; do python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" /tmp/pl/$p.tar.xz /tmp/vp || exit 4; done
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" /tmp/pl/deps.tar.xz /tmp/pl || exit 4
python3 .devcarry/s/repack.py /tmp/vp /tmp/whl/vllm-0.22.0-cp38-abi3-manylinux_2_28_x86_64.whl || exit 5
python3 -m pip install --no-index --no-deps --no-compile -q /tmp/pl/deps/*.whl /tmp/whl/vllm-*.whl > /tmp/pip-install.log 2>&1; echo "pip rc=$?"; tail -5 /tmp/pip-install.log
which vllm vllm-bug; echo "install took $(( $(date +%s) - T0 )) s"
source .devcarry/s/experiments.sh
