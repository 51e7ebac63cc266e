"""Multi-process start-up: jax.distributed only where there really are several processes."""

import os

import jax


def initialize_if_needed() -> bool:
  """Calls jax.distributed.initialize() on Cloud TPU multi-host or when the coordinator is set.

  Set DOFJAX_COORDINATOR=host:port, DOFJAX_NUM_PROCESSES and DOFJAX_PROCESS_ID to launch several
  processes by hand (e.g. on GPUs or localhost CPU). Never called on a plain single machine.
  Returns True when it initialised.
  """
  coordinator = os.environ.get("DOFJAX_COORDINATOR")
  if coordinator:
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=int(os.environ["DOFJAX_NUM_PROCESSES"]),
        process_id=int(os.environ["DOFJAX_PROCESS_ID"]))
    return True
  # A Cloud TPU VM slice with several workers names them in TPU_WORKER_HOSTNAMES.
  hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  if len([h for h in hosts.split(",") if h]) > 1:
    jax.distributed.initialize()
    return True
  return False
