set -u; SP=/opt/torch/.venv/lib/python3.12/site-packages
python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" .devcarry/c4/fa3.zip $SP || exit 3
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
S=.devcarry/s; M=/tmp/models/tiny-llama; B=/tmp/b4; L=/tmp/logs4; mkdir -p $B $L
run() { local n=$1; shift; ( s=$(date +%s); env ${RUNENV:-} timeout -k 5 100 vllm-bug run -o $B/h200-1gpu-vllm022-$n.zst -- "$@" > $L/$n.log 2>&1; echo "$n rc=$? $(( $(date +%s) - s ))s" >> $L/rc.txt ) ; }
run tp-exceeds-gpus vllm serve $M --tensor-parallel-size 2 &
run tp-heads-indivisible vllm serve $M --tensor-parallel-size 3 --distributed-executor-backend mp &
run max-model-len-too-long vllm serve $M --max-model-len 4096 &
run quantization-mismatch vllm serve /tmp/models/tiny-llama-fp8cfg --quantization gptq &
run gpu-util-above-one vllm serve $M --gpu-memory-utilization 1.5 &
RUNENV=CUDA_VISIBLE_DEVICES=1 run no-gpu-visible vllm serve $M &
run kv-cache-too-small python3 $S/llm_kv.py $M &
wait; tar cf $OUT/bundles.tar -C $B . ; tar cf $OUT/logs.tar -C $L . ; cat $L/rc.txt
