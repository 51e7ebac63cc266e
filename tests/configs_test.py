"""The config files: each loads, resolves to the values the README and the ablation rely on, and
they import each other one way only (every config derives from base.py)."""

import ast
import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS_DIR = os.path.join(ROOT, "configs")

# (file, arg) -> key fields, as resolved when the config files were made one-way.
_PAPER_MODEL = {"ngf": 64, "ndf": 64, "num_downs": 8, "n_layers": 3, "norm": "batch",
                "disc_norm": "batch", "dropout_rate": 0.5, "conv_impl": "auto"}
_QUICK_MODEL = dict(_PAPER_MODEL, ngf=32, ndf=32, num_downs=7)
# Photometric augmentation: off (every probability 0) except in the quickstart-sized configs.
_AUGMENT_OFF = {"color_prob": 0.0, "brightness": 0.0, "contrast": 0.0, "saturation": 0.0,
                "hue": 0.0, "channel_gain": 0.0, "gamma_prob": 0.0, "gamma": 0.0,
                "blur_prob": 0.0, "blur_sigma": 0.0, "noise_prob": 0.0, "noise_std": 0.0,
                "jpeg_prob": 0.0, "jpeg_quality_min": 100}
_PAPER = {"dataset": "diml/lr", "eval_dataset": "", "rgbd_dir": None, "augment": _AUGMENT_OFF,
          "init_from": "", "init_discriminator": True, "captures_frame_stride": 1,
          "samples_real_photo": False,
          "image_size": 256, "load_size": 286,
          "batch_size": 1, "eval_batch_size": 1, "num_train_steps": 300_000,
          "lr_constant_steps": 150_000, "eval_every_steps": 5_000, "compute_dtype": "float32",
          "parallelism": "jit", "loss.arm": "cgan_l1", "loss.bokeh_weight": 0.0,
          "loss.si_log_weight": 0.0, "loss.log_gradient_weight": 0.0,
          "model": _PAPER_MODEL}
_AUGMENT_QUICK = dict(_AUGMENT_OFF, color_prob=0.8, brightness=0.25, contrast=0.25,
                     saturation=0.3, hue=0.03, channel_gain=0.1, gamma_prob=0.5, gamma=0.3,
                     blur_prob=0.2, blur_sigma=0.8, noise_prob=0.3, noise_std=0.02, jpeg_prob=0.3,
                     jpeg_quality_min=60)
_QUICK = dict(_PAPER, dataset="synthetic_rgbd/rooms", augment=_AUGMENT_QUICK,
              samples_real_photo=True, image_size=128, load_size=143,
              batch_size=4, eval_batch_size=8, num_train_steps=800, lr_constant_steps=520,
              eval_every_steps=400, model=_QUICK_MODEL)
_SYNTH = dict(_QUICK, eval_dataset="synthetic_rgbd/dof")
EXPECTED = {
    ("base", None): _PAPER,
    ("base", "synthetic"): _SYNTH,
    ("l1", None): dict(_PAPER, **{"loss.arm": "l1"}),
    ("l1", "synthetic"): dict(_SYNTH, **{"loss.arm": "l1"}),
    ("cgan", None): dict(_PAPER, **{"loss.arm": "cgan"}),
    ("cgan", "synthetic"): dict(_SYNTH, **{"loss.arm": "cgan"}),
    ("bokeh", None): dict(_PAPER, **{"loss.bokeh_weight": 100.0}),
    ("bokeh", "synthetic"): dict(_SYNTH, **{"loss.bokeh_weight": 100.0}),
    # Only the quickstart, and the longer recipe built on it, add the scale-invariant log-depth
    # term; only the quickstart the log-depth gradient term (the real-frame results).
    ("quickstart", None): dict(_QUICK, **{"loss.si_log_weight": 100.0,
                                         "loss.log_gradient_weight": 100.0}),
    ("synthetic_long", None): dict(_QUICK, **{"loss.si_log_weight": 100.0},
                                   dataset="synthetic_rgbd/rooms_large",
                                   num_train_steps=12_000, lr_constant_steps=8_000,
                                   eval_every_steps=2_000),
    ("finetune", None): dict(_QUICK, **{"loss.si_log_weight": 100.0,
                                       "loss.log_gradient_weight": 100.0},
                             dataset="rgbd_captures", learning_rate=1e-4, init_from="",
                             init_discriminator=True, lr_constant_steps=400),
    ("tiny", None): dict(_PAPER, dataset="synthetic_rgbd/tiny", image_size=32, load_size=36,
                         batch_size=2, eval_batch_size=2, num_train_steps=6, lr_constant_steps=3,
                         eval_every_steps=3,
                         model=dict(_PAPER_MODEL, ngf=8, ndf=8, num_downs=5, n_layers=2,
                                    conv_impl="xla")),
    ("tpu", None): dict(_PAPER, batch_size=16, eval_batch_size=16, num_train_steps=18_750,
                        lr_constant_steps=9_375, eval_every_steps=1_000,
                        compute_dtype="bfloat16", model=dict(_PAPER_MODEL, conv_impl="xla")),
}


def _config_modules():
  return sorted(n[:-3] for n in os.listdir(CONFIGS_DIR)
                if n.endswith(".py") and n != "__init__.py")


@pytest.mark.parametrize("name,arg", sorted(EXPECTED, key=str))
def test_config_resolves_to_its_documented_values(name, arg):
  c = importlib.import_module(f"configs.{name}").get_config(arg)
  for key, want in EXPECTED[(name, arg)].items():
    got = c
    for part in key.split("."):
      got = got[part]
    if key in ("model", "augment"):
      got = got.to_dict()
    assert got == want, (name, arg, key)


def test_every_config_file_is_covered():
  assert sorted(_config_modules()) == sorted({name for name, _ in EXPECTED})


def test_configs_import_each_other_one_way():
  """No cycle among configs/*.py, and base.py imports no other config."""
  graph = {}
  for name in _config_modules():
    with open(os.path.join(CONFIGS_DIR, f"{name}.py"), encoding="utf-8") as f:
      tree = ast.parse(f.read())
    deps = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom) and node.module == "configs":
        deps |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("configs."):
        deps.add(node.module.split(".")[1])
      elif isinstance(node, ast.Import):
        deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("configs.")}
    graph[name] = deps
  assert not graph["base"], f"base.py imports {sorted(graph['base'])}"

  def visit(name, path):
    assert name not in path, "import cycle: " + " -> ".join(path + [name])
    for dep in graph.get(name, ()):
      visit(dep, path + [name])

  for name in graph:
    visit(name, [])


def test_unknown_config_argument_names_the_valid_one():
  with pytest.raises(ValueError, match="synthetic"):
    importlib.import_module("configs.base").get_config("synthtic")
