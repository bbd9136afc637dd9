"""Two-rank NCCL all-reduce, for provoking real NCCL failures under torchrun (see tools/gpu/README.md)."""

import os

import torch
import torch.distributed as dist


def main() -> None:
    rank = int(os.environ["RANK"])
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl")
    x = torch.ones(1 << 20, device="cuda") * (rank + 1)
    dist.all_reduce(x)
    torch.cuda.synchronize()
    print(f"rank {rank}: all_reduce ok, x[0]={x[0].item()}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
