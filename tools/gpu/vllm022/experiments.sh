set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
mkdir -p /tmp/b /tmp/logs
T0=$(date +%s); S=.devcarry/s; M=/tmp/models/tiny-llama; B=/tmp/b; L=/tmp/logs
vllm --version 2>&1 | tail -3; python3 -m pip list 2>/dev/null > $L/pip-list-after.txt; cp $S/*.py $S/*.sh $L/ 2>/dev/null
run() { # NAME then the command; env prefixes go in via env
  local n=$1; shift
  ( s=$(date +%s); env ${RUNENV:-} timeout -k 10 ${TMO:-200} vllm-bug run -o $B/h200-1gpu-vllm022-$n.zst -- "$@" > $L/$n.log 2>&1; echo "$n rc=$? $(( $(date +%s) - s ))s" >> $L/rc.txt )
}
pack() { tar cf $OUT/bundles.tar -C $B . ; tar cf $OUT/logs.tar -C $L . ; }
TMO=150 run triton-out-of-resources python3 $S/triton_oor.py &
TMO=150 run triton-compile-error python3 $S/triton_compile.py &
run tp-exceeds-gpus vllm serve $M --tensor-parallel-size 2 &
run tp-heads-indivisible vllm serve $M --tensor-parallel-size 3 --distributed-executor-backend mp &
wait; pack
run max-model-len-too-long vllm serve $M --max-model-len 4096 &
run removed-flag vllm serve $M --disable-log-requests &
run unknown-flag vllm serve $M --max-model-length 4096 &
run quantization-mismatch vllm serve /tmp/models/tiny-llama-fp8cfg --quantization gptq &
wait; pack
run quantization-awq-unquantized vllm serve $M --quantization awq &
run gpu-util-above-one vllm serve $M --gpu-memory-utilization 1.5 &
RUNENV=CUDA_VISIBLE_DEVICES=1 run no-gpu-visible vllm serve $M &
run dtype-invalid-choice vllm serve $M --dtype fp8 &
wait; pack
echo "config runs done at $(( $(date +%s) - T0 )) s"
python3 $S/holder.py 100 /tmp/holder.ready & HOLDER=$!
for i in $(seq 60); do [ -f /tmp/holder.ready ] && break; sleep 1; done
nvidia-smi --query-compute-apps=pid,used_memory --format=csv > $L/holder-smi.txt
TMO=180 run gpu-util-other-process vllm serve $M --enforce-eager --attention-backend TRITON_ATTN
kill $HOLDER; wait $HOLDER; pack
TMO=180 run kv-cache-too-small python3 $S/llm_kv.py $M; pack
TMO=180 run no-cache-blocks vllm serve $M --gpu-memory-utilization 0.002 --enforce-eager --attention-backend TRITON_ATTN; pack
echo "all done at $(( $(date +%s) - T0 )) s"
cat $L/rc.txt
