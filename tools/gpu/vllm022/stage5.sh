# call 3 (after stage1.sh, and stage2.sh less its last line, experiments.sh): add FlashAttention 3, then the runs that stage2 could not finish
set -u; SP=/opt/torch/.venv/lib/python3.12/site-packages
python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" .devcarry/c4/fa3.zip $SP || exit 3
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
S=.devcarry/s; M=/tmp/models/tiny-llama; B=/tmp/b5; L=/tmp/logs5; mkdir -p $B $L
run() { local n=$1; shift; ( s=$(date +%s); env ${RUNENV:-} timeout -k 5 ${TMO:-90} vllm-bug run -o $B/h200-1gpu-vllm022-$n.zst -- "$@" > $L/$n.log 2>&1; echo "$n rc=$? $(( $(date +%s) - s ))s" >> $L/rc.txt ) ; }
pack() { tar cf $OUT/bundles.tar -C $B . ; tar cf $OUT/logs.tar -C $L . ; }
run tp-exceeds-gpus vllm serve $M --tensor-parallel-size 2 &
run tp-heads-indivisible vllm serve $M --tensor-parallel-size 3 --distributed-executor-backend mp &
run max-model-len-too-long vllm serve $M --max-model-len 4096 &
run quantization-mismatch vllm serve /tmp/models/tiny-llama-fp8cfg --quantization gptq &
run quantization-awq-unquantized vllm serve $M --quantization awq &
run gpu-util-above-one vllm serve $M --gpu-memory-utilization 1.5 &
RUNENV=CUDA_VISIBLE_DEVICES=1 run no-gpu-visible vllm serve $M &
run kv-cache-too-small python3 $S/llm_kv.py $M &
wait; pack
python3 $S/holder.py 100 /tmp/holder.ready & HOLDER=$!
for i in $(seq 60); do [ -f /tmp/holder.ready ] && break; sleep 1; done
nvidia-smi --query-compute-apps=pid,used_memory --format=csv > $L/holder-smi.txt
TMO=120 run gpu-util-other-process vllm serve $M --enforce-eager & R1=$!
TMO=120 run no-cache-blocks vllm serve $M --gpu-memory-utilization 0.002 --enforce-eager & R2=$!
wait $R1 $R2; kill $HOLDER; wait $HOLDER; pack
cat $L/rc.txt
