"""Multi-process start-up: jax.distributed only where there really are several processes.

How the processes are found, in order:
  1. DOFJAX_COORDINATOR=host:port with DOFJAX_NUM_PROCESSES and DOFJAX_PROCESS_ID: processes
     started by hand (several GPUs or CPUs, one or more machines). Optional
     DOFJAX_LOCAL_DEVICE_IDS=0,1 picks this process's GPUs.
  2. DOFJAX_DISTRIBUTED=1: jax.distributed.initialize() with no arguments, letting JAX detect the
     cluster (Cloud TPU, GKE TPU, SLURM, Open MPI).
  3. A Cloud TPU VM (libtpu installed and TPU chips present) or a GKE TPU pod: the same
     argument-free call (a one-host TPU VM then simply runs one process).
  4. Anything else is a plain single machine: nothing is called. DOFJAX_DISTRIBUTED=0 forces this.
It must run before anything else touches jax's devices (dofjax.main calls it first).
"""

import glob
import importlib.util
import os

import jax

from dofjax import errors


def _explicit_processes():
  coordinator = os.environ.get("DOFJAX_COORDINATOR", "")
  if not coordinator:
    return None
  try:
    num_processes = int(os.environ["DOFJAX_NUM_PROCESSES"])
    process_id = int(os.environ["DOFJAX_PROCESS_ID"])
  except (KeyError, ValueError):
    raise errors.UserError(
        f"DOFJAX_COORDINATOR={coordinator} is set, so DOFJAX_NUM_PROCESSES and DOFJAX_PROCESS_ID "
        "must be set too, to integers (e.g. 2 and 0 on the first of two processes).") from None
  if not 0 <= process_id < num_processes:
    raise errors.UserError(f"DOFJAX_PROCESS_ID={process_id} must be in [0, "
                           f"DOFJAX_NUM_PROCESSES={num_processes}).")
  kwargs = dict(coordinator_address=coordinator, num_processes=num_processes,
                process_id=process_id)
  ids = os.environ.get("DOFJAX_LOCAL_DEVICE_IDS", "")
  if ids:
    kwargs["local_device_ids"] = [int(i) for i in ids.split(",")]
  return kwargs


def on_tpu_cluster() -> bool:
  """True on a Cloud TPU VM (libtpu and TPU chips) or in a GKE TPU pod with several hosts."""
  hosts = os.environ.get("TPU_PROCESS_ADDRESSES") or os.environ.get("TPU_WORKER_HOSTNAMES", "")
  if len([h for h in hosts.split(",") if h]) > 1:
    return True
  if importlib.util.find_spec("libtpu") is None:
    return False
  # TPU chips show up as /dev/accel* (v2-v4) or /dev/vfio/<n> (v5e and newer).
  return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def initialize_if_needed() -> bool:
  """Calls jax.distributed.initialize() when this is one of several processes (see above).

  Returns True when it initialised. Raises UserError for inconsistent DOFJAX_* variables.
  """
  explicit = _explicit_processes()
  if explicit is not None:
    jax.distributed.initialize(**explicit)
    return True
  switch = os.environ.get("DOFJAX_DISTRIBUTED", "").strip().lower()
  if switch in ("0", "false", "no", "off"):
    return False
  if switch in ("1", "true", "yes", "on") or on_tpu_cluster():
    jax.distributed.initialize()
    return True
  if switch:
    raise errors.UserError(f"DOFJAX_DISTRIBUTED={switch!r} must be 1 or 0.")
  return False
