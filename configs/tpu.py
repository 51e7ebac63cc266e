"""DIML on a Cloud TPU VM (one host or a multi-host slice): base.py with TPU-sized batches.

Run on every worker of the VM at once (README, "Many devices and TPU VMs"):

  python -m dofjax.main --config=configs/tpu.py --workdir=gs://YOUR_BUCKET/dofjax/tpu_run1

Overrides you will usually want:
  --workdir=gs://YOUR_BUCKET/...   checkpoints and TensorBoard summaries, shared by all workers
                                   (a local path only works on a one-host VM).
  --config.data_dir=PATH           the TFDS data dir holding diml/lr on *each* worker's local disk
                                   or a gcsfuse mount; default ~/tensorflow_datasets. Not a gs://
                                   URL: TFDS's array_record reader cannot open gs:// files.
  --config.batch_size=N            the global batch; a multiple of the chip count (jax devices).

Caveats (docs/design.md, "Reference facts"): the paper trains with batch 1, where BatchNorm is
instance norm; users report blurrier outputs at batch 16-32. Batch 16 keeps a TPU busy with a
256 px U-Net and stays at the low end of that range: compare its validation metrics with a batch-1 GPU run before
trusting a larger one. BatchNorm statistics under `parallelism='jit'` are over the whole global
batch. The step count keeps the paper's number of *epochs* (200 over DIML LR's ~1500 training
images), so it shrinks as the batch grows.
"""

from configs import base

GLOBAL_BATCH = 16
REFERENCE_IMAGES = 300_000  # base.py: 300k steps of batch 1, 150k of them at constant lr.


def get_config(arg=None):
  """base.py for TPUs: global batch 16, bfloat16 compute, jit over a mesh of all chips."""
  del arg
  c = base.get_config()
  c.parallelism = "jit"          # Mesh over every chip of every host; BN over the global batch.
  c.compute_dtype = "bfloat16"   # Convolutions in bfloat16 on the MXU; params/optimizer float32.
  c.batch_size = GLOBAL_BATCH
  c.eval_batch_size = GLOBAL_BATCH
  c.num_train_steps = REFERENCE_IMAGES // GLOBAL_BATCH          # 18,750 steps.
  c.lr_constant_steps = c.num_train_steps // 2
  c.log_every_steps = 50
  c.eval_every_steps = 1_000
  c.checkpoint_every_steps = 1_000
  c.num_data_workers = 4           # A TPU VM host has plenty of CPU cores for decoding.
  c.model.conv_impl = "xla"
  return c
