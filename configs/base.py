"""The paper's Pix2Pix settings on DIML indoor, 256 px, cGAN + L1 (lambda 100).

Run:  python -m dofjax.main --config=configs/base.py --workdir=W
Override any field on the command line, e.g. --config.batch_size=8.
"""

import ml_collections


def get_config(arg=None):
  """Returns the base ConfigDict; `configs/base.py:synthetic` gives the quickstart-sized arm
  (trained on synthetic_rgbd/quickstart, evaluated on synthetic_rgbd/dof's thin-lens scenes)."""
  if arg not in (None, "", "synthetic"):
    raise ValueError(f"Unknown config argument {arg!r}; the only one is ':synthetic'.")
  c = paper_config()
  if arg == "synthetic":
    shrink_to_quickstart(c)
    # Evaluate on scenes with thin-lens ground truth: adds the bokeh error against it.
    c.eval_dataset = "synthetic_rgbd/dof"
  return c


def shrink_to_quickstart(c):
  """Scales a base ConfigDict down, in place, to the quickstart: 128 px furnished synthetic
  rooms with photometric augmentation and a CPU-sized Pix2Pix, same losses and optimiser
  (`configs/quickstart.py`, the `:synthetic` arms). Returns c."""
  c.dataset = "synthetic_rgbd/rooms"
  # The rooms already carry sensor effects (exposure, white balance, vignetting, noise, blur,
  # JPEG); the augmentation varies colour and tone further, as other cameras would.
  c.augment.update(color_prob=0.8, brightness=0.25, contrast=0.25, saturation=0.3, hue=0.03,
                   channel_gain=0.1, gamma_prob=0.5, gamma=0.3, blur_prob=0.2, blur_sigma=0.8,
                   noise_prob=0.3, noise_std=0.02, jpeg_prob=0.3, jpeg_quality_min=60)
  c.samples_real_photo = True
  c.image_size = 128
  c.load_size = 143            # 286/256 of the crop, as in the reference.
  c.model.ngf = 32
  c.model.ndf = 32
  c.model.num_downs = 7        # 128 px -> 1x1 at the bottleneck.
  c.batch_size = 4
  # About 2 steps/s on 2 quiet cores (measured 2026-12-03 with the quickstart's log-depth term):
  # preparing the rooms (1-2 min), compiling, training and evaluating take about 9.5 minutes.
  c.num_train_steps = 800
  c.lr_constant_steps = 520
  c.log_every_steps = 50
  c.eval_every_steps = 400
  c.checkpoint_every_steps = 400
  c.num_eval_batches = -1
  c.eval_batch_size = 8
  return c


def paper_config():
  """The paper's settings (DIML LR, 256 px, cGAN + L1, batch 1) as a fresh ConfigDict."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  # Data. `dataset` is a TFDS name: 'diml/lr', 'diml/hr', or 'synthetic_rgbd/<config>'.
  c.dataset = "diml/lr"
  c.data_dir = ml_collections.config_dict.placeholder(str)    # TFDS data dir; None = TFDS default.
  # The unpacked DIML download (README), or your own frames for dataset='rgbd_captures'.
  c.manual_dir = ml_collections.config_dict.placeholder(str)
  c.eval_dataset = ""         # Validation/test data if not `dataset` (same TFDS names).
  c.train_split = "train"
  c.eval_split = "validation"
  c.image_size = 256         # Random crop size (the network's input size).
  c.load_size = 286          # Resize before the random crop (the reference's jitter).
  c.random_flip = True
  c.depth_near_m = 0.5       # The inverse-depth code's range (dofjax.depth).
  c.depth_far_m = 10.0
  c.num_data_workers = 0     # grain worker processes; 0 = in the main process.
  # eval_dataset='rgbd_folder' reads this folder of <name>_rgb.png + <name>_depth_mm.png real
  # frames (dofjax.real_frames).
  c.rgbd_dir = ml_collections.config_dict.placeholder(str)
  # dataset='rgbd_captures' (your own frames, in manual_dir; docs/own-data.md): keep every k-th
  # frame of each recording (consecutive video frames are near duplicates).
  c.captures_frame_stride = 1
  # Photometric augmentation of the training photos (dofjax.augment): every probability 0 = off,
  # as in the paper.
  c.augment = ml_collections.ConfigDict()
  c.augment.color_prob = 0.0
  c.augment.brightness = 0.0
  c.augment.contrast = 0.0
  c.augment.saturation = 0.0
  c.augment.hue = 0.0
  c.augment.channel_gain = 0.0
  c.augment.gamma_prob = 0.0
  c.augment.gamma = 0.0
  c.augment.blur_prob = 0.0
  c.augment.blur_sigma = 0.0
  c.augment.noise_prob = 0.0
  c.augment.noise_std = 0.0
  c.augment.jpeg_prob = 0.0
  c.augment.jpeg_quality_min = 100

  # Model (docs/design.md, "Reference facts": unet_256 and the 70x70 PatchGAN).
  c.model = ml_collections.ConfigDict()
  c.model.ngf = 64
  c.model.num_downs = 8
  c.model.norm = "batch"       # 'batch' or 'instance'.
  c.model.dropout_rate = 0.5
  c.model.ndf = 64
  c.model.n_layers = 3         # 3 = 70x70 PatchGAN, 0 = 1x1 PixelGAN.
  c.model.disc_norm = "batch"
  c.model.conv_impl = "auto"   # 'auto' (per platform), 'xla' or 'matmul'.

  # Loss: the ablation arm.
  c.loss = ml_collections.ConfigDict()
  c.loss.arm = "cgan_l1"       # 'l1', 'cgan' or 'cgan_l1'.
  c.loss.gan_mode = "vanilla"  # 'vanilla' (BCE on logits) or 'lsgan'.
  c.loss.lambda_l1 = 100.0
  # > 0 adds si_log_weight * scale-invariant L1 on log depth (dofjax.losses); 0 = the paper's.
  c.loss.si_log_weight = 0.0
  # > 0 adds log_gradient_weight * multi-scale gradient matching on log depth; 0 = the paper's.
  c.loss.log_gradient_weight = 0.0
  c.loss.bokeh_weight = 0.0    # > 0 adds L1 between DoF renders from predicted and true depth.

  # Optimiser: Adam(2e-4, 0.5, 0.999), constant then linear decay to 0 (in steps).
  c.learning_rate = 2e-4
  c.b1 = 0.5
  c.b2 = 0.999
  c.batch_size = 1
  # The reference trains 100 epochs constant + 100 epochs decay; DIML LR train is ~1500 images.
  c.num_train_steps = 300_000
  c.lr_constant_steps = 150_000  # Then linear decay to 0 over the remaining steps.
  # > 0 keeps a moving average of the generator's weights (this decay per step), which then
  # predicts in evaluation, samples and rendering; 0 = none, as in the paper.
  c.ema_decay = 0.0

  # Fine-tuning: start a new workdir from another run's checkpoint ('W' = its newest, or
  # 'W/checkpoints/<step>'): its generator's weights and BatchNorm statistics (and its
  # discriminator's if init_discriminator), with a fresh optimiser, step 0 and this config's
  # schedule; recorded in W/init_from.json. '' = from scratch. Ignored when resuming.
  c.init_from = ""
  c.init_discriminator = True

  # Loop.
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.num_eval_batches = -1      # -1 = the whole eval split.
  c.eval_batch_size = 1
  c.checkpoint_every_steps = 5_000
  c.keep_checkpoints = 3
  c.num_image_summaries = 4
  c.num_samples = 4            # DoF renders written to W/samples/ at the end of training.
  c.samples_real_photo = False  # Also W/samples/real_photo.png: a real photo (needs scikit-image).
  # Test-time behaviour: 'paper' = dropout on and batch statistics of the test batch (the
  # paper's noise z); 'standard' = dropout off and running statistics.
  c.test_time = "standard"
  c.on_nonfinite = "stop"      # 'stop' or 'skip' (skip the update and count it).

  # Devices.
  c.parallelism = "jit"        # 'jit' (mesh + NamedSharding) or 'pmap'.
  c.per_replica_batch_norm = False  # pmap only: BN statistics per replica, as multi-GPU pix2pix.
  c.compute_dtype = "float32"  # 'float32' or 'bfloat16' (parameters stay float32).
  return c
