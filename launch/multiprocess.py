r"""Runs one jaxaffect command as N local processes that form one JAX distributed job.

Each process gets its own CPU devices (--devices_per_process) and a share of every global batch;
the mesh spans all processes. This is how multi-host training is exercised on one machine; on a
real cluster use launch/slurm.sbatch or launch/tpu_pod.sh, which set the same variables.

  python launch/multiprocess.py --num_processes 2 --devices_per_process 4 -- \
      jaxaffect train --config configs/perr/smta.py:runlocal --workdir runs/mp
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(command: list[str], num_processes: int, devices_per_process: int,
           log_dir: str | None = None) -> int:
    """Starts the processes, waits for all, returns the first non-zero exit code (or 0)."""
    port = free_port()
    procs = []
    for pid in range(num_processes):
        env = dict(os.environ)
        env.update({
            "JAXAFFECT_COORDINATOR": f"127.0.0.1:{port}",
            "JAXAFFECT_NUM_PROCESSES": str(num_processes),
            "JAXAFFECT_PROCESS_ID": str(pid),
            "JAX_PLATFORMS": "cpu",
            "CUDA_VISIBLE_DEVICES": "",
            "XLA_FLAGS": (env.get("XLA_FLAGS", "") +
                          f" --xla_force_host_platform_device_count={devices_per_process}"),
        })
        out = None
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
            out = open(os.path.join(log_dir, f"process_{pid}.log"), "w")  # noqa: SIM115
        procs.append((subprocess.Popen(command, env=env, stdout=out, stderr=out), out))
    code = 0
    for proc, out in procs:
        rc = proc.wait()
        if out is not None:
            out.close()
        code = code or rc
    return code


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_processes", type=int, default=2)
    p.add_argument("--devices_per_process", type=int, default=4)
    p.add_argument("--log_dir", default=None, help="one log file per process (default: inherit)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command after --")
    return launch(command, args.num_processes, args.devices_per_process, args.log_dir)


if __name__ == "__main__":
    sys.exit(main())
