"""Time an all_reduce across the nodes of a health check and print one JSON line.

Run once per node with the same --master and --world and a distinct --rank. Bus
bandwidth follows nccl-tests: algorithm bandwidth x 2 (n - 1) / n.
"""

import argparse
import json
import socket
import time
from datetime import timedelta

import torch
import torch.distributed as dist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--master", required=True, help="address:port of rank 0")
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world", type=int, required=True)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--backend", default="")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--floor-gb-s", type=float, default=0.0, help="fail below this bus bandwidth")
    args = parser.parse_args()
    backend = args.backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(
        backend, init_method=f"tcp://{args.master}", rank=args.rank, world_size=args.world,
        timeout=timedelta(seconds=120),
    )
    device = "cuda" if backend == "nccl" else "cpu"
    tensor = torch.ones(args.mib * 2**20 // 4, dtype=torch.float32, device=device)
    dist.all_reduce(tensor)  # warm-up, and a correctness check below
    correct = bool(torch.all(tensor == args.world).item())
    if device == "cuda":
        torch.cuda.synchronize()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.iters):
        dist.all_reduce(tensor)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.iters
    size = tensor.numel() * 4
    bus = size / seconds * 2 * (args.world - 1) / args.world / 1e9 if args.world > 1 else 0.0
    dist.destroy_process_group()
    problems = [] if correct else ["all_reduce gave a wrong sum"]
    if args.world > 1 and bus < args.floor_gb_s:
        problems.append(f"bus bandwidth {bus:.3f} GB/s below the floor {args.floor_gb_s} GB/s")
    print(json.dumps({
        "host": socket.gethostname(), "rank": args.rank, "world": args.world, "backend": backend,
        "bytes": size, "seconds": round(seconds, 6), "bus_gb_s": round(bus, 4), "problems": problems,
    }))


if __name__ == "__main__":
    main()
